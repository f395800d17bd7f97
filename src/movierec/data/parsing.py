"""Reading delimited MovieLens files fast, and saying exactly where a bad one is wrong.

The fast path is pyarrow's CSV reader with fixed column types plus vectorised range
checks (25 M ratings in seconds). Only when that fails do we re-read the file line by
line in Python to name the line at fault, so a good file costs one parse and a bad one
an exact message.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from movierec.errors import DataError

Kind = Literal["int", "int?", "float", "str"]

# "(1995)" or a range "(2006–2007)", "(2006-)" at the end, optionally followed by "(V)"/"(TV)".
_YEAR_RE = re.compile(r"\((\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)(?:\s*\((?:V|TV)\))?$")


class DataFileError(DataError):
    """A data file is corrupt; ``file`` names it and ``line`` (1-based) is at fault, if known."""

    def __init__(self, file: str, problem: str, line: int | None = None) -> None:
        where = f"{file}, line {line}" if line is not None else file
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class Column:
    """One field of a table: its name, kind and, for numbers, the allowed range and step.

    ``int?`` is an optional integer (an empty field is NA). ``step`` (e.g. 0.5 stars)
    requires the value to be a whole multiple of it.
    """

    name: str
    kind: Kind = "int"
    low: float | None = None
    high: float | None = None
    step: float | None = None


@dataclass(frozen=True)
class TableFormat:
    """How a file is laid out: separator, columns, header line, text encoding, quoting."""

    columns: tuple[Column, ...]
    sep: str = ","
    header: bool = True
    encoding: str = "utf-8"
    quoted: bool = True

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


# -- fast path --------------------------------------------------------------------------
_ARROW_TYPES = {"int": pa.int64(), "int?": pa.int64(), "float": pa.float64(), "str": pa.string()}
# MovieLens ``::`` files are parsed with this one-byte separator in place of ``::``
# (pyarrow takes one-character separators only); a file holding it is refused.
_SUBSTITUTE_SEP = b"\x1f"


def read_table(path: Path, fmt: TableFormat, label: str | None = None) -> pd.DataFrame:
    """Read ``path`` laid out as ``fmt`` into a DataFrame with one column per ``fmt`` column.

    Integers are int64 (``int?``: nullable Int64), floats float64, text ``str``.
    Accepts LF and CRLF line endings and skips blank lines. Raises ``DataFileError``
    naming ``label`` (default: the path) and the first bad line.
    """
    return (
        read_arrow(path, fmt, label)
        .to_pandas(
            types_mapper={pa.int64(): pd.Int64Dtype()}.get
            if any(c.kind == "int?" for c in fmt.columns)
            else None,
            self_destruct=True,
            split_blocks=True,
        )
        .astype({c.name: "int64" for c in fmt.columns if c.kind == "int"})
    )


def read_arrow(path: Path, fmt: TableFormat, label: str | None = None) -> pa.Table:
    """``read_table`` as an Arrow table (pyarrow's multi-threaded CSV reader).

    Every value is checked (vectorised): numbers parse, lie in their column's range and
    step, required integers are present. The first bad record is then found line by line
    to name it, so a good file costs one parse and a bad one an exact message.
    """
    label = label or str(path)
    try:
        if fmt.header:
            _check_header(path, fmt, label)
        table = pacsv.read_csv(
            _source(path, fmt, label),
            read_options=pacsv.ReadOptions(
                column_names=fmt.names,
                skip_rows=1 if fmt.header else 0,
                encoding=fmt.encoding,
                block_size=1 << 24,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=_arrow_sep(fmt),
                quote_char='"' if fmt.quoted else False,
                ignore_empty_lines=True,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c.name: _ARROW_TYPES[c.kind] for c in fmt.columns},
                null_values=[""],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except FileNotFoundError:
        raise DataFileError(label, "file not found") from None
    except IsADirectoryError:
        raise DataFileError(label, "cannot be read (Is a directory)") from None
    except PermissionError as exc:
        raise DataFileError(label, f"cannot be read ({exc.strerror or exc})") from None
    except (pa.ArrowException, ValueError, UnicodeDecodeError) as exc:
        # wrong field counts, non-numbers, bad bytes, an empty file: find the line
        _raise_first_problem(path, fmt, label, str(exc).splitlines()[0] if str(exc) else "")
    except OSError as exc:
        raise DataFileError(label, f"cannot be read ({exc.strerror or exc})") from None
    bad_row = _first_bad_row(table, fmt)
    if bad_row is not None:
        _raise_at_row(path, fmt, label, bad_row)
    return table


def _arrow_sep(fmt: TableFormat) -> str:
    return fmt.sep if len(fmt.sep) == 1 else _SUBSTITUTE_SEP.decode("ascii")


def _source(path: Path, fmt: TableFormat, label: str) -> Path | pa.BufferReader | str:
    """What pyarrow reads: the file, or for a multi-character separator its bytes with
    each separator replaced by one byte (about twice the file's size in memory)."""
    if len(fmt.sep) == 1:
        return str(path)
    data = path.read_bytes()
    if _SUBSTITUTE_SEP in data:
        line = data[: data.index(_SUBSTITUTE_SEP)].count(b"\n") + 1
        raise DataFileError(label, "holds a control character (0x1f)", line)
    return pa.BufferReader(data.replace(fmt.sep.encode(fmt.encoding), _SUBSTITUTE_SEP))


def _check_header(path: Path, fmt: TableFormat, label: str) -> None:
    with open(path, "rb") as handle:
        raw = handle.readline()
    try:
        text = raw.decode(fmt.encoding).removeprefix("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataFileError(label, f"not valid {fmt.encoding} text ({exc.reason})", 1) from None
    if len(fmt.sep) == 1:
        fields = next(csv.reader([text], delimiter=fmt.sep), [])
    else:
        fields = text.split(fmt.sep)
    if fields != fmt.names:
        raise DataFileError(label, f"header is {text[:100]!r}, expected {','.join(fmt.names)!r}", 1)


def _first_bad_row(table: pa.Table, fmt: TableFormat) -> int | None:
    """Index of the first record with a missing or out-of-range number, else ``None``."""
    first: int | None = None
    for col in fmt.columns:
        if col.kind in ("str", "int?"):
            continue
        column = table.column(col.name)
        values = column.to_numpy(zero_copy_only=False) if column.null_count == 0 else None
        if values is None:
            bad = np.asarray(column.is_null().to_numpy(zero_copy_only=False))
        else:
            bad = ~np.isfinite(values) if col.kind == "float" else np.zeros(len(values), bool)
            if col.low is not None:
                bad |= values < col.low
            if col.high is not None:
                bad |= values > col.high
            if col.step is not None:
                bad |= np.mod(values, col.step) != 0
        if bad.any():
            row = int(np.argmax(bad))
            first = row if first is None else min(first, row)
    return first


def _raise_at_row(path: Path, fmt: TableFormat, label: str, row: int) -> NoReturn:
    """Raise ``DataFileError`` for data record ``row`` (0-based), found line by line."""
    records = _records(path, fmt, label)
    if fmt.header:
        next(records, None)
    for index, (line_no, fields) in enumerate(records):
        if index == row:
            problem = _row_problem(fields, fmt) or "values out of range"
            raise DataFileError(label, problem, line_no)
    raise DataFileError(label, "values out of range")


# -- slow path: find the line -------------------------------------------------------------
def _raise_first_problem(path: Path, fmt: TableFormat, label: str, reason: str) -> NoReturn:
    """Scan ``path`` line by line and raise ``DataFileError`` at the first bad line."""
    for line_no, fields in _records(path, fmt, label):
        if fmt.header and line_no == 1:
            continue
        problem = _row_problem(fields, fmt)
        if problem:
            raise DataFileError(label, problem, line_no)
    raise DataFileError(label, f"cannot be read ({reason})")


def _records(path: Path, fmt: TableFormat, label: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` per non-blank record; bad bytes raise with their line."""
    lines = _decoded_lines(path, fmt.encoding, label)
    if fmt.quoted:
        reader = csv.reader(lines, delimiter=fmt.sep)
        for fields in reader:
            if fields:
                yield reader.line_num, fields
        return
    for line_no, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if text:
            yield line_no, text.split(fmt.sep)


def _decoded_lines(path: Path, encoding: str, label: str) -> Iterator[str]:
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as exc:
                problem = f"not valid {encoding} text ({exc.reason})"
                raise DataFileError(label, problem, line_no) from None


def _row_problem(fields: list[str], fmt: TableFormat) -> str | None:
    """What is wrong with one record, or ``None`` if it is fine."""
    if len(fields) != len(fmt.columns):
        return f"expected {len(fmt.columns)} fields, found {len(fields)}"
    for col, text in zip(fmt.columns, fields, strict=True):
        problem = _field_problem(col, text)
        if problem:
            return f"{col.name} {problem}"
    return None


def _field_problem(col: Column, text: str) -> str | None:
    if col.kind == "str" or (col.kind == "int?" and text == ""):
        return None
    try:
        value: float = int(text) if col.kind in ("int", "int?") else float(text)
    except ValueError:
        return f"{text!r} is not {'an integer' if col.kind != 'float' else 'a number'}"
    if not math.isfinite(value):
        return f"{text!r} is not a finite number"
    if (col.low is not None and value < col.low) or (col.high is not None and value > col.high):
        return f"{text} is outside {_bounds(col)}"
    if col.step is not None and math.fmod(value, col.step) != 0:
        return f"{text} is not a multiple of {col.step:g}"
    return None


def _bounds(col: Column) -> str:
    """``"0.5–5"``, ``">= 1"`` or ``"<= 5"``."""
    if col.low is not None and col.high is not None:
        return f"{col.low:g}–{col.high:g}"
    return f">= {col.low:g}" if col.low is not None else f"<= {col.high:g}"


# -- titles and genres --------------------------------------------------------------------
def parse_year(title: str) -> int | None:
    """The release year at the end of a MovieLens title, e.g. ``"Toy Story (1995)"`` -> 1995.

    Surrounding whitespace is ignored; a range ``(2006–2007)`` gives its first year;
    a title without one (``"Babylon 5"``) gives ``None``.
    """
    match = _YEAR_RE.search(title.strip())
    return int(match.group(1)) if match else None


def parse_years(titles: pd.Series) -> pd.Series:
    """Vectorised ``parse_year``: a nullable ``Int64`` series aligned with ``titles``."""
    years = titles.str.strip().str.extract(_YEAR_RE, expand=False)
    return pd.to_numeric(years).astype("Int64")


def split_genres(genres: pd.Series) -> pd.Series:
    """``"Adventure|Comedy"`` -> ``("Adventure", "Comedy")``; ``"(no genres listed)"`` -> ``()``."""
    values = np.empty(len(genres), dtype=object)
    values[:] = [_genre_tuple(text) for text in genres.tolist()]
    return pd.Series(values, index=genres.index, dtype=object)


def _genre_tuple(text: str) -> tuple[str, ...]:
    return tuple(g for g in text.strip().split("|") if g and g != "(no genres listed)")


def line_of(path: Path, fmt: TableFormat, row: int, label: str | None = None) -> int:
    """The 1-based line number where data record ``row`` (0-based, header excluded) starts.

    For error messages only: re-reads the file.
    """
    records = _records(path, fmt, label or str(path))
    if fmt.header:
        next(records, None)
    for index, (line_no, _fields) in enumerate(records):
        if index == row:
            return line_no
    raise IndexError(row)
