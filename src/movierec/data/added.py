"""Movies the data set lacks, added by the operator (``movierec catalog add``).

Each data set's added movies live in one small CSV beside its folder,
``<MOVIEREC_HOME>/data/<name>.added.csv`` (outside the folder, so ``data fetch --force``
keeps them), with the columns ``movieId, title, year, genres, imdbId, tmdbId, addedAt``.
:func:`movierec.data.load_dataset` merges them into the catalogue (no ratings yet), and
a running server notices the file change and reloads its catalogue.

**Ids.** Added movies are numbered from ``ADDED_FROM`` (1,000,000,001) up. MovieLens ids
are dense from 1 and grow by a few tens of thousands a year (ml-32m's largest is 292,757,
ml-latest's under 300,000), so a billion stays clear of every release for a very long time,
and the ids still fit the store's 32-bit ``movie_id`` columns and int32 arrays. A data set
that already holds ids from there on is refused rather than mixed up.

**All or nothing.** A batch is checked whole (each row, duplicates of the catalogue by
IMDb id, TMDB id or title and year, and duplicates within the batch) before anything is
written; the new file is written beside the old and renamed over it, under a lock file,
so readers see the old list or the new one, never half of it, and two operators adding at
once both keep their movies.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.data.catalog import Catalog
from movierec.data.parsing import DataFileError
from movierec.data.titles import display_title, fold
from movierec.errors import InvalidInput

ADDED_FROM = 1_000_000_001
#: columns of an operator's CSV (``catalog add --csv``), in any order
INPUT_COLUMNS = ("title", "year", "genres", "imdbId", "tmdbId")
STORED_COLUMNS = ("movieId", "title", "year", "genres", "imdbId", "tmdbId", "addedAt")
MAX_TITLE = 300  # characters
MAX_ROWS = 10_000  # movies one CSV may add
FIRST_YEAR = 1874  # the oldest film MovieLens could list (Passage de Vénus)
#: TMDB genre names -> MovieLens's (TMDB's History and TV Movie have no MovieLens twin)
TMDB_GENRES = {
    "Science Fiction": "Sci-Fi",
    "Family": "Children",
    "Music": "Musical",
}
_TITLE_YEAR = re.compile(r"\s*\((\d{4})\)$")
_IMDB = re.compile(r"^(?:tt)?0*(\d{1,10})$")


@dataclass(frozen=True)
class NewMovie:
    """A movie to add: ``title`` as people write it (``"The Irishman"``), ``year``,
    MovieLens ``genres``, IMDb number (``tt0114709`` -> 114709) and TMDB id."""

    title: str
    year: int | None
    genres: tuple[str, ...]
    imdb_id: int | None
    tmdb_id: int | None
    #: where it was read (``"new.csv, line 3"``, ``"TMDB id 496243"``), for messages
    source: str = field(default="", compare=False)

    @property
    def catalog_title(self) -> str:
        """The title as MovieLens writes it, with the year: ``"The Irishman (2019)"``."""
        return f"{self.title} ({self.year})" if self.year else self.title

    def describe(self) -> str:
        return f"{self.title!r} ({self.year})" if self.year else repr(self.title)


@dataclass(frozen=True)
class AddedMovie(NewMovie):
    """A movie in the added list: its ``movie_id`` (``ADDED_FROM`` up) and when added."""

    movie_id: int = 0
    added_at: str = ""


def added_path(name: str, home: Path) -> Path:
    """Where data set ``name``'s added movies are kept under ``home``."""
    return Path(home) / "data" / f"{name}.added.csv"


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """``(inode, size, mtime ns)`` of ``path``, ``None`` if absent: a change means reload."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


# -- reading ------------------------------------------------------------------------------
def read_added(path: Path) -> list[AddedMovie]:
    """The added movies kept in ``path`` (``[]`` if there is none yet).

    A damaged file is a ``DataFileError`` naming it and the line at fault.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(str(path), f"cannot be read: {exc}") from None
    movies = []
    for line, row in _rows(text, str(path), STORED_COLUMNS):
        try:
            movie = _new_movie(row, genres=None)
            movie_id = _whole(row["movieId"], "movieId", low=ADDED_FROM)
            added_at = row["addedAt"].strip()
        except InvalidInput as exc:
            raise DataFileError(str(path), str(exc), line) from None
        movies.append(AddedMovie(**vars(movie), movie_id=movie_id, added_at=added_at))
    ids = [m.movie_id for m in movies]
    if len(set(ids)) != len(ids):
        raise DataFileError(str(path), "lists a movieId twice")
    return movies


def read_new_movies(path: Path, genres: Iterable[str]) -> list[NewMovie]:
    """The movies of an operator's CSV (header ``title,year,genres,imdbId,tmdbId``).

    ``genres`` is the data set's genre vocabulary: every genre given must be one of them
    (pipe-separated, as in movies.csv). Raises ``InvalidInput`` naming the file, the line
    (the header is line 1) and the value at fault.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot be read as UTF-8 text: {exc}", field="csv") from None
    vocabulary = frozenset(genres)
    movies = []
    try:
        for line, row in _rows(text, str(path), INPUT_COLUMNS):
            try:
                movie = _new_movie(row, genres=vocabulary)
            except InvalidInput as exc:
                raise InvalidInput(f"{path}, line {line}: {exc}", field="csv") from None
            movies.append(replace(movie, source=f"{path}, line {line}"))
    except DataFileError as exc:
        raise InvalidInput(str(exc), field="csv") from None
    if not movies:
        raise InvalidInput(f"{path}: no movies after the header", field="csv")
    if len(movies) > MAX_ROWS:
        raise InvalidInput(f"{path}: {len(movies):,} movies; at most {MAX_ROWS:,} at once", "csv")
    return movies


def _rows(text: str, label: str, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, row)`` of a CSV with exactly ``columns`` (any order) in its header."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise DataFileError(label, f"is empty; expected the header {','.join(columns)}")
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        extra = [h for h in header if h not in columns]
        if missing or extra or len(set(header)) != len(header):
            raise DataFileError(
                label,
                f"header {','.join(header)!r}: expected the columns {','.join(columns)}",
                1,
            )
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise DataFileError(
                    label, f"{len(values)} fields where the header has {len(header)}", line
                )
            yield line, dict(zip(header, values, strict=True))
    except csv.Error as exc:
        raise DataFileError(label, f"not valid CSV: {exc}", reader.line_num) from None


def _new_movie(row: Mapping[str, str], genres: frozenset[str] | None) -> NewMovie:
    """One row checked: ``genres=None`` accepts any genre name (our own file)."""
    title = " ".join(row["title"].split())
    if not title:
        raise InvalidInput("the title is empty", field="title")
    if len(title) > MAX_TITLE or any(ord(c) < 32 for c in row["title"]):
        raise InvalidInput(
            f"title {title[:60]!r} must be 1-{MAX_TITLE} characters of one line", "title"
        )
    year = None
    if row["year"].strip():
        year = _whole(row["year"], "year", low=FIRST_YEAR, high=datetime.now(UTC).year + 5)
    written = _TITLE_YEAR.search(title)  # "Parasite (2019)": the year belongs in its column
    if written and title[: written.start()].strip() and year in (None, int(written[1])):
        year = _whole(written[1], "year", low=FIRST_YEAR, high=datetime.now(UTC).year + 5)
        title = title[: written.start()].strip()
    names = tuple(g.strip() for g in row["genres"].split("|") if g.strip())
    names = tuple(g for g in names if g != "(no genres listed)")
    if genres is not None:
        unknown = [g for g in names if g not in genres]
        if unknown:
            raise InvalidInput(
                f"genre {unknown[0]!r} is not one of this data set's: {', '.join(sorted(genres))}",
                field="genres",
            )
    return NewMovie(
        title=title,
        year=year,
        genres=tuple(dict.fromkeys(names)),
        imdb_id=parse_imdb(row["imdbId"]),
        tmdb_id=_whole(row["tmdbId"], "tmdbId", low=1) if row["tmdbId"].strip() else None,
    )


def parse_imdb(value: str) -> int | None:
    """``"tt0114709"``, ``"0114709"`` or ``"114709"`` -> 114709; empty -> ``None``."""
    text = value.strip()
    if not text:
        return None
    match = _IMDB.match(text)
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(f"imdbId {text[:40]!r} is not an IMDb id like tt0114709", "imdbId")
    return int(match.group(1))


def _whole(value: str, name: str, low: int, high: int | None = None) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise InvalidInput(f"{name} {text[:40]!r} is not a whole number", field=name)
    number = int(text)
    if number < low or (high is not None and number > high):
        upper = f" to {high}" if high is not None else " or more"
        raise InvalidInput(f"{name} {number} is out of range ({low}{upper})", field=name)
    return number


def from_tmdb(details: Mapping[str, object], genres: Iterable[str]) -> NewMovie:
    """A :class:`NewMovie` from TMDB's movie details (``title``, ``release_date``,
    ``genres`` ``[{"name"}]``, ``imdb_id``, ``id``), genres mapped to the data set's
    vocabulary (``genres``); TMDB genres without a MovieLens twin are left out."""
    vocabulary = frozenset(genres)
    names = []
    given = details.get("genres")  # TMDB's JSON: checked, not trusted
    for genre in given if isinstance(given, list) else []:
        name = genre.get("name") if isinstance(genre, dict) else None
        if isinstance(name, str):
            name = TMDB_GENRES.get(name, name)
            if name == "Children" and name not in vocabulary and "Children's" in vocabulary:
                name = "Children's"  # ml-100k's spelling
            if name in vocabulary:
                names.append(name)
    released = str(details.get("release_date") or "")
    row = {
        "title": str(details.get("title") or details.get("original_title") or ""),
        "year": released[:4] if re.match(r"^\d{4}", released) else "",
        "genres": "|".join(names),
        "imdbId": str(details.get("imdb_id") or ""),
        "tmdbId": str(details.get("id") or ""),
    }
    return replace(_new_movie(row, genres=vocabulary), source=f"TMDB id {row['tmdbId']}")


# -- adding ---------------------------------------------------------------------------------
def add_movies(
    path: Path,
    catalog: Catalog,
    new: list[NewMovie],
    imdb_of: Mapping[int, int] | None = None,
    now: datetime | None = None,
) -> list[AddedMovie]:
    """Add ``new`` to the added list in ``path``, all or none; returns the added movies.

    ``catalog`` is the data set's catalogue (with or without its added movies) and
    ``imdb_of`` its ``movieId -> IMDb number`` (links.csv). A movie already there (same
    IMDb id, TMDB id, or title and year) or given twice is ``InvalidInput`` naming it.
    """
    stamp = (now or datetime.now(UTC)).replace(microsecond=0).isoformat()
    with _locked(path):
        current = read_added(path)
        base = catalog.without_added()
        if len(base) and int(base.frame.index.max()) >= ADDED_FROM:
            raise InvalidInput(
                f"the data set has movieIds from {ADDED_FROM:,} on, where added movies are "
                "numbered; movies cannot be added to it",
                field="catalog",
            )
        _check_new(new, base, dict(imdb_of or {}), current)
        next_id = max([ADDED_FROM - 1, *(m.movie_id for m in current)]) + 1
        added = [
            AddedMovie(**vars(m), movie_id=next_id + k, added_at=stamp) for k, m in enumerate(new)
        ]
        _write(path, current + added)
    return added


def _check_new(
    new: list[NewMovie], base: Catalog, imdb_of: dict[int, int], current: list[AddedMovie]
) -> None:
    """``InvalidInput`` naming the first movie of ``new`` already known or given twice."""
    frame = base.frame
    titles = frame["title"].tolist()
    named = {m: f"movieId {m} ({t})" for m, t in zip(frame.index.tolist(), titles, strict=True)}
    seen_imdb = {imdb: named[m] for m, imdb in imdb_of.items() if m in named}
    seen_tmdb = {int(t): named[m] for m, t in frame["tmdb_id"].dropna().items()}
    seen_title: dict[tuple[str, int | None], str] = {}
    for movie_id, title, year in zip(frame.index.tolist(), titles, frame["year"], strict=True):
        key = (fold(display_title(title)), None if pd.isna(year) else int(year))
        seen_title.setdefault(key, named[movie_id])
    for added in current:
        where = f"added movieId {added.movie_id} ({added.catalog_title})"
        if added.imdb_id:
            seen_imdb.setdefault(added.imdb_id, where)
        if added.tmdb_id:
            seen_tmdb.setdefault(added.tmdb_id, where)
        seen_title.setdefault((fold(added.title), added.year), where)
    for movie in new:
        this = f"{movie.source or movie.describe()} of this batch"
        key = (fold(movie.title), movie.year)
        found = None
        if movie.imdb_id and movie.imdb_id in seen_imdb:
            found = f"IMDb id tt{movie.imdb_id:07d} as {seen_imdb[movie.imdb_id]}"
        elif movie.tmdb_id and movie.tmdb_id in seen_tmdb:
            found = f"TMDB id {movie.tmdb_id} as {seen_tmdb[movie.tmdb_id]}"
        elif key in seen_title:
            found = f"title and year as {seen_title[key]}"
        if found:
            where = f"{movie.source}: " if movie.source else ""
            raise InvalidInput(
                f"{where}{movie.describe()} is a duplicate: the same {found}; nothing was added",
                field="movie",
            )
        if movie.imdb_id:
            seen_imdb[movie.imdb_id] = this
        if movie.tmdb_id:
            seen_tmdb[movie.tmdb_id] = this
        seen_title[key] = this


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` exclusively (one adder at a time, across processes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: Path, movies: list[AddedMovie]) -> None:
    """Write ``movies`` to a temporary file beside ``path``, sync it, rename it over."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(STORED_COLUMNS)
    for m in movies:
        writer.writerow(
            [
                m.movie_id,
                m.title,
                m.year or "",
                "|".join(m.genres),
                f"tt{m.imdb_id:07d}" if m.imdb_id else "",
                m.tmdb_id or "",
                m.added_at,
            ]
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- the catalogue with its added movies -------------------------------------------------------
def with_added(catalog: Catalog, movies: list[AddedMovie]) -> Catalog:
    """``catalog`` (without any added movies it held) plus ``movies``, unrated."""
    base = catalog.without_added()
    if not movies:
        return base
    genres = np.empty(len(movies), dtype=object)
    genres[:] = [m.genres for m in movies]
    extra = pd.DataFrame(
        {
            "title": [m.catalog_title for m in movies],
            "year": pd.array([m.year for m in movies], dtype="Int64"),
            "genres": genres,
            "tmdb_id": pd.array([m.tmdb_id for m in movies], dtype="Int64"),
            "n_ratings": np.zeros(len(movies), dtype=np.int64),
            "mean_rating": np.full(len(movies), np.nan),
        },
        index=pd.Index([m.movie_id for m in movies], name="movieId", dtype=np.int64),
    )
    frame = pd.concat([base.frame, extra[base.frame.columns]])
    return Catalog(frame, tags=base.tags, added=extra.index.tolist())


def imdb_numbers(folder: Path | None) -> dict[int, int]:
    """``movieId -> IMDb number`` from a data set's links.csv (empty when it has none)."""
    path = folder / "links.csv" if folder else None
    if path is None or not path.is_file():
        return {}
    links = pd.read_csv(path, dtype={"movieId": "int64", "imdbId": "string"})
    links = links.dropna(subset=["imdbId"])
    numbers = pd.to_numeric(links["imdbId"].str.strip(), errors="coerce")
    good = numbers.notna() & (numbers > 0)
    return dict(
        zip(links["movieId"][good].tolist(), numbers[good].astype("int64").tolist(), strict=True)
    )


def genre_vocabulary(catalog: Catalog) -> list[str]:
    """Every genre the catalogue's movies have, sorted."""
    return sorted({g for genres in catalog.frame["genres"] for g in genres})


__all__ = [
    "ADDED_FROM",
    "AddedMovie",
    "NewMovie",
    "add_movies",
    "added_path",
    "file_stamp",
    "from_tmdb",
    "genre_vocabulary",
    "imdb_numbers",
    "parse_imdb",
    "read_added",
    "read_new_movies",
    "with_added",
]
