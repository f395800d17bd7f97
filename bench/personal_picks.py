"""Personal picks (issue 17, items 2 and 5): today's ``ease`` against the default, measured
by ``movierec evaluate``'s own onboarding protocol, and the picks a movie fan would see.

Three modes:

- ``--seeds 0-4`` (the targets): ``evaluate_frame(..., protocol="onboarding",
  split="kfold:5")`` on ml-latest-small, once per seed, for ``ease`` with ``TODAY``'s
  parameters (the ranking before this change: no dislike weight, no popularity debias,
  ``star_power`` 3, ``min_count`` 50, no genre re-ranking) and with the defaults. Prints
  each figure's mean and standard deviation over seeds (each seed's value is the mean
  over its 5 folds) and the ratio new / today.
- ``--validate --seeds 1-2 [--set name=value ...]``: the same protocol on validation
  users only: the evaluation's own ``holdout:0.2`` user split is redone and only its
  training users are kept; they are cut into ``kfold:4`` (seed + 1) and each group in turn
  is held out. The constants of ``models/ease.py`` and ``rerank.py`` were chosen here,
  never on the held-out users of the first mode.
- ``--fans``: fits every served model on all of ml-latest-small, today's way and the
  default way, and prints the top 10 through the library (``RecommendService``, what the
  web page shows) for four visitors: a horror fan who hates romance, a parent who loves
  children's movies and hates horror, a 2010s sci-fi fan, and a visitor who rated three
  movies 1 star; and the 2010-and-later top 5 of the first two.

Usage::

    nice python bench/personal_picks.py --seeds 0-4
    nice python bench/personal_picks.py --validate --seeds 1-2 --set genre_weight=0.5
    nice python bench/personal_picks.py --fans
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd
from common import (  # bench/common.py (scripts run from bench/)
    default_source,
    header,
    print_table,
    ratio,
    seed_range,
    temp_home,
)

from movierec import models
from movierec.data import fetch_dataset, load_dataset
from movierec.evaluate.personas import genre_personas
from movierec.evaluate.run import evaluate_frame
from movierec.evaluate.splits import parse_split, user_folds
from movierec.recommend import RecommendService

#: ``ease`` as it ranked before dislikes counted and picks were made personal
TODAY: dict[str, dict[str, Any]] = {
    "ease": {
        "min_count": 50,
        "star_power": 3.0,
        "popularity": 0.01,
        "dislike_weight": None,
        "popularity_debias": 0.0,
        "genre_weight": 0.0,
    },
    "svd": {"genre_weight": 0.0},
    "nmf": {"genre_weight": 0.0},
    "popular": {"genre_weight": 0.0},
}
SERVED = ("ease", "svd", "nmf", "popular")
#: (column of evaluate's results, label, how the target reads)
FIGURES = (
    ("ndcg@10", "NDCG@10", ">= 0.95x"),
    ("taste_loved@10", "loved-genre share", ">= 2x"),
    ("taste_hated@10", "hated-genre share", "<= 0.5x"),
    ("distinct@10", "distinct movies in top 10s", ">= 2x"),
    ("overlap@10", "overlap (Jaccard)", "<= 0.7x"),
    ("miscalibration@10", "miscalibration (KL)", "<= 0.7x"),
    ("popularity@10", "popularity percentile", ""),
    ("diversity@10", "intra-list diversity", ""),
)


def per_seed(frame: pd.DataFrame, catalog, params: dict, seed: int, validate: bool) -> dict:
    """Fold means of every figure for ``ease`` with ``params`` at one seed."""
    split = "kfold:5"
    if validate:
        frame, _ = user_folds(frame, parse_split("holdout:0.2"), seed=seed)[0]
        split, seed = "kfold:4", seed + 1
    result = evaluate_frame(
        frame, split, ["ease"], protocol="onboarding", progress=False, seed=seed,
        catalog=catalog, model_params={"ease": params},
    )  # fmt: skip
    folds = [fold["ease"] for fold in result.folds]
    return {key: float(np.mean([f[key] for f in folds])) for key, _, _ in FIGURES}


def compare(frame, catalog, seeds: list[int], validate: bool, changed: dict) -> None:
    rows = {"today": [], "new": []}
    for seed in seeds:
        rows["today"].append(per_seed(frame, catalog, TODAY["ease"], seed, validate))
        rows["new"].append(per_seed(frame, catalog, changed, seed, validate))
        print(f"seed {seed}: " + ", ".join(
            f"{key} {rows['today'][-1][key]:.3f} -> {rows['new'][-1][key]:.3f}"
            for key, _, _ in FIGURES[:6]
        ), flush=True)  # fmt: skip
    which = "validation users (holdout:0.2 training users, kfold:4)" if validate else "kfold:5"
    print(f"\nml-latest-small, onboarding protocol, {which}, seeds {seeds}; mean ± sd over seeds\n")
    table = []
    for key, label, target in FIGURES:
        old = np.array([r[key] for r in rows["today"]])
        new = np.array([r[key] for r in rows["new"]])
        cells = [f"{a.mean():.3f} ± {a.std():.3f}" for a in (old, new)]
        table.append((label, *cells, ratio(new.mean(), old.mean()), target))
    print_table(["figure", "today", "new", "ratio", "target"], table)


def fans(catalog, ratings) -> dict[str, dict[int, float]]:
    """The four visitors of the module doc, built from the data."""
    horror = genre_personas(ratings, catalog, genres=["Horror", "Romance"], seed=0)[0]
    parent = genre_personas(ratings, catalog, genres=["Children", "Horror"], seed=0)[0]
    frame = catalog.frame
    scifi = frame[frame["genres"].map(lambda g: "Sci-Fi" in g) & (frame["year"] >= 2010)]
    scifi = scifi.sort_values("n_ratings", ascending=False, kind="mergesort").head(8)
    most = frame.sort_values("n_ratings", ascending=False, kind="mergesort").head(3)
    return {
        "horror fan who hates romance": horror.ratings,
        "parent: loves children's movies, hates horror": parent.ratings,
        "2010s sci-fi fan": {int(m): 5.0 for m in scifi.index},
        "three movies at 1 star": {int(m): 1.0 for m in most.index},
    }


def show_fans(data) -> None:
    visitors = fans(data.catalog, data.ratings)
    for name, ratings in visitors.items():
        rated = [f"{data.catalog.get(m).display_title} {s:g}*" for m, s in ratings.items()]
        print(f"\n## {name}: " + ", ".join(rated))
    for model_name in SERVED:
        for label, params in (("today", TODAY[model_name]), ("new", {})):
            model = models.create(model_name, seed=0, **params).fit(data.ratings)
            service = RecommendService(model, data.catalog)
            print(f"\n### {model_name}, {label}")
            for name, ratings in visitors.items():
                result = service.recommend(ratings, n=10)
                print(f"- {name}" + (" [liked nothing]" if result.liked_nothing else ""))
                for k, pick in enumerate(result.items, 1):
                    movie = pick.movie
                    print(f"    {k:2}. {movie.display_title} ({movie.year}) "
                          f"{'|'.join(movie.genres)} -- {pick.reason}")  # fmt: skip
            for name in list(visitors)[:2]:
                new = service.recommend(visitors[name], year="new", n=5)
                print(f"- 2010+ for the {name}: " + "; ".join(
                    p.movie.display_title for p in new.items))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=default_source(), help="MovieLens mirror")
    parser.add_argument("--seeds", type=seed_range, default=[0, 1, 2, 3, 4])
    parser.add_argument("--validate", action="store_true", help="validation users only")
    parser.add_argument("--fans", action="store_true", help="print the four fans' picks")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="an ease parameter for the new side (repeatable; null for None)",
    )  # fmt: skip
    args = parser.parse_args()
    changed: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            changed[key] = None if value == "null" else float(value)
        except ValueError:
            parser.error(f"--set {item!r}: NAME=NUMBER or NAME=null")
    header()
    with temp_home("movierec-picks-") as home:
        fetch_dataset("ml-latest-small", source=args.source, home=home, progress=False)
        data = load_dataset("ml-latest-small", home=home)
    if args.fans:
        show_fans(data)
        return
    compare(data.frame, data.catalog, args.seeds, args.validate, changed)


if __name__ == "__main__":
    main()
