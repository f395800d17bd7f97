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
import tempfile
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from common import default_source  # bench/common.py (scripts run from bench/)

from movierec import models
from movierec.data import Dataset, Ratings, fetch_dataset, load_dataset
from movierec.recommend import RecommendService

MODELS = ("ease", "svd", "nmf", "popular")
N_RATED, POOL, TOP_N = 15, 50, 5


def simulate_visitors(ratings: Ratings, n: int, seed: int) -> list[tuple[list[int], list[float]]]:
    """``n`` visitors as ``(movie_ids, stars)``: 15 of the 50 most-rated movies each,
    every star drawn from the real ratings of that movie."""
    rng = np.random.default_rng(seed)
    counts = ratings.item_counts()
    pool = np.argsort(-counts, kind="stable")[:POOL]
    by_item = ratings.matrix.tocsc()
    stars_of = {
        int(i): by_item.data[by_item.indptr[i] : by_item.indptr[i + 1]].astype(float) for i in pool
    }
    visitors = []
    for _ in range(n):
        items = rng.choice(pool, N_RATED, replace=False)
        stars = [float(rng.choice(stars_of[int(i)])) for i in items]
        visitors.append((ratings.movie_ids[items].tolist(), stars))
    return visitors


def recommend(model: models.Recommender, movie_ids: list[int], stars: list[float]) -> np.ndarray:
    """``(5,)`` item indices of the visitor's top 5 unrated movies, best first."""
    state = model.fold_in(movie_ids, stars)
    scores = model.rank(state)
    scores[state.items] = -np.inf
    top = np.argpartition(-scores, TOP_N)[:TOP_N]
    return top[np.argsort(-scores[top])]


def time_visitors(
    serve_one: Callable[[list[int], list[float]], object], visitors: list
) -> np.ndarray:
    """``(n,)`` milliseconds per visitor (after a few untimed warm-up visitors)."""
    for movie_ids, stars in visitors[:20]:
        serve_one(movie_ids, stars)
    out = np.empty(len(visitors))
    for j, (movie_ids, stars) in enumerate(visitors):
        start = time.perf_counter()
        serve_one(movie_ids, stars)
        out[j] = (time.perf_counter() - start) * 1000
    return out


def refit_once(
    dataset: Dataset, movie_ids: list[int], stars: list[float], fill: float, n_components: int
) -> float:
    """Seconds the original design takes for one visitor: dense matrix with blanks
    filled, visitor appended as a new row, scikit-learn NMF refit, visitor's row read."""
    from sklearn.decomposition import NMF as SklearnNMF

    ratings = dataset.ratings
    start = time.perf_counter()
    dense = ratings.matrix.toarray()
    dense[dense == 0] = fill
    visitor = np.full((1, ratings.n_items), fill, dtype=dense.dtype)
    visitor[0, ratings.items_of(movie_ids)] = stars
    matrix = np.vstack([dense, visitor])
    nmf = SklearnNMF(n_components=n_components, max_iter=200, random_state=0)
    user_factors = nmf.fit_transform(matrix)
    scores = user_factors[-1] @ nmf.components_
    np.argpartition(-scores, TOP_N)[:TOP_N]
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=default_source(), help="MovieLens mirror")
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fill", type=float, default=3.0, help="blank value for the refit")
    parser.add_argument("--components", type=int, default=20, help="refit NMF components")
    parser.add_argument("--no-refit", action="store_true", help="skip the slow refit timing")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="movierec-bench-") as home:
        fetch_dataset("ml-latest-small", source=args.source, home=home, progress=False)
        dataset = load_dataset("ml-latest-small", home=home, fetch=False)
    ratings = dataset.ratings
    visitors = simulate_visitors(ratings, args.visitors, args.seed)
    print(
        f"ml-latest-small: {ratings.n_users} users, {ratings.n_items} movies, "
        f"{ratings.nnz} ratings; {len(visitors)} visitors x {N_RATED} ratings\n"
    )

    p50: dict[str, float] = {}
    fitted: dict[str, models.Recommender] = {}
    print("fold_in + rank + top 5:\n")
    print(f"| {'model':<8}| {'fit s':>6} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} |")
    print(f"|{'-' * 9}|{'-' * 8}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for name in MODELS:
        klass = models.model_class(name)
        if "n_epochs" in klass.defaults:  # compile the numba kernels before timing the fit
            models.create(name, n_epochs=1).fit(ratings)
        model = models.create(name, seed=0)
        start = time.perf_counter()
        model.fit(ratings)
        fit_seconds = time.perf_counter() - start
        fitted[name] = model
        ms = time_visitors(partial(recommend, model), visitors)
        p50[name] = float(np.percentile(ms, 50))
        print(
            f"| {name:<8}| {fit_seconds:6.2f} | {p50[name]:7.3f} | "
            f"{np.percentile(ms, 99):7.3f} | {ms.max():7.3f} |",
            flush=True,
        )

    print("\nthe recommend service (RecommendService.recommend, n=5, year any):\n")
    print(f"| {'model':<8}| {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} |")
    print(f"|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for name, model in fitted.items():
        service = RecommendService(model, dataset.catalog)
        ms = time_visitors(
            lambda m, s, service=service: service.recommend(dict(zip(m, s, strict=True))),
            visitors,
        )
        print(
            f"| {name:<8}| {np.percentile(ms, 50):7.3f} | {np.percentile(ms, 99):7.3f} | "
            f"{ms.max():7.3f} |",
            flush=True,
        )

    if args.no_refit:
        return
    movie_ids, stars = visitors[0]
    seconds = refit_once(dataset, movie_ids, stars, args.fill, args.components)
    print(
        f"\noriginal design (scikit-learn NMF, {args.components} components, blanks = "
        f"{args.fill:g}, refit on {ratings.n_users + 1} x {ratings.n_items} per visitor): "
        f"{seconds:.2f} s for one visitor"
    )
    for name in MODELS:
        print(f"  refit / {name} fold-in p50: {seconds * 1000 / p50[name]:,.0f}x")


if __name__ == "__main__":
    main()
