"""RMSE of Spark-trained ``als`` beside our own ``als`` on ml-100k's official folds u1-u5.

On each fold both are fitted on ``u<k>.base`` with the same (default) parameters; each
model is saved to a model file, read back with ``models.load`` and scored on
``u<k>.test`` through the model's ``predict``, so the Spark path is measured exactly as
``serve`` would use it. Also shown: Spark's own user factors with the bias-only user
biases (``refold_users=False``), to show what the closing user half-step changes.

Usage::

    nice python bench/spark_accuracy.py [--source DIR_OR_URL] [--folds 1 2 3 4 5]
        [--master local[2]] [-p n_epochs=15 ...]

Needs the ``spark`` extra and Java 17: ``pip install -e '.[spark]'``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
from movierec.models.base import Recommender
from movierec.spark_engine import DEFAULT_MASTER, spark_session, train_on_spark


def rmse_through_file(model: Recommender, test: pd.DataFrame, path: Path) -> float:
    """RMSE (stars) of ``model`` on ``test`` after a save / ``models.load`` round trip."""
    loaded = models.load(model.save(path))
    predicted = loaded.predict(test["userId"], test["movieId"])
    return float(np.sqrt(np.mean((predicted - test["rating"].to_numpy(np.float64)) ** 2)))


def parse_param(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    number = float(value)
    return name, int(number) if number.is_integer() and "." not in value else number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=default_source())
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--master", default=DEFAULT_MASTER)
    parser.add_argument("-p", "--param", action="append", type=parse_param, default=[])
    args = parser.parse_args()
    header()
    params = dict(args.param)
    rows = []
    with temp_home() as home:
        fetch_dataset("ml-100k", source=args.source, home=home, progress=False)
        folds = official_folds("ml-100k", home=home)
        with spark_session(args.master, "1g") as spark:
            for fold in args.folds:
                base, test = folds[fold - 1]
                train = Ratings.from_frame(base)
                with stopwatch() as watch:
                    ours = models.create("als", seed=0, **params).fit(train)
                ours_s = watch.wall
                with stopwatch() as watch:
                    spark_model = train_on_spark(train, spark, seed=0, **params)
                spark_s = watch.wall
                raw = train_on_spark(train, spark, seed=0, refold_users=False, **params)
                row = {
                    "fold": f"u{fold}",
                    "als": rmse_through_file(ours, test, home / "ours.npz"),
                    "spark": rmse_through_file(spark_model, test, home / "spark.npz"),
                    "spark_raw_users": rmse_through_file(raw, test, home / "raw.npz"),
                    "als_s": ours_s,
                    "spark_s": spark_s,
                }
                row["diff"] = row["spark"] - row["als"]
                rows.append(row)
                print(
                    f"{row['fold']}: als {row['als']:.4f}  spark {row['spark']:.4f}  "
                    f"(diff {row['diff']:+.4f}; spark's own user factors "
                    f"{row['spark_raw_users']:.4f})  fit als {ours_s:.1f} s, spark {spark_s:.1f} s",
                    flush=True,
                )
    table = pd.DataFrame(rows).set_index("fold")
    table.loc["mean"] = table.mean()
    cells = [(fold, *(f"{v:.4f}" for v in values)) for fold, values in table.iterrows()]
    print_table(["fold", *table.columns], cells)
    worst = table["diff"].abs().max()
    print(f"largest |spark - als| RMSE: {worst:.4f} (goal <= 0.01)")


if __name__ == "__main__":
    main()
