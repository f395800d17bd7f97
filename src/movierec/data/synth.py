"""Synthetic MovieLens look-alikes for tests and benchmarks (``movierec data synth``).

A set is written in the CSV layout of ml-25m (ratings.csv, movies.csv, links.csv,
tags.csv) under ``<home>/data/<name>/`` with a marker naming it synthetic, so
``--dataset <name>`` loads it like a release. Its shape follows the real data:

- users: every one rates at least 20 movies; activity beyond that is log-normal
  (median ~70, mean ~150 ratings a user, as in ml-25m), capped at half the catalogue.
- movies: Zipf-like popularity (exponent 1.3, rank offset 0.64 % of the catalogue), so
  the top 1 % of movies get ~30 % of the ratings and the long tail a handful each;
  years skewed to recent decades; genres drawn with ml-25m's frequencies from its
  19-genre list.
- stars: ``mean + user bias + movie bias + <user factors, movie factors> + noise``
  (8 factors), rounded to half stars (whole stars twice as likely), clipped to 0.5-5.
- timestamps: each user rates over a session of increasing times starting somewhere
  between 1996 and 2019; the file is ordered by user then movie, like ml-25m's.
- tags: about 4 % of ratings carry a tag from a small Zipf-weighted vocabulary.
- links: fake but well-formed IMDb (7 digits) and TMDB ids, unique per movie.

Everything is vectorised numpy from one seed (same seed, same bytes); 25 M ratings
take about a minute and ~4 GB.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from movierec.data.arrays import AnyArray, Float32Array, Float64Array, Int32Array, Int64Array
from movierec.data.fetch import write_marker
from movierec.data.movielens import (
    SYNTHETIC_MARKER,
    check_new_name,
    dataset_dir,
    get_spec,
)
from movierec.errors import DataError, InvalidInput

GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# share of ml-25m's 62,423 movies listing each genre (same order as GENRES)
GENRE_SHARE = np.array(
    [0.118, 0.066, 0.047, 0.047, 0.270, 0.085, 0.090, 0.410, 0.044, 0.006, 0.096, 0.003,
     0.017, 0.047, 0.124, 0.058, 0.139, 0.030, 0.022]
)  # fmt: skip
NO_GENRES = "(no genres listed)"
MIN_PER_USER = 20
FIRST_TIME = 820_454_400  # 1996-01-01, seconds
LAST_TIME = 1_574_208_000  # 2019-11-20, seconds
N_FACTORS = 8
GENERATOR_VERSION = 2  # bumped when the same seed would give other data (1: head-heavier Zipf)
_WORDS = (
    "Midnight", "River", "Shadow", "Summer", "Last", "Little", "Dark", "Secret", "Broken",
    "Golden", "Silent", "Lost", "Wild", "City", "Heart", "Night", "Road", "Blood", "Love",
    "Winter", "Dream", "Fire", "Iron", "Glass", "Paper", "Stone", "Ghost", "King", "Queen",
    "Girl", "Boy", "Man", "Woman", "House", "Island", "Storm", "Star", "Moon", "Sun", "Garden",
)  # fmt: skip
_TAGS = (
    "atmospheric", "funny", "sci-fi", "twist ending", "dark comedy", "visually appealing",
    "based on a book", "thought-provoking", "classic", "quirky", "romance", "surreal",
    "violence", "great soundtrack", "dystopia", "time travel", "action", "slow",
    "cinematography", "nostalgic", "feel-good", "philosophical", "bittersweet",
    "predictable", "overrated", "underrated", "space", "animation", "musical", "war",
    "true story", "psychology", "friendship", "Oscar (Best Picture)", "remake",
)  # fmt: skip


@dataclass(frozen=True)
class Shape:
    """The real set a synthetic one mimics: catalogue size and ratings per user."""

    movies: int
    mean_per_user: float
    median_per_user: float
    tags_per_rating: float


SHAPES = {
    "ml-25m": Shape(movies=62_423, mean_per_user=153.8, median_per_user=71, tags_per_rating=0.044),
    "ml-latest-small": Shape(
        movies=9_742, mean_per_user=165.3, median_per_user=70.5, tags_per_rating=0.037
    ),
}


@dataclass(frozen=True)
class SynthReport:
    """What ``synthesize`` wrote: where, and how many of each."""

    folder: Path
    ratings: int
    users: int
    movies: int
    tags: int


def synthesize(
    name: str,
    n_ratings: int,
    like: str = "ml-25m",
    seed: int = 0,
    home: Path | None = None,
    n_movies: int | None = None,
    force: bool = False,
) -> SynthReport:
    """Write synthetic set ``name`` (``n_ratings`` ratings, shaped like ``like``).

    ``n_movies`` overrides the catalogue size (default: the real set's). The set is
    written to a temporary folder and renamed into place; an existing set of that name
    is replaced only with ``force``.
    """
    check_new_name(name)
    if like not in SHAPES:
        known = ", ".join(sorted(SHAPES))
        raise InvalidInput(f"--like must be one of {known}, not {like[:100]!r}", field="like")
    shape = SHAPES[like]
    n_movies = shape.movies if n_movies is None else n_movies
    if n_movies < 2 * MIN_PER_USER:
        raise InvalidInput(f"need at least {2 * MIN_PER_USER} movies", field="movies")
    if n_ratings < MIN_PER_USER:
        raise InvalidInput(f"need at least {MIN_PER_USER} ratings (one user)", field="ratings")
    if n_ratings > 2_000_000_000:
        raise InvalidInput("at most 2,000,000,000 ratings", field="ratings")
    if home is None:
        from movierec.config import load_settings

        home = load_settings().home
    target = dataset_dir(name, home)
    if target.exists() and not force:
        raise DataError(f"{target} exists; pass --force to replace it")
    rng = np.random.default_rng(seed)
    counts = _user_counts(rng, n_ratings, shape, n_movies)
    movies = _movies(rng, n_movies)
    users, items = _pick_movies(rng, counts, movies["popularity"])
    stars = _stars(rng, users, items, counts.size, n_movies, movies["popularity"])
    times = _timestamps(rng, users, counts)
    tags = _tags(rng, users, items, times, shape.tags_per_rating)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", suffix=".partial", dir=target.parent))
    try:
        folder = staging / name
        folder.mkdir()
        movie_ids = movies["movie_id"]
        rows = {
            "ratings.csv": _write_ratings(folder, users, movie_ids[items], stars, times),
            "movies.csv": _write_movies(folder, movies),
            "links.csv": _write_links(rng, folder, movie_ids),
            "tags.csv": _write_tags(folder, tags, movie_ids),
        }
        marker = {
            "dataset": name,
            "synthetic": True,
            "like": like,
            "layout": "csv",
            "seed": seed,
            "generator": GENERATOR_VERSION,
            "ratings": int(users.size),
            "users": int(counts.size),
            "movies": int(n_movies),
            "rows": rows,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (folder / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        write_marker(get_spec(name, folder=folder), folder, "movierec data synth")
        if target.exists():
            os.rename(target, staging / "previous")
        os.rename(folder, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SynthReport(target, int(users.size), int(counts.size), n_movies, rows["tags.csv"])


# -- users ------------------------------------------------------------------------------------
def _user_counts(
    rng: np.random.Generator, n_ratings: int, shape: Shape, n_movies: int
) -> Int64Array:
    """``(n_users,)`` int64 ratings per user, each >= 20, summing to ``n_ratings``."""
    cap = max(MIN_PER_USER, n_movies // 2)
    n_users = max(1, round(n_ratings / shape.mean_per_user))
    extra_median = shape.median_per_user - MIN_PER_USER
    sigma = np.sqrt(2 * np.log((shape.mean_per_user - MIN_PER_USER) / extra_median))
    extra = rng.lognormal(np.log(extra_median), sigma, n_users)
    target_extra = n_ratings - MIN_PER_USER * n_users
    while target_extra < 0:  # too few ratings for that many users: fewer users
        n_users = n_ratings // MIN_PER_USER
        extra, target_extra = extra[:n_users], n_ratings - MIN_PER_USER * n_users
    limit = cap - MIN_PER_USER
    if target_extra > limit * n_users:
        raise InvalidInput(
            f"{n_ratings:,} ratings do not fit {n_users:,} users on {n_movies:,} movies",
            field="ratings",
        )
    low, high = 0.0, target_extra / max(extra.min(), 1e-12) + 1.0
    for _ in range(100):  # the scale putting sum(min(extra * scale, limit)) on target
        scale = (low + high) / 2
        if np.minimum(extra * scale, limit).sum() > target_extra:
            high = scale
        else:
            low = scale
    scaled = np.minimum(extra * low, limit)
    counts = MIN_PER_USER + np.floor(scaled).astype(np.int64)
    short = n_ratings - int(counts.sum())
    room = np.flatnonzero(counts < cap)
    while short > 0:  # hand out the rounding remainder one by one
        take = rng.choice(room, size=min(short, room.size), replace=False)
        counts[take] += 1
        short -= take.size
        room = np.flatnonzero(counts < cap)
    while short < 0:
        over = np.flatnonzero(counts > MIN_PER_USER)
        take = rng.choice(over, size=min(-short, over.size), replace=False)
        counts[take] -= 1
        short += take.size
    return counts


# -- movies -----------------------------------------------------------------------------------
def _movies(rng: np.random.Generator, n_movies: int) -> dict[str, AnyArray]:
    """Catalogue arrays: sparse increasing ids, titles, years, genres, popularity weights."""
    movie_id = np.cumsum(rng.geometric(0.35, n_movies))  # gaps like ml-25m's ids
    # Zipf-like over a shuffled rank, flattened at the head: the top 1 % of movies get
    # ~30 % of the draws and the top 10 % ~75 %, about as in ml-25m
    head = max(1.0, 400.0 * n_movies / SHAPES["ml-25m"].movies)  # 400 of ml-25m's 62k
    popularity = 1.0 / (head + rng.permutation(n_movies)) ** 1.3
    # older movies are fewer and, on average, rated less
    age = np.minimum(rng.exponential(16.0, n_movies), 117)
    year = (2019 - np.floor(age)).astype(np.int64)
    popularity *= np.exp(-age / 60)
    popularity /= popularity.sum()
    flags = rng.random((n_movies, len(GENRES))) < GENRE_SHARE
    first = rng.integers(0, len(_WORDS), n_movies)
    second = rng.integers(0, len(_WORDS), n_movies)
    article = rng.random(n_movies) < 0.12
    return {
        "movie_id": movie_id.astype(np.int64),
        "popularity": popularity,
        "year": year,
        "flags": flags,
        "first": first,
        "second": second,
        "article": article,
    }


def _pick_movies(
    rng: np.random.Generator, counts: Int64Array, popularity: Float64Array
) -> tuple[Int32Array, Int32Array]:
    """``(users, items)`` int32, ``counts[u]`` distinct movies per user by popularity,
    ordered by user then item.

    Draws with replacement from the popularity, drops repeats and redraws the shortfall;
    after a few rounds the remaining shortfall is drawn uniformly (heavy users have taken
    most popular movies by then).
    """
    n_movies = popularity.size
    cdf = np.cumsum(popularity)
    cdf /= cdf[-1]
    keys = np.empty(0, dtype=np.int64)
    need = counts.copy()
    for round_no in range(8):
        users = np.repeat(np.arange(counts.size, dtype=np.int64), need)
        if round_no < 4:
            items = np.searchsorted(cdf, rng.random(users.size), side="right")
        else:
            items = rng.integers(0, n_movies, users.size)
        keys = _merge(keys, users * n_movies + np.minimum(items, n_movies - 1))
        del users, items
        need = counts - np.bincount(keys // n_movies, minlength=counts.size)
        if not need.any():
            break
    # the few heavy users still short: draw from the movies each has not got yet
    extra = [
        user * n_movies
        + rng.choice(
            np.setdiff1d(
                np.arange(n_movies), keys[_user_slice(keys, int(user), n_movies)] % n_movies
            ),
            need[user],
            replace=False,
        )
        for user in np.flatnonzero(need)
    ]
    if extra:
        keys = _merge(keys, np.concatenate(extra))
    return (keys // n_movies).astype(np.int32), (keys % n_movies).astype(np.int32)


def _merge(keys: Int64Array, new: Int64Array) -> Int64Array:
    """Sorted distinct union of sorted distinct ``keys`` and any ``new`` keys."""
    # two sorted runs: the stable sort (timsort) merges them in linear time
    merged = np.sort(np.concatenate([keys, np.unique(new)]), kind="stable")
    return merged[np.concatenate(([True], merged[1:] != merged[:-1]))]


def _user_slice(keys: Int64Array, user: int, n_movies: int) -> slice:
    """The run of sorted ``keys`` belonging to ``user``."""
    lo, hi = np.searchsorted(keys, [user * n_movies, (user + 1) * n_movies])
    return slice(int(lo), int(hi))


# -- stars and times --------------------------------------------------------------------------
def _stars(
    rng: np.random.Generator,
    users: Int32Array,
    items: Int32Array,
    n_users: int,
    n_movies: int,
    popularity: Float64Array,
) -> Float32Array:
    """``(n,)`` float32 half stars from biases, a rank-8 signal and noise."""
    user_bias = rng.normal(0.0, 0.45, n_users).astype(np.float32)
    log_pop = np.log(popularity)
    pop_z = (log_pop - log_pop.mean()) / log_pop.std()
    movie_bias = (rng.normal(0.0, 0.4, n_movies) + 0.15 * pop_z).astype(np.float32)
    user_factors = rng.normal(0.0, 0.45, (n_users, N_FACTORS)).astype(np.float32)
    movie_factors = rng.normal(0.0, 0.45, (n_movies, N_FACTORS)).astype(np.float32)
    # centre the stars given on ml-25m's mean (3.53) from a sample of the pairs rated
    sample = rng.integers(0, users.size, min(users.size, 200_000))
    su, si = users[sample], items[sample]
    sampled = (
        user_bias[su] + movie_bias[si] + np.einsum("nk,nk->n", user_factors[su], movie_factors[si])
    )
    base = np.float32(3.53 - sampled.mean())
    stars = np.empty(users.size, dtype=np.float32)
    chunk = 2_000_000
    for start in range(0, users.size, chunk):
        u, i = users[start : start + chunk], items[start : start + chunk]
        signal = np.einsum("nk,nk->n", user_factors[u], movie_factors[i])
        noise = rng.normal(0.0, 0.5, u.size).astype(np.float32)
        score = base + user_bias[u] + movie_bias[i] + signal + noise
        whole = rng.random(u.size) < 0.67  # whole stars are given about twice as often
        half_steps = np.where(whole, 2 * np.round(score), np.round(2 * score))
        stars[start : start + chunk] = np.clip(half_steps, 1, 10) / 2
    return stars


def _timestamps(rng: np.random.Generator, users: Int32Array, counts: Int64Array) -> Int64Array:
    """``(n,)`` int64 Unix seconds, increasing over each user's ratings in a random order.

    Each user starts between 1996 and 2019 and rates over a log-normal span (median
    two months); gaps are mostly short (a session) and sometimes long (a return visit).
    """
    start = rng.integers(FIRST_TIME, LAST_TIME - 86_400, counts.size)
    span = np.minimum(rng.lognormal(np.log(60 * 86_400), 1.5, counts.size), LAST_TIME - start)
    gaps = np.where(
        rng.random(users.size) < 0.05,
        rng.exponential(200.0, users.size),
        rng.exponential(1.0, users.size),
    )
    elapsed = np.cumsum(gaps)
    del gaps
    ends = np.cumsum(counts) - 1
    before = np.concatenate(([0.0], elapsed[ends[:-1]]))
    total = elapsed[ends] - before
    per_user = np.repeat(span / np.maximum(total, 1e-9), counts)
    elapsed -= np.repeat(before, counts)
    elapsed *= per_user
    del per_user
    # the order in which a user rated their movies: a random permutation per user
    order = np.argsort(users.astype(np.int64) << 32 | rng.integers(0, 1 << 32, users.size))
    times = np.empty(users.size, dtype=np.int64)
    times[order] = np.repeat(start, counts) + elapsed.astype(np.int64)
    return times


def _tags(
    rng: np.random.Generator,
    users: Int32Array,
    items: Int32Array,
    times: Int64Array,
    per_rating: float,
) -> dict[str, AnyArray]:
    """Tags on a random ``per_rating`` share of ratings; a few ratings get a second tag."""
    picked = np.flatnonzero(rng.random(users.size) < per_rating * 0.8)
    if picked.size:
        picked = np.sort(np.concatenate([picked, rng.choice(picked, picked.size // 4)]))
    weights = 1.0 / np.arange(1, len(_TAGS) + 1)
    tag = rng.choice(len(_TAGS), picked.size, p=weights / weights.sum())
    key = np.unique(picked.astype(np.int64) * len(_TAGS) + tag)
    picked, tag = key // len(_TAGS), key % len(_TAGS)
    return {
        "user": users[picked],
        "item": items[picked],
        "tag": tag,
        "time": times[picked] + rng.integers(0, 600, picked.size),
    }


# -- writing ----------------------------------------------------------------------------------
_WRITE = pacsv.WriteOptions(include_header=False, quoting_style="needed")


def _write_csv(table: pa.Table, path: Path) -> None:
    """Write ``table`` with an unquoted header line, as MovieLens files have."""
    with open(path, "wb") as out:
        out.write((",".join(table.column_names) + "\n").encode("ascii"))
        pacsv.write_csv(table, out, _WRITE)


def _write_ratings(
    folder: Path, users: Int32Array, movie_ids: Int64Array, stars: Float32Array, times: Int64Array
) -> int:
    table = pa.table(
        {
            "userId": pa.array(users.astype(np.int64) + 1),
            "movieId": pa.array(movie_ids),
            "rating": pa.array(stars.astype(np.float64)),
            "timestamp": pa.array(times),
        }
    )
    _write_csv(table, folder / "ratings.csv")
    return int(table.num_rows)


def _write_movies(folder: Path, movies: dict[str, AnyArray]) -> int:
    words = np.array(_WORDS, dtype=object)
    names = words[movies["first"]] + " " + words[movies["second"]]
    names = np.where(movies["article"], names + ", The", names)
    titles = names + " (" + movies["year"].astype(str).astype(object) + ")"
    genres = [
        "|".join(GENRES[j] for j in np.flatnonzero(row)) or NO_GENRES for row in movies["flags"]
    ]
    table = pa.table(
        {
            "movieId": pa.array(movies["movie_id"]),
            "title": pa.array(titles.tolist(), pa.string()),
            "genres": pa.array(genres, pa.string()),
        }
    )
    _write_csv(table, folder / "movies.csv")
    return int(table.num_rows)


def _write_links(rng: np.random.Generator, folder: Path, movie_ids: Int64Array) -> int:
    n = movie_ids.size
    imdb = np.cumsum(rng.integers(1, 9_000_000 // n + 2, n))  # unique, below 10,000,000
    tmdb = np.cumsum(rng.integers(1, 40, n))
    missing = rng.random(n) < 0.002
    table = pa.table(
        {
            "movieId": pa.array(movie_ids),
            "imdbId": pa.array([f"{i:07d}" for i in imdb.tolist()], pa.string()),
            "tmdbId": pa.array(tmdb, mask=missing),
        }
    )
    _write_csv(table, folder / "links.csv")
    return int(table.num_rows)


def _write_tags(folder: Path, tags: dict[str, AnyArray], movie_ids: Int64Array) -> int:
    vocabulary = np.array(_TAGS, dtype=object)
    table = pa.table(
        {
            "userId": pa.array(tags["user"].astype(np.int64) + 1),
            "movieId": pa.array(movie_ids[tags["item"]]),
            "tag": pa.array(vocabulary[tags["tag"]].tolist(), pa.string()),
            "timestamp": pa.array(tags["time"]),
        }
    )
    _write_csv(table, folder / "tags.csv")
    return int(table.num_rows)
