"""Read rating histories people already have and match them to the catalogue.

Three formats (``FORMATS``):

- ``imdb``: IMDb's ratings export (``Const`` = ``tt0133093``, ``Your Rating`` 1-10, optional
  ``Date Rated``, ``Title``, ``Year``). Matched through links.csv's ``imdbId``, compared as
  numbers so ``tt0133093``, ``tt133093`` and ``0133093`` are one id. Stars are ``rating / 2``
  (1-10 -> 0.5-5 in half steps). Rows without a rating (watch-list entries) are skipped.
- ``letterboxd``: Letterboxd's ``ratings.csv`` (``Name``, ``Year``, ``Rating`` 0.5-5, optional
  ``Date``), or Letterboxd's import layout that movierec's export writes (``Title`` for
  ``Name``, an ``imdbID`` matched first, ``WatchedDate``).
  Matched by title and year with :mod:`movierec.search`'s folding (accents, case,
  punctuation, a leading or trailing article); a year one off is accepted when only one movie
  matches that way (release years differ between sites). Ties go to the more-rated movie.
- ``movielens``: this app's export (``movieId,title,rating,timestamp``) or a MovieLens
  ``ratings.csv`` (``userId`` ignored): ``movieId`` and ``rating`` 0.5-5 in half steps,
  ``timestamp`` Unix seconds or ISO 8601 (optional).

The format is told by the header (:func:`detect_format`): a file whose header is another
format's than the one chosen, or with no format chosen, is read as the format its header
names, and :attr:`ImportResult.detected` says so. A movie named on several rows keeps the
later row's stars; each repeat is reported (:class:`Duplicate`: "line 9 repeats line 3").
Line numbers count the header as line 1, as a text editor does.

Watchlists (:func:`read_watchlist`, ``WATCHLIST_FORMATS``): Letterboxd's ``watchlist.csv``
(``Date,Name,Year,Letterboxd URI``, matched by title and year as above) and IMDb's watchlist
export (``Const``, ``Created``, ``Title``, ``Title Type``, ``Year``, ..., matched by ``Const``);
the same limits, encodings and line-numbered errors.

Limits and encodings: at most ``MAX_BYTES`` (5 MB) and ``MAX_ROWS`` (20,000) data rows. Files
are read as UTF-8, with or without a byte-order mark (what IMDb and Letterboxd write). There is
deliberately no Latin-1 fallback: a wrong guess would not fail but silently garble accented
titles into non-matches, so a file that is not UTF-8 is refused with the line of the first bad
byte and a hint to save it as UTF-8. A malformed row (bad id, rating out of range, a missing
column) stops the import with a message naming its line: nothing is half-imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from movierec.errors import InvalidInput, quoted, size_text
from movierec.inputs import STARS_RULE, movie_id_text, release_year, stars_text
from movierec.search import article_first, fold, title_keys, without_article

FORMATS = ("imdb", "letterboxd", "movielens")
#: each format as a sentence names it, with its article ("an IMDb ratings export")
FORMAT_NAMES = {
    "imdb": "an IMDb ratings export",
    "letterboxd": "a Letterboxd ratings.csv",
    "movielens": "a movierec or MovieLens ratings file",
}
#: the header columns each format needs (what :func:`detect_format` looks for)
REQUIRED_COLUMNS = {
    "imdb": ("Const", "Your Rating"),
    "letterboxd": ("Name", "Rating"),
    "movielens": ("movieId", "rating"),
}
#: Letterboxd's import layout (what movierec's export writes) names the title ``Title``
LETTERBOXD_IMPORT_COLUMNS = ("Title", "Rating")
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
_IMDB_ID = re.compile(r"(?:tt)?0*([0-9]{1,10})", re.IGNORECASE)


@dataclass(frozen=True)
class Unmatched:
    """A row naming a movie the catalogue does not have (as the file named it)."""

    line: int
    title: str
    year: int | None
    ref: str  # the IMDb id or movieId given, "" for Letterboxd
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "title": self.title,
            "year": self.year,
            "ref": self.ref,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Duplicate:
    """A row naming a movie an earlier row of the same file named (the later stars win)."""

    line: int
    earlier: int  # the line of the previous row naming the movie
    movie_id: int

    @property
    def message(self) -> str:
        return f"line {self.line} repeats line {self.earlier}; the later stars were kept"

    def to_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "earlier": self.earlier,
            "movie_id": self.movie_id,
            "message": self.message,
        }


@dataclass
class ImportResult:
    """What a file held: ``ratings`` ``{movieId: stars}`` matched (a later row of the same
    movie wins and is listed in ``duplicates``), ``rated_at`` when (if the file said),
    rows ``unmatched`` and ``skipped`` (no rating given), and ``rows`` read.

    ``format``: the format the file was read as; ``detected``: True when that came from
    the header rather than the format asked for (none, or another one).
    """

    format: str
    ratings: dict[int, float] = field(default_factory=dict)
    rated_at: dict[int, datetime] = field(default_factory=dict)
    unmatched: list[Unmatched] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    skipped: int = 0
    rows: int = 0
    detected: bool = False
    #: movieId -> the line of the last row naming it
    lines: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def matched(self) -> int:
        return len(self.ratings)

    def to_dict(self) -> dict[str, object]:
        return {
            "format": self.format,
            "detected": self.detected,
            "rows": self.rows,
            "matched": self.matched,
            "skipped": self.skipped,
            "unmatched": [u.to_dict() for u in self.unmatched],
            "duplicates": [d.to_dict() for d in self.duplicates],
            "ratings": {str(m): s for m, s in self.ratings.items()},
        }


class Matcher:
    """Look-ups from what files name to catalogue movieIds.

    movies: ``(movieId, title, n_ratings)`` as MovieLens writes titles; imdb: ``{imdbId
    number: movieId}`` from links.csv.
    """

    def __init__(self, movies: Iterable[tuple[int, str, int]], imdb: Mapping[int, int]) -> None:
        self.imdb = dict(imdb)
        self.movie_ids: set[int] = set()
        counts: dict[int, int] = {}
        by_key: dict[tuple[str, int | None], list[int]] = defaultdict(list)
        for movie_id, title, n_ratings in movies:
            self.movie_ids.add(int(movie_id))
            counts[int(movie_id)] = int(n_ratings)
            keys, year = title_keys(title)
            for key in keys:
                by_key[(key, year)].append(int(movie_id))
        #: (folded title, year) -> movieIds, most rated first
        self.by_title = {
            k: sorted(set(v), key=lambda m: (-counts[m], m)) for k, v in by_key.items()
        }

    def by_imdb(self, imdb_number: int) -> int | None:
        return self.imdb.get(imdb_number)

    def by_name(self, name: str, year: int | None) -> int | None:
        """The movie titled ``name`` (any article placement, accents) from ``year``."""
        folded = fold(article_first(name))
        keys = dict.fromkeys([folded, without_article(folded)])
        for key in keys:
            found = self.by_title.get((key, year))
            if found:
                return found[0]
        if year is None:
            return None
        near = {
            m for key in keys for y in (year - 1, year + 1) for m in self.by_title.get((key, y), ())
        }
        return near.pop() if len(near) == 1 else None


def detect_format(columns: Iterable[str]) -> str | None:
    """The format whose required columns a header has (IMDb, then Letterboxd, then
    movierec/MovieLens); None if it has no format's."""
    names = set(columns)
    for fmt, required in REQUIRED_COLUMNS.items():
        if names.issuperset(required):
            return fmt
    return "letterboxd" if names.issuperset(LETTERBOXD_IMPORT_COLUMNS) else None


def read_import(data: bytes, fmt: str | None, matcher: Matcher) -> ImportResult:
    """Parse ``data`` (a whole uploaded file) and match its rows.

    ``fmt``: the format the visitor chose, or None to tell it from the header. A header
    that is another format's is read as that format (``result.detected``). Raises
    ``InvalidInput`` (field ``file`` or ``format``) naming the line of the first problem
    (the header is line 1): too big, not UTF-8, a header of no known format, a malformed
    row.
    """
    if fmt is not None and fmt not in FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(FORMATS)}, got {quoted(fmt)}", field="format"
        )
    if len(data) > MAX_BYTES:
        raise InvalidInput(
            f"the file is {size_text(len(data))}; at most {size_text(MAX_BYTES)}",
            field="file",
        )
    text = decode(data)
    columns, rows = _rows(text)
    found = detect_format(columns)
    if found is None:
        raise InvalidInput(_no_format(columns, fmt), field="file")
    result = ImportResult(format=found, detected=found != fmt)
    fmt = found
    parse_row = {"imdb": _imdb_row, "letterboxd": _letterboxd_row, "movielens": _movielens_row}
    for line, row in rows:
        result.rows += 1
        if result.rows > MAX_ROWS:
            raise InvalidInput(
                f"line {line}: the file has more than {MAX_ROWS:,} rows; split it", field="file"
            )
        parse_row[fmt](line, row, matcher, result)
    return result


def decode(data: bytes) -> str:
    """UTF-8 text of ``data`` (a byte-order mark dropped); else ``InvalidInput`` naming the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInput(
            f"line {line}: the file is not UTF-8 text (byte {data[exc.start]:#04x}); "
            "export it again or save it as UTF-8",
            field="file",
        ) from None


def _no_format(columns: list[str], fmt: str | None) -> str:
    """Why a header (line 1) is no import format's."""
    shown = ", ".join(quoted(c) for c in columns[:8]) or "nothing"
    if fmt is not None:
        missing = [c for c in REQUIRED_COLUMNS[fmt] if c not in columns]
        return (
            f"line 1 (the header): no {missing[0]!r} column; is this {FORMAT_NAMES[fmt]}? "
            f"The header has {shown}"
        )
    return (
        f"line 1 (the header) has {shown}: not {FORMAT_NAMES['imdb']}, "
        f"{FORMAT_NAMES['letterboxd']} or {FORMAT_NAMES['movielens']}"
    )


def _rows(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header's columns, and ``(line number, {column: value})`` per data row (the
    header is line 1); blank lines skipped."""
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InvalidInput(f"line {line}: the file holds NUL bytes; not a CSV file", "file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("the file is empty", field="file") from None
    except csv.Error as exc:
        raise InvalidInput(f"line 1: not a CSV header: {exc}", field="file") from None
    columns = [h.strip() for h in header]
    return columns, _data_rows(reader, columns)


def _data_rows(reader: Any, columns: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInput(f"line {reader.line_num}: {exc}", field="file") from None
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(columns):
            raise InvalidInput(
                f"line {reader.line_num}: {len(values)} fields, the header has {len(columns)}",
                field="file",
            )
        yield reader.line_num, {c: v.strip() for c, v in zip(columns, values, strict=False)}


def _need(line: int, row: Mapping[str, str], column: str) -> str:
    """The row's ``column`` (the header has it: :func:`detect_format`); a row too short
    to reach it names its line."""
    if column not in row:
        raise InvalidInput(f"line {line}: no value in the {column!r} column", field="file")
    return row[column]


def _imdb_row(line: int, row: dict[str, str], matcher: Matcher, result: ImportResult) -> None:
    const = _need(line, row, "Const")
    rating = _need(line, row, "Your Rating")
    match = _IMDB_ID.fullmatch(const)
    if match is None:
        raise InvalidInput(
            f"line {line}: Const must be an IMDb id like tt0133093, got {quoted(const)}",
            field="file",
        )
    if not rating:
        result.skipped += 1
        return
    if not rating.isdigit() or not 1 <= int(rating) <= 10:
        raise InvalidInput(
            f"line {line}: Your Rating must be a whole number from 1 to 10, got {quoted(rating)}",
            field="file",
        )
    stars = int(rating) / 2
    movie_id = matcher.by_imdb(int(match.group(1)))
    title, year = row.get("Title", ""), _year(row.get("Year", ""))
    if movie_id is None:
        result.unmatched.append(Unmatched(line, title, year, const, "not in the catalogue"))
        return
    _add(result, line, movie_id, stars, _date(line, row.get("Date Rated", ""), "Date Rated"))


def _letterboxd_row(line: int, row: dict[str, str], matcher: Matcher, result: ImportResult) -> None:
    name = _need(line, row, "Name" if "Name" in row else "Title")  # export or import layout
    rating = _need(line, row, "Rating")
    year_text = row.get("Year", "")
    if not rating:
        result.skipped += 1
        return
    stars = _stars(line, rating, "Rating")
    if year_text and release_year(year_text) is None:
        raise InvalidInput(f"line {line}: Year must be 4 digits, got {quoted(year_text)}", "file")
    year = int(year_text) if year_text else None
    imdb = _IMDB_ID.fullmatch(row.get("imdbID", ""))
    movie_id = matcher.by_imdb(int(imdb.group(1))) if imdb else None
    if movie_id is None and name:
        movie_id = matcher.by_name(name, year)
    if movie_id is None:
        reason = "no title given" if not name else "no movie with this title and year"
        result.unmatched.append(Unmatched(line, name, year, "", reason))
        return
    date_column = "Date" if "Date" in row else "WatchedDate"
    _add(result, line, movie_id, stars, _date(line, row.get(date_column, ""), date_column))


def _movielens_row(line: int, row: dict[str, str], matcher: Matcher, result: ImportResult) -> None:
    movie = _need(line, row, "movieId")
    rating = _need(line, row, "rating")
    if movie_id_text(movie) is None:
        raise InvalidInput(
            f"line {line}: movieId must be a positive whole number, got {quoted(movie)}",
            field="file",
        )
    stars = _stars(line, rating, "rating")
    if int(movie) not in matcher.movie_ids:
        result.unmatched.append(
            Unmatched(line, row.get("title", ""), None, movie, "not in the catalogue")
        )
        return
    _add(result, line, int(movie), stars, _date(line, row.get("timestamp", ""), "timestamp"))


def _stars(line: int, text: str, column: str) -> float:
    stars = stars_text(text)
    if stars is None:
        raise InvalidInput(
            f"line {line}: {column} must be {STARS_RULE}, got {quoted(text)}", field="file"
        )
    return stars


def _date(line: int, text: str, column: str) -> datetime | None:
    """A Unix timestamp (seconds) or ISO 8601 date/time as UTC; None if empty."""
    if not text:
        return None
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise InvalidInput(
            f"line {line}: {column} must be a date like 2024-05-31, got {quoted(text)}",
            field="file",
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _year(text: str) -> int | None:
    return release_year(text)


def _add(
    result: ImportResult, line: int, movie_id: int, stars: float, when: datetime | None
) -> None:
    earlier = result.lines.get(movie_id)
    if earlier is not None:
        result.duplicates.append(Duplicate(line, earlier, movie_id))
    result.lines[movie_id] = line
    result.ratings.pop(movie_id, None)  # a later row wins and moves to the end
    result.ratings[movie_id] = stars
    if when is not None:
        result.rated_at[movie_id] = when
    else:
        result.rated_at.pop(movie_id, None)


WATCHLIST_FORMATS = ("letterboxd", "imdb")


@dataclass
class WatchlistImport:
    """What a watchlist file held: ``added`` ``{movieId: when added (or None)}`` matched,
    in the file's order, rows ``unmatched``, and ``rows`` read."""

    format: str
    added: dict[int, datetime | None] = field(default_factory=dict)
    unmatched: list[Unmatched] = field(default_factory=list)
    rows: int = 0
    #: True when the header named another format than the one asked for (or none was)
    detected: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "format": self.format,
            "detected": self.detected,
            "rows": self.rows,
            "matched": len(self.added),
            "movie_ids": list(self.added),
            "unmatched": [u.to_dict() for u in self.unmatched],
        }


def read_watchlist(data: bytes, fmt: str | None, matcher: Matcher) -> WatchlistImport:
    """Parse ``data`` (a whole uploaded watchlist file) as ``fmt`` (``letterboxd`` or
    ``imdb``; None, or one the header contradicts: the format the header names) and match
    its rows; ``InvalidInput`` naming the line of the first problem."""
    if fmt is not None and fmt not in WATCHLIST_FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(WATCHLIST_FORMATS)}, got {quoted(fmt)}",
            field="format",
        )
    if len(data) > MAX_BYTES:
        raise InvalidInput(
            f"the file is {size_text(len(data))}; at most {size_text(MAX_BYTES)}", field="file"
        )
    columns, rows = _rows(decode(data))
    named = {"letterboxd": "Name", "imdb": "Const"}  # the column each format cannot lack
    found = [f for f in WATCHLIST_FORMATS if named[f] in columns]
    if not found:
        raise InvalidInput(
            "line 1: no 'Name' column (a Letterboxd watchlist.csv) or 'Const' column "
            "(an IMDb watchlist export)",
            field="file",
        )
    chosen = fmt if fmt in found else found[0]
    result = WatchlistImport(format=chosen, detected=chosen != fmt)
    for line, row in rows:
        result.rows += 1
        if result.rows > MAX_ROWS:
            raise InvalidInput(
                f"line {line}: the file has more than {MAX_ROWS:,} rows; split it", field="file"
            )
        if chosen == "letterboxd":
            _letterboxd_watch_row(line, row, matcher, result)
        else:
            _imdb_watch_row(line, row, matcher, result)
    return result


def _letterboxd_watch_row(
    line: int, row: dict[str, str], matcher: Matcher, result: WatchlistImport
) -> None:
    name = _need(line, row, "Name")
    year_text = row.get("Year", "")
    if year_text and release_year(year_text) is None:
        raise InvalidInput(f"line {line}: Year must be 4 digits, got {quoted(year_text)}", "file")
    year = int(year_text) if year_text else None
    movie_id = matcher.by_name(name, year) if name else None
    if movie_id is None:
        reason = "no title given" if not name else "no movie with this title and year"
        result.unmatched.append(Unmatched(line, name, year, row.get("Letterboxd URI", ""), reason))
        return
    result.added[movie_id] = _date(line, row.get("Date", ""), "Date")


def _imdb_watch_row(
    line: int, row: dict[str, str], matcher: Matcher, result: WatchlistImport
) -> None:
    const = _need(line, row, "Const")
    match = _IMDB_ID.fullmatch(const)
    if match is None:
        raise InvalidInput(
            f"line {line}: Const must be an IMDb id like tt0133093, got {quoted(const)}",
            field="file",
        )
    movie_id = matcher.by_imdb(int(match.group(1)))
    if movie_id is None:
        kind = row.get("Title Type", "")
        reason = "not in the catalogue"
        if kind and kind.casefold() not in ("movie", "feature film", "tv movie"):
            reason = f"not a movie ({kind})"
        title, year = row.get("Title", ""), _year(row.get("Year", ""))
        result.unmatched.append(Unmatched(line, title, year, const, reason))
        return
    result.added[movie_id] = _date(line, row.get("Created", ""), "Created")


__all__ = [
    "FORMATS",
    "WATCHLIST_FORMATS",
    "WatchlistImport",
    "read_watchlist",
    "FORMAT_NAMES",
    "MAX_BYTES",
    "MAX_ROWS",
    "ImportResult",
    "Duplicate",
    "Matcher",
    "Unmatched",
    "decode",
    "detect_format",
    "read_import",
]
