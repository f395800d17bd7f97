"""The MovieLens data sets we know: their files, how to check them and how to read them.

Three layouts:

- CSV (``ml-latest-small``, ``ml-20m``, ``ml-25m``, ``ml-32m``, ``ml-latest`` and the
  synthetic sets of ``movierec data synth``): ratings.csv, movies.csv, links.csv,
  tags.csv (UTF-8 CSV with a header; LF or CRLF), 0.5-5 stars in half steps; ml-20m,
  ml-25m and ml-latest add the tag genome (genome-scores.csv, genome-tags.csv), which
  is checked when fetched but not loaded.
- ``::``-separated .dat without header: ``ml-1m`` (ratings.dat, movies.dat, users.dat;
  Latin-1; 1-5 whole stars) and ``ml-10m`` (ratings.dat, movies.dat, tags.dat; UTF-8;
  half stars; zip folder ``ml-10M100K``).
- ``ml-100k``: u.data (tab-separated), u.item (pipe-separated Latin-1, 19 genre flags
  named in u.genre), 1-5 whole stars, and the official splits u1..u5 and ua/ub.

Ratings files of a million rows or so are kept as a binary copy beside the data set
(see ``movierec.data.cache``), so only the first load parses the CSV.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movierec.config import load_settings
from movierec.data.arrays import AnyArray, BoolArray
from movierec.data.cache import cached_arrays
from movierec.data.catalog import Catalog
from movierec.data.parsing import (
    Column,
    DataFileError,
    TableFormat,
    line_of,
    parse_years,
    read_arrow,
    read_table,
    split_genres,
)
from movierec.data.ratings import Ratings, dense_codes
from movierec.errors import DataError, InvalidInput

CHECKSUMS_FILE = "SHA256SUMS"
SYNTHETIC_MARKER = ".movierec-synthetic.json"  # written by ``movierec data synth``
OFFICIAL_URL = "https://files.grouplens.org/datasets/movielens"
Layout = Literal["csv", "dat", "100k"]
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
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

_ML100K: dict[str, Any] = {"header": False, "encoding": "latin-1", "quoted": False}
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

GENOME_SCORES_CSV = TableFormat(
    (_MOVIE, Column("tagId", low=1), Column("relevance", "float", low=0, high=1))
)
GENOME_TAGS_CSV = TableFormat((Column("tagId", low=1), Column("tag", "str")))

_DAT: dict[str, Any] = {"sep": "::", "header": False, "quoted": False}
_WHOLE_STARS = Column("rating", "float", low=1, high=5, step=1)
_HALF_STARS = Column("rating", "float", low=0.5, high=5, step=0.5)
ML1M_RATINGS = TableFormat((_USER, _MOVIE, _WHOLE_STARS, _TIMESTAMP), encoding="latin-1", **_DAT)
ML1M_MOVIES = TableFormat(
    (_MOVIE, Column("title", "str"), Column("genres", "str")), encoding="latin-1", **_DAT
)
ML1M_USERS = TableFormat(
    (
        _USER,
        Column("gender", "str"),
        Column("age", low=0),
        Column("occupation", low=0),
        Column("zip", "str"),
    ),
    encoding="latin-1",
    **_DAT,
)
ML10M_RATINGS = TableFormat((_USER, _MOVIE, _HALF_STARS, _TIMESTAMP), **_DAT)
ML10M_MOVIES = TableFormat((_MOVIE, Column("title", "str"), Column("genres", "str")), **_DAT)
ML10M_TAGS = TableFormat((_USER, _MOVIE, Column("tag", "str"), _TIMESTAMP), **_DAT)


# -- data set descriptions ----------------------------------------------------------------
@dataclass(frozen=True)
class DataFile:
    """One file of a data set: its name, layout and number of data rows (header excluded).

    ``rows`` within ``tolerance`` (a fraction) is accepted; ``rows=None`` checks nothing
    (ml-latest grows with every release).
    """

    filename: str
    fmt: TableFormat
    rows: int | None
    tolerance: float = 0.0

    def rows_ok(self, found: int) -> bool:
        if self.rows is None:
            return found > 0
        return abs(found - self.rows) <= self.tolerance * self.rows


@dataclass(frozen=True)
class DatasetSpec:
    """What a data set holds; ``files`` are all required and checked when fetched.

    ``max_bytes`` caps a fetch: the download and the unpacked files together may not
    exceed it (bytes; a few times the real set, so only a hostile source hits it).
    ``layout`` says how it is read; ``zip_folder`` is the folder inside the official zip;
    ``users``/``movies``/``ratings`` are the published counts (for ``data list``);
    ``includes`` says what comes besides ratings and movies.
    """

    name: str
    description: str
    files: tuple[DataFile, ...]
    splits: tuple[str, ...] = ()
    max_bytes: int = 64 * 1024 * 1024
    layout: Layout = "csv"
    zip_folder: str = ""
    ratings: int | None = None
    users: int | None = None
    movies: int | None = None
    includes: str = ""
    synthetic: bool = False

    @property
    def filenames(self) -> list[str]:
        return [f.filename for f in self.files]

    @property
    def url(self) -> str:
        """The official download (``<url>.md5`` holds its published md5)."""
        return f"{OFFICIAL_URL}/{self.name}.zip"

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
    tags: ``movieId -> list of distinct tags`` (from tags.csv / tags.dat; empty if none).
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
        found = read_arrow(folder / data_file.filename, data_file.fmt, label).num_rows
        if not data_file.rows_ok(found):
            about = "about " if data_file.tolerance else ""
            expected = f"{about}{data_file.rows:,}" if data_file.rows is not None else "some"
            raise DataFileError(label, f"{found:,} rows, expected {expected}")


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
    spec = get_spec(name, folder=folder)
    return _LOADERS[spec.layout](spec, folder)


def _load_csv(spec: DatasetSpec, folder: Path) -> Dataset:
    movies = spec.read(folder, "movies.csv")
    links = spec.read(folder, "links.csv")
    _check_unique_ids(movies, folder / "movies.csv", MOVIES_CSV)
    tmdb = links.drop_duplicates("movieId").set_index("movieId")["tmdbId"]
    info = _movie_info(movies, tmdb.reindex(movies["movieId"]).astype("Int64").array)
    part = _ratings_part(spec, folder, "ratings.csv", movies["movieId"], "movies.csv")
    tags = _tags_by_movie(spec.read(folder, "tags.csv"))
    return _dataset(spec.name, folder, part, info, tags)


def _load_dat(spec: DatasetSpec, folder: Path) -> Dataset:
    movies = spec.read(folder, "movies.dat")
    _check_unique_ids(movies, folder / "movies.dat", spec.file("movies.dat").fmt)
    info = _movie_info(movies, pd.array([pd.NA] * len(movies), dtype="Int64"))
    part = _ratings_part(spec, folder, "ratings.dat", movies["movieId"], "movies.dat")
    has_tags = "tags.dat" in spec.filenames
    tags = _tags_by_movie(spec.read(folder, "tags.dat")) if has_tags else {}
    return _dataset(spec.name, folder, part, info, tags)


def _movie_info(movies: pd.DataFrame, tmdb_ids: pd.api.extensions.ExtensionArray) -> pd.DataFrame:
    """The catalogue columns from a ``movieId, title, genres`` frame (pipe-separated genres)."""
    return pd.DataFrame(
        {
            "title": movies["title"].str.strip().to_numpy(),
            "year": parse_years(movies["title"]).array,
            "genres": split_genres(movies["genres"]).to_numpy(),
            "tmdb_id": tmdb_ids,
        },
        index=pd.Index(movies["movieId"].to_numpy(), name="movieId"),
    )


def _load_100k(spec: DatasetSpec, folder: Path) -> Dataset:
    items = spec.read(folder, "u.item")
    genre_names = _genre_names(spec.read(folder, "u.genre"), folder / "u.genre")
    _check_unique_ids(items, folder / "u.item", U_ITEM)
    part = _ratings_part(spec, folder, "u.data", items["movieId"], "u.item")
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
    return _dataset(spec.name, folder, part, info, {})


# -- the ratings, parsed once and then read from a binary copy ------------------------------
_FRAME_ARRAYS = ("userId", "movieId", "rating", "timestamp")


def _ratings_part(
    spec: DatasetSpec, folder: Path, filename: str, known_movies: pd.Series, listing: str
) -> dict[str, AnyArray]:
    """The ratings file as arrays: frame columns, CSR parts and per-movie counts/means.

    Built from the file (movies checked against ``listing``) or read from the cache
    kept beside it; the cache is keyed on the ratings file and the listing.
    """
    path = folder / filename

    def build() -> dict[str, AnyArray]:
        frame = spec.read(folder, filename)
        _check_known_movies(frame, known_movies, path, spec.file(filename).fmt, listing)
        return _ratings_arrays(frame)

    return cached_arrays(folder, [path, folder / listing], build)


def _ratings_arrays(frame: pd.DataFrame) -> dict[str, AnyArray]:
    """Everything a Dataset needs from the ratings, as plain arrays (cacheable)."""
    arrays: dict[str, AnyArray] = {col: frame[col].to_numpy() for col in _FRAME_ARRAYS}
    ratings = Ratings.from_arrays(arrays["userId"], arrays["movieId"], arrays["rating"])
    stat_ids, codes = dense_codes(arrays["movieId"])
    counts = np.bincount(codes, minlength=stat_ids.size)
    sums = np.bincount(codes, weights=arrays["rating"], minlength=stat_ids.size)
    del codes
    arrays.update(
        csr_data=ratings.matrix.data,
        csr_indices=ratings.matrix.indices,
        csr_indptr=ratings.matrix.indptr,
        user_ids=ratings.user_ids,
        movie_ids=ratings.movie_ids,
        stat_movie_ids=stat_ids,
        stat_counts=counts.astype(np.int64),
        stat_means=sums / np.maximum(counts, 1),
    )
    return arrays


def _dataset(
    name: str,
    folder: Path,
    part: dict[str, AnyArray],
    info: pd.DataFrame,
    tags: dict[int, list[str]],
) -> Dataset:
    """Add per-movie rating counts and means to ``info`` and wrap it all up."""
    stats = pd.DataFrame(
        {"size": part["stat_counts"], "mean": part["stat_means"]},
        index=pd.Index(part["stat_movie_ids"], name="movieId"),
    )
    info["n_ratings"] = stats["size"].reindex(info.index, fill_value=0).astype(np.int64)
    info["mean_rating"] = stats["mean"].reindex(info.index).astype(np.float64)
    frame = pd.DataFrame({col: part[col] for col in _FRAME_ARRAYS}, copy=False)
    user_ids, movie_ids = part["user_ids"], part["movie_ids"]
    matrix = sp.csr_matrix(
        (part["csr_data"], part["csr_indices"], part["csr_indptr"]),
        shape=(user_ids.size, movie_ids.size),
        copy=False,
    )
    ratings = Ratings(matrix=matrix, user_ids=user_ids, movie_ids=movie_ids)
    catalog = Catalog(info, tags=tags)
    return Dataset(name, ratings, catalog, frame, tags, folder)


def _genre_names(genres: pd.DataFrame, path: Path) -> list[str]:
    """Genre name per flag position from u.genre; the ``unknown`` genre maps to ``""``."""
    if sorted(genres["genre_id"]) != list(range(N_GENRE_FLAGS)):
        raise DataFileError(str(path), f"expected genre ids 0..{N_GENRE_FLAGS - 1}")
    names = genres.set_index("genre_id")["genre"].sort_index()
    return ["" if g == "unknown" else str(g) for g in names]


def _flag_genres(flags: BoolArray, genre_names: list[str]) -> tuple[str, ...]:
    """``(19,)`` bool flags -> the names of the genres set (``unknown`` left out)."""
    return tuple(genre_names[j] for j in np.flatnonzero(flags) if genre_names[j])


def _tags_by_movie(tags: pd.DataFrame) -> dict[int, list[str]]:
    """``movieId -> distinct stripped tags`` in the order first given.

    Vectorised (a stable sort by movie, then slices of one list): ml-25m's 1.1 M tags
    take well under a second, where a pandas groupby loop took ~15 s.
    """
    stripped = tags.assign(tag=tags["tag"].str.strip())
    stripped = stripped[stripped["tag"] != ""].drop_duplicates(["movieId", "tag"])
    movie_ids = stripped["movieId"].to_numpy()
    order = np.argsort(movie_ids, kind="stable")
    movie_ids = movie_ids[order]
    texts = stripped["tag"].to_numpy(dtype=object)[order].tolist()
    starts = np.flatnonzero(np.concatenate(([True], movie_ids[1:] != movie_ids[:-1])))
    ends = np.append(starts[1:], movie_ids.size)
    return {
        int(movie_ids[start]): texts[start:end]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
    }


def _check_unique_ids(movies: pd.DataFrame, path: Path, fmt: TableFormat) -> None:
    duplicated = movies["movieId"].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        movie_id = movies["movieId"].iat[row]
        raise DataFileError(str(path), f"movieId {movie_id} listed twice", line_of(path, fmt, row))


def _check_known_movies(
    frame: pd.DataFrame, known: pd.Series, path: Path, fmt: TableFormat, listing: str
) -> None:
    unknown = ~np.isin(frame["movieId"].to_numpy(), known.to_numpy())
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


_CSV_FILES = (
    ("ratings.csv", RATINGS_CSV),
    ("movies.csv", MOVIES_CSV),
    ("links.csv", LINKS_CSV),
    ("tags.csv", TAGS_CSV),
)
_GENOME_FILES = (("genome-scores.csv", GENOME_SCORES_CSV), ("genome-tags.csv", GENOME_TAGS_CSV))
_MiB = 1024 * 1024


def _release_files(
    formats: tuple[tuple[str, TableFormat], ...], rows: tuple[int | None, ...]
) -> tuple[DataFile, ...]:
    """Files of a big release; row counts are checked to within 1 %."""
    return tuple(
        DataFile(filename, fmt, count, tolerance=0.01)
        for (filename, fmt), count in zip(formats, rows, strict=True)
    )


_GENOME_INCLUDED = "tags, links (IMDb/TMDB), tag genome"
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
            max_bytes=32 * _MiB,  # 3.2 MB unpacked
            zip_folder="ml-latest-small",
            ratings=100_836,
            users=610,
            movies=9_742,
            includes="tags, links (IMDb/TMDB)",
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
            max_bytes=160 * _MiB,  # 16 MB unpacked
            layout="100k",
            zip_folder="ml-100k",
            ratings=100_000,
            users=943,
            movies=1_682,
            includes="user demographics, official folds u1-u5, ua/ub",
        ),
        "ml-1m": DatasetSpec(
            name="ml-1m",
            description="1,000,209 ratings (1-5 stars) by 6,040 users on 3,883 movies",
            files=_release_files(
                (
                    ("ratings.dat", ML1M_RATINGS),
                    ("movies.dat", ML1M_MOVIES),
                    ("users.dat", ML1M_USERS),
                ),
                (1_000_209, 3_883, 6_040),
            ),  # fmt: skip
            max_bytes=256 * _MiB,  # 6 MB zip, 24 MB unpacked
            layout="dat",
            zip_folder="ml-1m",
            ratings=1_000_209,
            users=6_040,
            movies=3_883,
            includes="user demographics (users.dat); '::' .dat files in Latin-1",
        ),
        "ml-10m": DatasetSpec(
            name="ml-10m",
            description="10,000,054 ratings (0.5-5 stars) by 69,878 users on 10,681 movies",
            files=_release_files(
                (
                    ("ratings.dat", ML10M_RATINGS),
                    ("movies.dat", ML10M_MOVIES),
                    ("tags.dat", ML10M_TAGS),
                ),
                (10_000_054, 10_681, 95_580),
            ),  # fmt: skip
            max_bytes=1536 * _MiB,  # 63 MB zip, 265 MB unpacked
            layout="dat",
            zip_folder="ml-10M100K",
            ratings=10_000_054,
            users=69_878,
            movies=10_681,
            includes="tags; '::' .dat files in UTF-8",
        ),
        "ml-20m": DatasetSpec(
            name="ml-20m",
            description="20,000,263 ratings (0.5-5 stars) by 138,493 users on 27,278 movies",
            files=_release_files(
                _CSV_FILES + _GENOME_FILES,
                (20_000_263, 27_278, 27_278, 465_564, 11_709_768, 1_128),
            ),
            max_bytes=4096 * _MiB,  # 190 MB zip, 875 MB unpacked
            zip_folder="ml-20m",
            ratings=20_000_263,
            users=138_493,
            movies=27_278,
            includes=_GENOME_INCLUDED,
        ),
        "ml-25m": DatasetSpec(
            name="ml-25m",
            description="25,000,095 ratings (0.5-5 stars) by 162,541 users on 62,423 movies",
            files=_release_files(
                _CSV_FILES + _GENOME_FILES,
                (25_000_095, 62_423, 62_423, 1_093_360, 15_584_448, 1_128),
            ),
            max_bytes=4096 * _MiB,  # 250 MB zip, 1.1 GB unpacked
            zip_folder="ml-25m",
            ratings=25_000_095,
            users=162_541,
            movies=62_423,
            includes=_GENOME_INCLUDED,
        ),
        "ml-32m": DatasetSpec(
            name="ml-32m",
            description="32,000,204 ratings (0.5-5 stars) by 200,948 users on 87,585 movies",
            files=_release_files(_CSV_FILES, (32_000_204, 87_585, 87_585, 2_000_072)),
            max_bytes=4096 * _MiB,  # 239 MB zip, 0.9 GB unpacked
            zip_folder="ml-32m",
            ratings=32_000_204,
            users=200_948,
            movies=87_585,
            includes="tags, links (IMDb/TMDB); no genome",
        ),
        "ml-latest": DatasetSpec(
            name="ml-latest",
            description="the full, growing set: 33 M+ ratings by 330k+ users on 86k+ movies",
            files=tuple(DataFile(f, fmt, None) for f, fmt in _CSV_FILES + _GENOME_FILES),
            max_bytes=8192 * _MiB,  # 335 MB zip, 1.5 GB unpacked (2018 release)
            zip_folder="ml-latest",
            includes=_GENOME_INCLUDED + "; changes with each release (counts not checked)",
        ),
    }
)


_LOADERS: dict[str, Callable[[DatasetSpec, Path], Dataset]] = {
    "csv": _load_csv,
    "dat": _load_dat,
    "100k": _load_100k,
}


def available_datasets() -> list[str]:
    """Names of the MovieLens releases movierec can fetch and load."""
    return sorted(DATASETS)


def dataset_dir(name: str, home: Path) -> Path:
    """Where data set ``name`` lives under ``home``."""
    return home / "data" / name


def get_spec(name: str, home: Path | None = None, folder: Path | None = None) -> DatasetSpec:
    """The description of data set ``name``: a release, or a synthetic set found in
    ``folder`` (default ``<home>/data/<name>``, home defaulting to ``MOVIEREC_HOME``).

    ``InvalidInput`` naming the known ones if there is no such set.
    """
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        pass
    if isinstance(name, str) and _NAME_RE.fullmatch(name):
        if folder is None:
            folder = dataset_dir(name, Path(home) if home is not None else load_settings().home)
        spec = synthetic_spec(name, folder)
        if spec is not None:
            return spec
    known = ", ".join(available_datasets())
    raise InvalidInput(
        f"unknown data set {str(name)[:100]!r}; known: {known} "
        "and synthetic sets made by `movierec data synth`",
        field="name",
    )


def check_new_name(name: str) -> str:
    """``name`` if it can name a new (synthetic) data set folder, else ``InvalidInput``."""
    if name in DATASETS:
        raise InvalidInput(f"{name} is a MovieLens release; choose another name", field="name")
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"data set name {name[:100]!r} must be 1-64 letters, digits, '.', '_' or '-' "
            "starting with a letter or digit",
            field="name",
        )
    return name


def synthetic_spec(name: str, folder: Path) -> DatasetSpec | None:
    """The spec of synthetic set ``name`` in ``folder`` from its marker, or ``None``."""
    try:
        marker = json.loads((folder / SYNTHETIC_MARKER).read_text(encoding="utf-8"))
        like = DATASETS[marker["like"]]
        rows = {str(f): int(n) for f, n in marker["rows"].items()}
        counts = (int(marker["ratings"]), int(marker["users"]), int(marker["movies"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if marker.get("dataset") != name or marker.get("layout") != "csv":
        return None
    files = tuple(DataFile(f, fmt, rows.get(f)) for f, fmt in _CSV_FILES)
    return replace(
        like,
        name=name,
        description=f"synthetic, shaped like {like.name}: {counts[0]:,} ratings by "
        f"{counts[1]:,} users on {counts[2]:,} movies (seed {marker.get('seed')})",
        files=files,
        splits=(),
        layout="csv",
        zip_folder="",
        ratings=counts[0],
        users=counts[1],
        movies=counts[2],
        includes=f"synthetic: tags, links (fake IMDb/TMDB ids), like {like.name}",
        synthetic=True,
    )


def synthetic_datasets(home: Path) -> list[str]:
    """Names of the synthetic sets under ``<home>/data/``."""
    data = home / "data"
    if not data.is_dir():
        return []
    found = (p.name for p in data.iterdir() if (p / SYNTHETIC_MARKER).is_file())
    return sorted(name for name in found if name not in DATASETS)
