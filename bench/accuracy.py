"""Accuracy and fit time on ml-100k's official folds u1-u5, ours beside Surprise's.

Fits ``svd``, ``nmf`` and ``popular`` (default parameters) and Surprise's ``SVD`` and
``NMF`` (default parameters, ``random_state=0``) on each ``u<k>.base``, scores each on
``u<k>.test`` and prints RMSE, MAE and fit seconds (mean over folds) plus our/Surprise
ratios. Models are fitted in turn on each fold, so they share the machine's load.

Usage::

    nice python bench/accuracy.py [--source DIR_OR_URL] [--folds 1 2 3 4 5]

``--source`` defaults to ``$MOVIEREC_DATA_SOURCE``, else ``../shared/data`` beside the
repository. Surprise comes with the ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import pandas as pd
from common import (  # bench/common.py (scripts run from bench/)
    default_source,
    header,
    print_table,
    stopwatch,
    temp_home,
)

from movierec import models
from movierec.data import Ratings, fetch_dataset, official_folds

OURS = ("svd", "nmf", "popular")
THEIRS = ("surprise SVD", "surprise NMF")
PAIRS = (("svd", "surprise SVD"), ("nmf", "surprise NMF"))


def import_surprise():
    """The ``surprise`` module, or exit with a message saying how to install it."""
    try:
        import surprise
    except ImportError:
        sys.exit(
            "bench/accuracy.py compares against Surprise, which is not installed; "
            "install the bench extra: pip install -e '.[bench]'"
        )
    return surprise


def errors(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """``(rmse, mae)`` in stars."""
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean(diff**2))), float(np.mean(np.abs(diff)))


def timed(fit: Callable[[], object]) -> float:
    """Seconds ``fit()`` takes."""
    with stopwatch() as watch:
        fit()
    return watch.wall


def run_ours(name: str, train: Ratings, test: pd.DataFrame) -> tuple[float, float, float]:
    """``(rmse, mae, fit seconds)`` of our model ``name``."""
    model = models.create(name, seed=0)
    seconds = timed(lambda: model.fit(train))
    return (*errors(model.predict(test["userId"], test["movieId"]), test["rating"]), seconds)


def run_surprise(
    surprise, algo_name: str, train: pd.DataFrame, test: pd.DataFrame
) -> tuple[float, float, float]:
    """``(rmse, mae, fit seconds)`` of Surprise's ``SVD`` or ``NMF`` with default parameters."""
    reader = surprise.Reader(rating_scale=(1, 5))
    columns = ["userId", "movieId", "rating"]
    trainset = surprise.Dataset.load_from_df(train[columns], reader).build_full_trainset()
    algo = getattr(surprise, algo_name)(random_state=0)
    seconds = timed(lambda: algo.fit(trainset))
    testset = list(test[columns].itertuples(index=False, name=None))
    predictions = algo.test(testset)
    return (
        surprise.accuracy.rmse(predictions, verbose=False),
        surprise.accuracy.mae(predictions, verbose=False),
        seconds,
    )


def warm_up(train: Ratings) -> None:
    """Compile the numba kernels (cached on disk after the first run) before timing."""
    for name in OURS:
        klass = models.model_class(name)
        params = {"n_epochs": 1} if "n_epochs" in klass.defaults else {}
        models.create(name, **params).fit(train)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=default_source(), help="MovieLens mirror")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args(argv)
    header(argv)
    surprise = import_surprise()

    results: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    with temp_home() as home:
        fetch_dataset("ml-100k", source=args.source, home=home, progress=False)
        folds = official_folds("ml-100k", home=home, fetch=False)
    for k in args.folds:
        train_frame, test = folds[k - 1]
        train = Ratings.from_frame(train_frame)
        if k == args.folds[0]:
            warm_up(train)
        for name in OURS:
            results[name].append(run_ours(name, train, test))
        for label in THEIRS:
            results[label].append(run_surprise(surprise, label.split()[1], train_frame, test))
        line = "  ".join(f"{m} {results[m][-1][0]:.4f}" for m in (*OURS, *THEIRS))
        print(f"u{k}: RMSE {line}", flush=True)

    mean = {m: np.mean(np.array(rows), axis=0) for m, rows in results.items()}
    folds_label = ",".join(f"u{k}" for k in args.folds)
    print(f"\nml-100k official folds {folds_label}: mean over folds\n")
    rows = [(m, *(f"{v:.{d}f}" for v, d in zip(mean[m], (4, 4, 3), strict=True))) for m in mean]
    print_table(["model", "RMSE", "MAE", "fit s"], rows)
    print("\nours / Surprise (below 1 is better)\n")
    ratios = [
        (f"{ours} / {theirs}", *(f"{mean[ours][i] / mean[theirs][i]:.3f}" for i in (0, 2)))
        for ours, theirs in PAIRS
    ]
    print_table(["pair", "RMSE", "fit time"], ratios)
    print("\nparameters:")
    for name in OURS:
        print(f"  {name}: {models.create(name).params}")


if __name__ == "__main__":
    main()
