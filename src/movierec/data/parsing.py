"""Reading delimited MovieLens files fast, and saying exactly where a bad one is wrong.

The fast path is the pandas C parser with fixed dtypes plus vectorised range checks.
Only when that fails do we re-read the file line by line in Python to name the line at
fault, so a good file costs one ``read_csv`` and a bad one an exact message.
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

from movierec.errors import DataError

Kind = Literal["int", "int?", "float", "str"]

_PANDAS_DTYPES: dict[str, str] = {"int": "int64", "int?": "Int64", "float": "float64", "str": "str"}

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
def read_table(path: Path, fmt: TableFormat, label: str | None = None) -> pd.DataFrame:
    """Read ``path`` laid out as ``fmt`` into a DataFrame with one column per ``fmt`` column.

    Accepts LF and CRLF line endings and skips blank lines. Raises ``DataFileError``
    naming ``label`` (default: the path) and the first bad line.
    """
    label = label or str(path)
    try:
        frame = pd.read_csv(
            path,
            sep=fmt.sep,
            header=0 if fmt.header else None,
            names=None if fmt.header else fmt.names,
            dtype={c.name: _PANDAS_DTYPES[c.kind] for c in fmt.columns},
            encoding=fmt.encoding,
            quoting=csv.QUOTE_MINIMAL if fmt.quoted else csv.QUOTE_NONE,
            keep_default_na=False,
            na_values={c.name: [""] for c in fmt.columns if c.kind == "int?"},
            engine="c",
        )
    except FileNotFoundError:
        raise DataFileError(label, "file not found") from None
    except OSError as exc:  # a directory, no permission, ...
        raise DataFileError(label, f"cannot be read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError, OverflowError, pd.errors.ParserError) as exc:
        # pandas raises these on wrong field counts, non-numbers and bad bytes
        _raise_first_problem(path, fmt, label, str(exc))
    if fmt.header and list(frame.columns) != fmt.names:
        header = ",".join(map(str, frame.columns))
        raise DataFileError(label, f"header is {header!r}, expected {','.join(fmt.names)!r}", 1)
    if not _values_ok(frame, fmt):
        _raise_first_problem(path, fmt, label, "values out of range")
    return frame


def _values_ok(frame: pd.DataFrame, fmt: TableFormat) -> bool:
    """Whether every number is finite and within its column's range and step."""
    for col in fmt.columns:
        if col.kind in ("str", "int?"):
            continue
        values = frame[col.name].to_numpy()
        if col.kind == "float" and not np.isfinite(values).all():
            return False
        if col.low is not None and (values < col.low).any():
            return False
        if col.high is not None and (values > col.high).any():
            return False
        if col.step is not None and (np.mod(values, col.step) != 0).any():
            return False
    return True


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
    return genres.map(_genre_tuple).astype(object)


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
