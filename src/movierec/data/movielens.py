"""The MovieLens data sets we know: their files, how to check them and how to read them.

Two sets are supported:

- ``ml-latest-small``: ratings.csv, movies.csv, links.csv, tags.csv (UTF-8 CSV with a
  header; LF or CRLF line endings), 0.5-5 stars in half steps.
- ``ml-100k``: u.data (tab-separated), u.item (pipe-separated Latin-1, 19 genre flags
  named in u.genre), 1-5 whole stars, and the official splits u1..u5 and ua/ub.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from movierec.data.catalog import Catalog
from movierec.data.parsing import (
    Column,
    DataFileError,
    TableFormat,
    line_of,
    parse_years,
    read_table,
    split_genres,
)
from movierec.data.ratings import Ratings
from movierec.errors import DataError, InvalidInput

CHECKSUMS_FILE = "SHA256SUMS"
RATING_COLUMNS = ["userId", "movieId", "rating", "timestamp"]

# -- file formats -----------------------------------------------------------------------
_USER = Column("userId", low=1)
_MOVIE = Column("movieId", low=1)
_TIMESTAMP = Column("timestamp", low=0)

RATINGS_CSV = TableFormat(
    (_USER, _MOVIE, Column("rating", "float", low=0.5, high=5, step=0.5), _TIMESTAMP)
)
MOVIES_CSV = TableFormat((_MOVIE, Column("title", "str"), Column("genres", "str")))
LINKS_CSV = TableFormat((_MOVIE, Column("imdbId", "str"), Column("tmdbId", "int?")))
TAGS_CSV = TableFormat((_USER, _MOVIE, Column("tag", "str"), _TIMESTAMP))

_ML100K = {"header": False, "encoding": "latin-1", "quoted": False}
U_DATA = TableFormat(
    (_USER, _MOVIE, Column("rating", "float", low=1, high=5, step=1), _TIMESTAMP),
    sep="\t",
    **_ML100K,
)
N_GENRE_FLAGS = 19
U_ITEM = TableFormat(
    (
        _MOVIE,
        Column("title", "str"),
        Column("release_date", "str"),
        Column("video_release_date", "str"),
        Column("imdb_url", "str"),
        *(Column(f"genre_{i}", low=0, high=1) for i in range(N_GENRE_FLAGS)),
    ),
    sep="|",
    **_ML100K,
)
U_GENRE = TableFormat((Column("genre", "str"), Column("genre_id", low=0)), sep="|", **_ML100K)


# -- data set descriptions ----------------------------------------------------------------
@dataclass(frozen=True)
class DataFile:
    """One file of a data set: its name, layout and number of data rows (header excluded)."""

    filename: str
    fmt: TableFormat
    rows: int


@dataclass(frozen=True)
class DatasetSpec:
    """What a data set holds; ``files`` are all required and checked when fetched.

    ``max_bytes`` caps a fetch: the download and the unpacked files together may not
    exceed it (bytes; about ten times the real set, so only a hostile source hits it).
    """

    name: str
    description: str
    files: tuple[DataFile, ...]
    splits: tuple[str, ...] = ()
    max_bytes: int = 64 * 1024 * 1024

    @property
    def filenames(self) -> list[str]:
        return [f.filename for f in self.files]

    def file(self, filename: str) -> DataFile:
        for data_file in self.files:
            if data_file.filename == filename:
                return data_file
        raise KeyError(filename)

    def read(self, folder: Path, filename: str, label: str | None = None) -> pd.DataFrame:
        """Read one of the set's files from ``folder`` (checked against its format)."""
        return read_table(folder / filename, self.file(filename).fmt, label)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded data set.

    frame: the raw ratings, columns ``userId, movieId`` (int64), ``rating`` (float64
    stars), ``timestamp`` (int64 Unix seconds), in file order.
    ratings: the same as a sparse ``Ratings`` matrix.
    catalog: every movie of the set (rated or not), see ``Catalog``.
    tags: ``movieId -> list of distinct tags`` (ml-latest-small only; empty otherwise).
    folder: where the files were read from.
    """

    name: str
    ratings: Ratings
    catalog: Catalog
    frame: pd.DataFrame
    tags: dict[int, list[str]]
    folder: Path


# -- checking a folder --------------------------------------------------------------------
def verify_folder(spec: DatasetSpec, folder: Path, origin: str | None = None) -> None:
    """Check ``folder`` holds ``spec``'s files with the right fields and row counts.

    If a ``SHA256SUMS`` file is present, every file it lists must match. ``origin``
    (default: the folder) is how files are named in the ``DataError`` raised.
    """
    origin = origin or str(folder)
    missing = [name for name in spec.filenames if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{origin}: {spec.name} lacks {', '.join(missing)}")
    if (folder / CHECKSUMS_FILE).is_file():
        verify_checksums(folder, origin)
    for data_file in spec.files:
        label = f"{origin}/{data_file.filename}"
        frame = spec.read(folder, data_file.filename, label)
        if len(frame) != data_file.rows:
            raise DataFileError(label, f"{len(frame):,} rows, expected {data_file.rows:,}")


def verify_checksums(folder: Path, origin: str) -> None:
    """Check every file listed in ``folder/SHA256SUMS`` (``sha256sum`` output format)."""
    sums_label = f"{origin}/{CHECKSUMS_FILE}"
    text = (folder / CHECKSUMS_FILE).read_text(encoding="utf-8", errors="replace")
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataFileError(sums_label, "expected '<sha256>  <file name>'", line_no)
        expected, name = parts[0].lower(), parts[1].lstrip("*")
        path = folder / name
        if Path(name).name != name or not path.is_file():
            raise DataFileError(sums_label, f"lists {name}, which is missing", line_no)
        if _sha256(path) != expected:
            raise DataFileError(f"{origin}/{name}", f"SHA-256 differs from {CHECKSUMS_FILE}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- building a Dataset -------------------------------------------------------------------
def read_dataset(name: str, folder: Path) -> Dataset:
    """Read data set ``name`` from ``folder`` (format and consistency checked)."""
    get_spec(name)
    return _LOADERS[name](name, folder)


def _load_latest_small(name: str, folder: Path) -> Dataset:
    spec = DATASETS[name]
    frame = spec.read(folder, "ratings.csv")
    movies = spec.read(folder, "movies.csv")
    links = spec.read(folder, "links.csv")
    tags_frame = spec.read(folder, "tags.csv")
    _check_unique_ids(movies, folder / "movies.csv", MOVIES_CSV)
    _check_known_movies(frame, movies, folder / "ratings.csv", RATINGS_CSV, "movies.csv")
    tmdb = links.drop_duplicates("movieId").set_index("movieId")["tmdbId"]
    info = pd.DataFrame(
        {
            "title": movies["title"].str.strip().to_numpy(),
            "year": parse_years(movies["title"]).array,
            "genres": split_genres(movies["genres"]).to_numpy(),
            "tmdb_id": tmdb.reindex(movies["movieId"]).astype("Int64").array,
        },
        index=pd.Index(movies["movieId"].to_numpy(), name="movieId"),
    )
    tags = _tags_by_movie(tags_frame)
    return _dataset(name, folder, frame, info, tags)


def _load_100k(name: str, folder: Path) -> Dataset:
    spec = DATASETS[name]
    frame = spec.read(folder, "u.data")
    items = spec.read(folder, "u.item")
    genre_names = _genre_names(spec.read(folder, "u.genre"), folder / "u.genre")
    _check_unique_ids(items, folder / "u.item", U_ITEM)
    _check_known_movies(frame, items, folder / "u.data", U_DATA, "u.item")
    flags = items[[f"genre_{i}" for i in range(N_GENRE_FLAGS)]].to_numpy(dtype=bool)
    genres = np.empty(len(items), dtype=object)
    genres[:] = [_flag_genres(row, genre_names) for row in flags]
    info = pd.DataFrame(
        {
            "title": items["title"].str.strip().to_numpy(),
            "year": parse_years(items["title"]).array,
            "genres": genres,
            "tmdb_id": pd.array([pd.NA] * len(items), dtype="Int64"),
        },
        index=pd.Index(items["movieId"].to_numpy(), name="movieId"),
    )
    return _dataset(name, folder, frame, info, {})


def _dataset(
    name: str,
    folder: Path,
    frame: pd.DataFrame,
    info: pd.DataFrame,
    tags: dict[int, list[str]],
) -> Dataset:
    """Add per-movie rating counts and means to ``info`` and wrap it all up."""
    stats = frame.groupby("movieId")["rating"].agg(["size", "mean"])
    info["n_ratings"] = stats["size"].reindex(info.index, fill_value=0).astype(np.int64)
    info["mean_rating"] = stats["mean"].reindex(info.index).astype(np.float64)
    ratings = Ratings.from_arrays(frame["userId"], frame["movieId"], frame["rating"])
    catalog = Catalog(info, tags=tags)
    return Dataset(name, ratings, catalog, frame, tags, folder)


def _genre_names(genres: pd.DataFrame, path: Path) -> list[str]:
    """Genre name per flag position from u.genre; the ``unknown`` genre maps to ``""``."""
    if sorted(genres["genre_id"]) != list(range(N_GENRE_FLAGS)):
        raise DataFileError(str(path), f"expected genre ids 0..{N_GENRE_FLAGS - 1}")
    names = genres.set_index("genre_id")["genre"].sort_index()
    return ["" if g == "unknown" else str(g) for g in names]


def _flag_genres(flags: np.ndarray, genre_names: list[str]) -> tuple[str, ...]:
    """``(19,)`` bool flags -> the names of the genres set (``unknown`` left out)."""
    return tuple(genre_names[j] for j in np.flatnonzero(flags) if genre_names[j])


def _tags_by_movie(tags: pd.DataFrame) -> dict[int, list[str]]:
    """``movieId -> distinct stripped tags`` in the order first given."""
    stripped = tags.assign(tag=tags["tag"].str.strip())
    stripped = stripped[stripped["tag"] != ""].drop_duplicates(["movieId", "tag"])
    return {
        int(movie_id): list(group)
        for movie_id, group in stripped.groupby("movieId", sort=True)["tag"]
    }


def _check_unique_ids(movies: pd.DataFrame, path: Path, fmt: TableFormat) -> None:
    duplicated = movies["movieId"].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        movie_id = movies["movieId"].iat[row]
        raise DataFileError(str(path), f"movieId {movie_id} listed twice", line_of(path, fmt, row))


def _check_known_movies(
    frame: pd.DataFrame, movies: pd.DataFrame, path: Path, fmt: TableFormat, listing: str
) -> None:
    unknown = ~frame["movieId"].isin(movies["movieId"]).to_numpy()
    if unknown.any():
        row = int(np.argmax(unknown))
        movie_id = frame["movieId"].iat[row]
        line = line_of(path, fmt, row)
        raise DataFileError(str(path), f"movieId {movie_id} is not in {listing}", line)


# -- the registry ---------------------------------------------------------------------------
def _splits_100k() -> tuple[DataFile, ...]:
    folds = [(f"u{k}", 80_000, 20_000) for k in range(1, 6)]
    folds += [("ua", 90_570, 9_430), ("ub", 90_570, 9_430)]
    return tuple(
        DataFile(f"{split}.{part}", U_DATA, rows)
        for split, base_rows, test_rows in folds
        for part, rows in (("base", base_rows), ("test", test_rows))
    )


DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        "ml-latest-small": DatasetSpec(
            name="ml-latest-small",
            description="100,836 ratings (0.5-5 stars) by 610 users on 9,742 movies, with tags",
            files=(
                DataFile("ratings.csv", RATINGS_CSV, 100_836),
                DataFile("movies.csv", MOVIES_CSV, 9_742),
                DataFile("links.csv", LINKS_CSV, 9_742),
                DataFile("tags.csv", TAGS_CSV, 3_683),
            ),
            max_bytes=32 * 1024 * 1024,  # 3.2 MB unpacked
        ),
        "ml-100k": DatasetSpec(
            name="ml-100k",
            description="100,000 ratings (1-5 stars) by 943 users on 1,682 movies, 5 folds",
            files=(
                DataFile("u.data", U_DATA, 100_000),
                DataFile("u.item", U_ITEM, 1_682),
                DataFile("u.genre", U_GENRE, N_GENRE_FLAGS),
                *_splits_100k(),
            ),
            splits=("u1", "u2", "u3", "u4", "u5", "ua", "ub"),
            max_bytes=160 * 1024 * 1024,  # 16 MB unpacked
        ),
    }
)


_LOADERS: dict[str, Callable[[str, Path], Dataset]] = {
    "ml-latest-small": _load_latest_small,
    "ml-100k": _load_100k,
}


def available_datasets() -> list[str]:
    """Names of the data sets movierec can fetch and load."""
    return sorted(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    """The description of data set ``name``; ``InvalidInput`` naming the known ones if unknown."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        known = ", ".join(available_datasets())
        raise InvalidInput(f"unknown data set {name!r}; known: {known}", field="name") from None
