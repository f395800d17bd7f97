"""Latency of serving a new visitor: fold-in + rank every movie + top 5.

Trains ``ease`` (the app's default), ``svd``, ``nmf`` and ``popular`` (default
parameters) on ml-latest-small, then simulates visitors who each rate 15 movies drawn
from the 50 most-rated, their stars drawn from those movies' real rating distributions
(fixed seed). Per visitor it times ``fold_in`` + ``rank`` + top 5 by ``argpartition``
(rated movies excluded) and prints p50 / p99 milliseconds per model; then the whole
recommend service as the web app calls it (``RecommendService.recommend``: validation,
fold-in, ranking, year filter, predicted stars and "because" explanations).

It then times the original bootcamp design once: append the visitor as a new row of the
dense user x movie matrix with blanks filled, refit scikit-learn's ``NMF`` on all of it
and read the visitor's row, and prints how many times slower that is than fold-in.

Usage::

    nice python bench/latency.py [--source DIR_OR_URL] [--visitors 1000] [--fill 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from common import (  # bench/common.py (scripts run from bench/)
    default_source,
    header,
    percentiles,
    print_table,
    stopwatch,
    temp_home,
)

from movierec import models
from movierec.data import Dataset, Ratings, fetch_dataset, load_dataset
from movierec.recommend import RecommendService

MODELS = ("ease", "svd", "nmf", "popular")
N_RATED, POOL, TOP_N = 15, 50, 5
#: the bootcamp refit builds a dense user x movie matrix: only below this many cells
REFIT_MAX_CELLS = 50_000_000


def simulate_visitors(ratings: Ratings, n: int, seed: int) -> list[tuple[list[int], list[float]]]:
    """``n`` visitors as ``(movie_ids, stars)``: 15 of the 50 most-rated movies each,
    every star drawn from the real ratings of that movie."""
    rng = np.random.default_rng(seed)
    counts = ratings.item_counts()
    pool = np.argsort(-counts, kind="stable")[:POOL]
    by_item = ratings.matrix[:, pool].tocsc()  # (n_users, 50): only the pool's columns
    stars_of = {
        int(i): by_item.data[by_item.indptr[c] : by_item.indptr[c + 1]].astype(float)
        for c, i in enumerate(pool)
    }
    visitors = []
    for _ in range(n):
        items = rng.choice(pool, N_RATED, replace=False)
        stars = [float(rng.choice(stars_of[int(i)])) for i in items]
        visitors.append((ratings.movie_ids[items].tolist(), stars))
    return visitors


def recommend(model: models.Recommender, movie_ids: list[int], stars: list[float]) -> np.ndarray:
    """``(5,)`` item indices of the visitor's top 5 unrated movies, best first: every
    movie ranked, then ``argpartition``."""
    state = model.fold_in(movie_ids, stars)
    scores = model.rank(state)
    scores[state.items] = -np.inf
    top = np.argpartition(-scores, TOP_N)[:TOP_N]
    return top[np.argsort(-scores[top])]


def recommend_top_k(
    model: models.Recommender, movie_ids: list[int], stars: list[float]
) -> np.ndarray:
    """The same top 5 by the model's ``top_k`` (rated movies not allowed)."""
    state = model.fold_in(movie_ids, stars)
    allowed = np.ones(model.n_items, dtype=bool)
    allowed[state.items] = False
    return model.top_k(state, TOP_N, allowed)


def time_visitors(
    serve_one: Callable[[list[int], list[float]], object], visitors: list
) -> dict[str, np.ndarray | int]:
    """Per visitor (after a few untimed warm-up visitors): ``wall`` and ``cpu``
    milliseconds (``(n,)`` each, CPU of every thread of this process), and the ``minor``
    and ``major`` page faults of all the timed visitors together."""
    for movie_ids, stars in visitors[:20]:
        serve_one(movie_ids, stars)
    wall, cpu = np.empty(len(visitors)), np.empty(len(visitors))
    before = resource.getrusage(resource.RUSAGE_SELF)
    for j, (movie_ids, stars) in enumerate(visitors):
        with stopwatch() as watch:
            serve_one(movie_ids, stars)
        wall[j], cpu[j] = watch.wall_ms, watch.cpu_ms
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall": wall,
        "cpu": cpu,
        "minor": after.ru_minflt - before.ru_minflt,
        "major": after.ru_majflt - before.ru_majflt,
    }


def row(*names: str, timed: dict) -> tuple[str, ...]:
    """One table row: ``names``, then p50 / p99 / max wall, p50 / p99 CPU (ms), page
    faults."""
    wall, cpu = timed["wall"], timed["cpu"]
    (wall_50, wall_99), (cpu_50, cpu_99) = percentiles(wall), percentiles(cpu)
    figures = (wall_50, wall_99, float(wall.max()), cpu_50, cpu_99)
    return (*names, *(f"{v:.3f}" for v in figures), str(timed["minor"]), str(timed["major"]))


COLUMNS = ["p50 ms", "p99 ms", "max ms", "cpu p50", "cpu p99", "minflt", "majflt"]


def refit_once(
    dataset: Dataset, movie_ids: list[int], stars: list[float], fill: float, n_components: int
) -> float:
    """Seconds the original design takes for one visitor: dense matrix with blanks
    filled, visitor appended as a new row, scikit-learn NMF refit, visitor's row read."""
    from sklearn.decomposition import NMF as SklearnNMF

    ratings = dataset.ratings
    with stopwatch() as watch:
        dense = ratings.matrix.toarray()
        dense[dense == 0] = fill
        visitor = np.full((1, ratings.n_items), fill, dtype=dense.dtype)
        visitor[0, ratings.items_of(movie_ids)] = stars
        matrix = np.vstack([dense, visitor])
        nmf = SklearnNMF(n_components=n_components, max_iter=200, random_state=0)
        user_factors = nmf.fit_transform(matrix)
        scores = user_factors[-1] @ nmf.components_
        np.argpartition(-scores, TOP_N)[:TOP_N]
    return watch.wall


def load_data(args: argparse.Namespace) -> Dataset:
    """``--dataset`` from ``--home``, or fetched into a temporary home from ``--source``."""
    if args.home:
        return load_dataset(args.dataset, home=args.home, fetch=False)
    with temp_home() as home:
        fetch_dataset(args.dataset, source=args.source, home=home, progress=False)
        return load_dataset(args.dataset, home=home, fetch=False)


def get_model(name: str, ratings: Ratings, args: argparse.Namespace) -> tuple[object, float]:
    """``(model, seconds)``: loaded from ``<home>/models/<dataset>-<name>.npz`` with
    ``--saved``, else fitted here with default parameters (numba compiled first)."""
    if args.saved:
        with stopwatch() as watch:
            model = models.load(Path(args.home) / "models" / f"{args.dataset}-{name}.npz")
        return model, watch.wall
    klass = models.model_class(name)
    if "n_epochs" in klass.defaults:  # compile the numba kernels before timing the fit
        models.create(name, n_epochs=1).fit(ratings)
    model = models.create(name, seed=0)
    with stopwatch() as watch:
        model.fit(ratings)
    return model, watch.wall


def same_picks(model: models.Recommender, visitors: list) -> bool:
    """Whether both paths pick movies of the same rank scores for every visitor."""
    for movie_ids, stars in visitors:
        ranking = model.rank(model.fold_in(movie_ids, stars))
        full = ranking[recommend(model, movie_ids, stars)]
        if not np.array_equal(full, ranking[recommend_top_k(model, movie_ids, stars)]):
            return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=default_source(), help="MovieLens mirror")
    parser.add_argument("--dataset", default="ml-latest-small", help="data set name")
    parser.add_argument("--home", help="MOVIEREC_HOME holding --dataset (and its models)")
    parser.add_argument("--saved", action="store_true", help="load saved models from --home")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fill", type=float, default=3.0, help="blank value for the refit")
    parser.add_argument("--components", type=int, default=20, help="refit NMF components")
    parser.add_argument("--no-refit", action="store_true", help="skip the slow refit timing")
    args = parser.parse_args(argv)
    if args.saved and not args.home:
        parser.error("--saved needs --home")
    header(argv)

    dataset = load_data(args)
    ratings = dataset.ratings
    visitors = simulate_visitors(ratings, args.visitors, args.seed)
    print(
        f"{args.dataset}: {ratings.n_users} users, {ratings.n_items} movies, "
        f"{ratings.nnz} ratings; {len(visitors)} visitors x {N_RATED} ratings\n"
    )

    p50: dict[str, float] = {}
    fitted: dict[str, models.Recommender] = {}
    rows = []
    how = "load s" if args.saved else "fit s"
    for name in args.models.split(","):
        model, seconds = get_model(name, ratings, args)
        fitted[name] = model
        how_long = f"{name} {'loaded' if args.saved else 'fitted'} in {seconds:.2f} s"
        print(how_long, file=sys.stderr, flush=True)
        timed = time_visitors(partial(recommend, model), visitors)
        rows.append(row(name, f"{seconds:.2f}", "rank", timed=timed))
        p50[name] = percentiles(timed["wall"], [50])[0]
        if not hasattr(model, "top_k"):  # a movierec from before top_k
            continue
        fast = time_visitors(partial(recommend_top_k, model), visitors)
        rows.append(row(name, f"{seconds:.2f}", "top_k", timed=fast))
        p50[name] = percentiles(fast["wall"], [50])[0]
        if not same_picks(model, visitors[:100]):
            print(f"  !! {name}: top_k and rank + argpartition picked differently")
    print("\nfold_in + top 5 (rank: every movie ranked; top_k: the model's top_k):\n")
    print_table(["model", how, "path", *COLUMNS], rows)

    rows = []
    for name, model in fitted.items():
        service = RecommendService(model, dataset.catalog)
        timed = time_visitors(
            lambda m, s, service=service: service.recommend(dict(zip(m, s, strict=True))),
            visitors,
        )
        rows.append(row(name, timed=timed))
    print("\nthe recommend service (RecommendService.recommend, n=5, year any):\n")
    print_table(["model", *COLUMNS], rows)

    if args.no_refit or ratings.n_users * ratings.n_items > REFIT_MAX_CELLS:
        return
    movie_ids, stars = visitors[0]
    seconds = refit_once(dataset, movie_ids, stars, args.fill, args.components)
    print(
        f"\noriginal design (scikit-learn NMF, {args.components} components, blanks = "
        f"{args.fill:g}, refit on {ratings.n_users + 1} x {ratings.n_items} per visitor): "
        f"{seconds:.2f} s for one visitor\n"
    )
    rows = [(name, f"{p50[name]:.3f}", f"{seconds * 1000 / p50[name]:,.0f}x") for name in fitted]
    print_table(["model", "fold-in + top 5 p50 ms", "refit / fold-in p50"], rows)


if __name__ == "__main__":
    main()
