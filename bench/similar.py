"""How good are the movie page's "similar movies"? Offline, on held-out users.

For each seed, ml-latest-small's users are split (seeded) into training users (80 %) and
test users; each model is fitted on the training users, the catalogue's rating counts are
the training ones, and for every (test user, movie A they liked, >= 4 stars) pair with A
known to the model:

- co-liked@10: the share of A's similar list (up to 10) the user also liked (>= 4);
- genre coherence: mean Jaccard of A's genres and each listed movie's;
- tag coherence: mean cosine of tag-count vectors (tags.csv), over listed movies with
  tags, when A has tags;
- popularity lift: mean ``log1p(n)`` of the list minus ``log1p(n_A)`` (training counts;
  positive: the list drifts to famous movies).

All are means over the pairs; ``rare`` repeats them for A with < 30 training ratings.
``before`` is the movie page's logic at a5ddce9 (EASE's raw row of ``B``, else cosine of
item vectors), reproduced below, on a model with that commit's item-item settings
(``BEFORE_PARAMS``: ``B`` then covered movies with 50+ ratings); where today's defaults
differ, ``before (today's B)`` is the same logic on today's model. ``after`` is
:class:`movierec.similar.SimilarMovies` on today's model.

    python bench/similar.py [--seeds 0-2] [--models ease,svd] [--validate]
                            [--set shrink=10/30/100]

``--validate`` cuts the training users again (80/20, seeded) and scores the validation
users instead: how the constants of :mod:`movierec.similar` are chosen, without looking at
the test users. ``--set NAME=A/B`` tries values of a ``SimilarMovies`` keyword.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Collection

import numpy as np
import pandas as pd
from common import (  # bench/common.py (scripts run from bench/)
    default_source,
    header,
    print_table,
    seed_range,
    stopwatch,
    temp_home,
)

from movierec import models
from movierec.data import Catalog, Dataset, Ratings, fetch_dataset, load_dataset
from movierec.models import Recommender
from movierec.similar import SIMILAR_MIN_RATINGS, SimilarMovies

LIKED = 4.0
#: parameters of the model the page had at a5ddce9, where today's defaults differ
BEFORE_PARAMS: dict[str, dict[str, float]] = {"ease": {"min_count": 50}}
TOP = 10
RARE = 30
Lister = Callable[[int], list[int]]


# -- today's movie page, for the "before" column ---------------------------------------
def before_lister(model: Recommender, catalog: Catalog) -> Lister:
    """The movie page's similar list at a5ddce9, verbatim in behaviour.

    It read EASE's arrays (``kept``, ``item_item``) from outside the model; that is the
    leak this change removed from the app. The copy lives here only to print the
    ``before`` column.
    """
    movie_ids = np.asarray(model.movie_ids, dtype=np.int64)
    counts = catalog.frame["n_ratings"].reindex(movie_ids).fillna(0)
    allowed = counts.to_numpy(np.int64) >= SIMILAR_MIN_RATINGS
    vectors = model.item_vectors()
    unit = None
    if vectors is not None:
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    kept = getattr(model, "kept", None)
    item_item = getattr(model, "item_item", None)
    kept_row = {int(i): r for r, i in enumerate(kept.tolist())} if kept is not None else {}

    def top(scores: np.ndarray, item: int) -> list[int]:
        scores = np.where(allowed, scores, -np.inf)
        scores[item] = -np.inf
        order = np.argsort(-scores, kind="stable")[:TOP]
        return [int(movie_ids[i]) for i in order if np.isfinite(scores[i])]

    def similar(movie_id: int) -> list[int]:
        item = int(model.items_of([movie_id])[0])
        if item in kept_row:
            weights = item_item[kept_row[item]].astype(np.float64)
            scores = np.full(movie_ids.size, -np.inf)
            scores[kept] = np.where(weights > 0, weights, -np.inf)
            picks = top(scores, item)
            if len(picks) >= TOP or unit is None:
                return picks
        return top((unit @ unit[item]).astype(np.float64), item) if unit is not None else []

    return similar


def after_lister(model: Recommender, catalog: Catalog, **options: float) -> Lister:
    finder = SimilarMovies(model, catalog, **options)  # type: ignore[arg-type]
    return lambda movie_id: finder.similar(movie_id, TOP)


# -- data ---------------------------------------------------------------------------
def load_data(source: str | None) -> tuple[Dataset, dict[int, dict[str, int]]]:
    with temp_home() as home:
        fetch_dataset("ml-latest-small", source=source, home=home, progress=False)
        dataset = load_dataset("ml-latest-small", home=home, fetch=False)
        tags = pd.read_csv(dataset.folder / "tags.csv", usecols=["movieId", "tag"])
    tags = tags.dropna()
    tags["tag"] = tags["tag"].astype(str).str.strip().str.casefold()
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for (movie, tag), n in tags.groupby(["movieId", "tag"]).size().items():
        counts[int(movie)][str(tag)] = int(n)
    return dataset, dict(counts)


def split_users(frame: pd.DataFrame, seed: int, share: float = 0.2) -> tuple[pd.DataFrame, ...]:
    users = np.sort(frame["userId"].unique())
    rng = np.random.default_rng(seed)
    test = set(rng.choice(users, size=round(share * users.size), replace=False).tolist())
    held = frame["userId"].isin(test)
    return frame[~held], frame[held]


def training_catalog(dataset: Dataset, train: pd.DataFrame) -> Catalog:
    """The catalogue with rating counts (and means) of ``train`` only."""
    frame = dataset.catalog.frame.copy()
    stats = train.groupby("movieId")["rating"].agg(["size", "mean"])
    frame["n_ratings"] = stats["size"].reindex(frame.index, fill_value=0).astype(np.int64)
    frame["mean_rating"] = stats["mean"].reindex(frame.index)
    return Catalog(frame, tags=dataset.catalog.tags)


# -- metrics ---------------------------------------------------------------------------
def tag_cosine(a: dict[str, int], b: dict[str, int]) -> float:
    dot = sum(n * b.get(t, 0) for t, n in a.items())
    norm = math.sqrt(sum(n * n for n in a.values()) * sum(n * n for n in b.values()))
    return dot / norm


def measure(
    lister: Lister,
    catalog: Catalog,
    heldout: pd.DataFrame,
    model: Recommender,
    tags: dict[int, dict[str, int]],
) -> dict[str, float]:
    """The metrics of the module doc, over every (held-out user, liked movie) pair."""
    frame = catalog.frame
    genres = {m: set(g) - {"(no genres listed)"} for m, g in frame["genres"].items()}
    log_n = np.log1p(frame["n_ratings"]).to_dict()
    liked = heldout[heldout["rating"] >= LIKED].groupby("userId")["movieId"].agg(set)
    lists: dict[int, tuple[list[int], float, float, float]] = {}
    rows = []
    for movie_ids in liked:
        for a in movie_ids:
            if not model.has_movie(a):
                continue
            if a not in lists:
                picks = lister(a)
                genre = [
                    len(genres[a] & genres[j]) / len(genres[a] | genres[j])
                    for j in picks
                    if genres[a] | genres[j]
                ]
                tag = [tag_cosine(tags[a], tags[j]) for j in picks if a in tags and j in tags]
                lift = np.mean([log_n[j] for j in picks]) - log_n[a] if picks else np.nan
                lists[a] = (picks, _mean(genre), _mean(tag), lift)
            picks, genre_c, tag_c, lift = lists[a]
            if not picks:
                continue
            co = len(set(picks) & movie_ids) / len(picks)
            rows.append((co, genre_c, tag_c, lift, frame.at[a, "n_ratings"] < RARE))
    table = pd.DataFrame(rows, columns=["co", "genre", "tag", "lift", "rare"])
    out = {k: float(table[k].mean()) for k in ("co", "genre", "tag", "lift")}
    rare = table[table["rare"]]
    out.update({f"rare_{k}": float(rare[k].mean()) for k in ("co", "genre", "tag", "lift")})
    out["pairs"] = float(len(table))
    return out


def _mean(values: Collection[float]) -> float:
    return float(np.mean(values)) if values else np.nan


# -- main ------------------------------------------------------------------------------
def options_grid(sets: list[str]) -> list[dict[str, float]]:
    names, values = [], []
    for item in sets:
        name, _, choices = item.partition("=")
        names.append(name)
        values.append([float(v) for v in choices.split("/")])
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0-2"))
    parser.add_argument("--models", default="ease,svd")
    parser.add_argument("--source", default=default_source())
    parser.add_argument("--validate", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=A/B")
    args = parser.parse_args(argv)
    header(argv)
    dataset, tags = load_data(args.source)
    grid = options_grid(args.set)
    results: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for seed in args.seeds:
        train, heldout = split_users(dataset.frame, seed)
        if args.validate:
            train, heldout = split_users(train, 1000 + seed)
        catalog = training_catalog(dataset, train)
        ratings = Ratings.from_frame(train)
        for name in args.models.split(","):
            with stopwatch() as fitting:
                model = models.create(name, seed=seed).with_catalog(catalog).fit(ratings)
            fitted = fitting.wall
            methods = {}
            then = BEFORE_PARAMS.get(name, {})
            if any(model.params[k] != v for k, v in then.items()):
                old = models.create(name, seed=seed, **then).with_catalog(catalog).fit(ratings)
                methods["before"] = before_lister(old, catalog)
                methods["before (today's B)"] = before_lister(model, catalog)
            else:
                methods["before"] = before_lister(model, catalog)
            for options in grid:
                label = "after" + "".join(f" {k}={v:g}" for k, v in options.items())
                methods[label] = after_lister(model, catalog, **options)
            for label, lister in methods.items():
                with stopwatch() as measuring:
                    results[(name, label)].append(measure(lister, catalog, heldout, model, tags))
                took = measuring.wall
                print(
                    f"seed {seed} {name:5s} {label:28s} fit {fitted:5.1f}s  measure {took:5.1f}s",
                    file=sys.stderr,
                )
    columns = ["co", "genre", "tag", "lift", "rare_co", "rare_genre", "rare_tag", "rare_lift"]
    print(
        f"\n{'users' if not args.validate else 'validation users'}: seeds "
        f"{','.join(map(str, args.seeds))}; mean over seeds (min-max)"
    )
    rows = []
    for (name, label), runs in results.items():
        cells = []
        for column in columns:
            values = np.array([r[column] for r in runs])
            cells.append(f"{values.mean():.3f} ({values.min():.3f} to {values.max():.3f})")
        rows.append((name, label, *cells))
    print_table(["model", "method", *columns], rows)
    print(f"pairs per seed: {int(np.mean([r['pairs'] for r in next(iter(results.values()))]))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
