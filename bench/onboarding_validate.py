"""Measure onboarding strategies on validation users only (how ``adaptive``'s constants
are chosen; the evaluation folds are never looked at).

Validation protocol: ml-latest-small users whose id is **not** a multiple of 5 (488 of
610; the other 122 are never used here), cut into 4 user folds (``kfold:4``, seed 0;
``--seeds 0,1`` pools two such cuts, halving the noise of a comparison).
Each fold in turn is held out; ``ease`` (the app's ranking model, default parameters) is
fitted on the other three and the strategies are run through the evaluation protocol
itself (:func:`movierec.evaluate.protocols.strategy_fold`: 3 rounds x 5 asked, the
visitor answers exactly what they rated, scored on their other ratings >= 4). Metrics
are pooled over the 4 folds (weighted by users scored).

    python bench/onboarding_validate.py [--strategy adaptive,random-top] \\
        [--seeds 0,1] [--set SEEN_SKIP=10 --set GREEDY_SHORTLIST=30/40 ...] \\
        [--param l2=200/1000 ...] [--untouched]

``--untouched`` runs the other way round, once, after the constants are fixed: the
evaluation's own 5 folds with only the 122 held-back users scored.

``--set NAME=VALUE`` overrides a constant of :mod:`movierec.onboarding.strategies` or
:mod:`movierec.onboarding.simulate` for
this run (several values separated by ``/`` are tried one after the other), so a
candidate constant is measured here and only then written into the module.
``--param NAME=VALUE`` does the same for a parameter of ``ease`` itself (each value is
fitted on every fold: a setting of the ranking moves every strategy).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from typing import Any

import pandas as pd
from common import (  # bench/common.py (scripts run from bench/)
    default_source,
    header,
    print_table,
    seed_range,
    stopwatch,
)

from movierec import models
from movierec.data import Ratings, fetch_dataset, load_dataset
from movierec.errors import MovierecError
from movierec.evaluate.adapters import OurModel
from movierec.evaluate.protocols import strategy_fold
from movierec.evaluate.splits import parse_split, user_folds
from movierec.onboarding import STRATEGIES
from movierec.onboarding import simulate as simulate_module
from movierec.onboarding import strategies as strategy_module

N_FOLDS = 4
ROUNDS = 3
PER_ROUND = 5
HELD_BACK_EVERY = 5  # users whose id is a multiple of this are never used here
MODULES = (strategy_module, simulate_module)  # where --set looks for constants


class FittedOnce(OurModel):
    """``ease`` fitted on a fold once; later ``fit`` calls on the same fold are free."""

    def fit(self, train: Ratings) -> None:
        if self.model is None:
            super().fit(train)


def validation_folds(
    frame: pd.DataFrame, seed: int = 0, params: dict[str, Any] | None = None
) -> list[tuple]:
    """``[(train frame, held-out frame, fitted method), ...]`` over the validation users
    (``params``: ``ease`` parameters other than its defaults)."""
    users = frame[frame["userId"] % HELD_BACK_EVERY != 0]
    folds = []
    for train_frame, heldout_frame in user_folds(users, parse_split(f"kfold:{N_FOLDS}"), seed):
        method = FittedOnce("ease", seed, params)
        method.fit(Ratings.from_frame(train_frame))
        folds.append((train_frame, heldout_frame, method))
    return folds


def untouched_folds(frame: pd.DataFrame, params: dict[str, Any] | None = None) -> list[tuple]:
    """The evaluation's own folds (``kfold:5``, seed 0, as ``movierec evaluate`` cuts them)
    with only the held-back users (id a multiple of 5) scored: a check made once, after
    the constants are fixed, on users tuning never saw."""
    folds = []
    for train_frame, heldout_frame in user_folds(frame, parse_split("kfold:5"), 0):
        method = FittedOnce("ease", 0, params)
        method.fit(Ratings.from_frame(train_frame))
        held_back = heldout_frame[heldout_frame["userId"] % HELD_BACK_EVERY == 0]
        folds.append((train_frame, held_back, method))
    return folds


def measure(folds: list[tuple], strategy: str, catalog: Any, seed: int = 0) -> dict[str, float]:
    """Pooled metrics of one strategy over the validation folds."""
    pooled: dict[str, float] = {}
    weights: dict[str, float] = {}
    for number, (train_frame, heldout_frame, method) in enumerate(folds):
        outcome = strategy_fold(
            [method], train_frame, heldout_frame, [strategy], ROUNDS, PER_ROUND,
            catalog=catalog, seed=seed * 1000 + number,
        )  # fmt: skip
        values = outcome.metrics[strategy]
        for key, value in values.items():
            if key.startswith(("users/", "fit_s")):
                continue
            asked = key.split("/")[-1]
            weight = values.get(f"users/{asked}", 1.0) if "/" in key else 1.0
            pooled[key] = pooled.get(key, 0.0) + weight * value
            weights[key] = weights.get(key, 0.0) + weight
    return {key: pooled[key] / weights[key] for key in pooled}


ASKED = [PER_ROUND * (r + 1) for r in range(ROUNDS)]
COLUMNS = [
    "strategy",
    f"NDCG@10 after {' / '.join(map(str, ASKED))} asked",
    f"HR@5 after {ASKED[-1]}",
    f"rated of {ASKED[-1]}",
    "choose ms",
]


def line(label: str, m: dict[str, float]) -> tuple[str, ...]:
    """One table row (``COLUMNS``) of a strategy's pooled metrics."""
    ndcg = " / ".join(f"{m[f'ndcg@10/{a}']:.4f}" for a in ASKED)
    last = ASKED[-1]
    return (
        label, ndcg, f"{m[f'hit_rate@5/{last}']:.3f}", f"{m[f'rated/{last}']:.2f}",
        f"{m['choose_ms']:.2f}",
    )  # fmt: skip


def parse_settings(pairs: list[str], check: bool = True) -> list[dict[str, float]]:
    """``["A=1/2", "B=3"]`` -> every combination ``[{A: 1, B: 3}, {A: 2, B: 3}]``
    (``check``: each name must be an onboarding constant). A bad one: ValueError."""
    names, options = [], []
    for pair in pairs:
        name, _, values = pair.partition("=")
        if check and not any(hasattr(m, name) for m in MODULES):
            raise ValueError(f"--set: no onboarding constant {name!r}")
        names.append(name)
        try:
            options.append(
                [float(v) if "." in v or "e" in v else int(v) for v in values.split("/")]
            )
        except ValueError:
            raise ValueError(f"{pair!r}: values must be numbers (NAME=V1/V2)") from None
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*options)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", default="random-top,adaptive")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=V1/V2")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=V1/V2",
        help="an ease parameter (several values: each fitted and measured in turn)",
    )  # fmt: skip
    parser.add_argument(
        "--seeds",
        type=seed_range,
        default=[0],
        help="fold seeds, e.g. 0,1 or 0-3 (pooled: less noise)",
    )
    parser.add_argument(
        "--untouched",
        action="store_true",
        help="instead: the evaluation's folds, scoring only the held-back users (once, at the end)",
    )
    args = parser.parse_args()
    try:  # every bad --set / --param is one line and exit 2, before any work
        settings = parse_settings(args.set)
        ease_settings = parse_settings(args.param, check=False)
        for params in ease_settings:
            models.create("ease", **params)
        for strategy in args.strategy.split(","):
            if strategy not in STRATEGIES:
                raise ValueError(
                    f"--strategy: unknown {strategy!r}; known: {', '.join(STRATEGIES)}"
                )
    except (ValueError, MovierecError) as error:
        parser.error(str(error))
    header()
    home = os.environ.get("MOVIEREC_HOME")
    source = default_source()
    if source:
        fetch_dataset("ml-latest-small", source=source, home=home, progress=False)
    data = load_dataset("ml-latest-small", home=home, progress=False)
    seeds = args.seeds
    for params in ease_settings or [{}]:
        with stopwatch() as watch:
            if args.untouched:
                folds = untouched_folds(data.frame, params)
                what = "held-back users on the evaluation's 5 folds"
            else:
                folds = [f for seed in seeds for f in validation_folds(data.frame, seed, params)]
                what = f"validation user-runs, {N_FOLDS} folds x seeds {seeds}"
        n_users = sum(f[1]["userId"].nunique() for f in folds)
        print(f"\n{n_users} {what}, ease {params or 'defaults'}, "
              f"fitted in {watch.wall:.0f} s\n")  # fmt: skip
        rows = run_settings(settings, args.strategy.split(","), folds, data.catalog)
        print_table(COLUMNS, rows)


def run_settings(
    combos: list[dict[str, float]], strategies: list[str], folds: list[tuple], catalog: Any
) -> list[tuple[str, ...]]:
    """Every ``--set`` combination x every strategy, one table row each (each also on
    stderr as it ends)."""
    rows = []
    for settings in combos or [{}]:
        saved = {(m, n): getattr(m, n) for n in settings for m in MODULES if hasattr(m, n)}
        for module, name in saved:
            setattr(module, name, settings[name])
        for strategy in strategies:
            label = " ".join([strategy, *(f"{k}={v}" for k, v in settings.items())])
            rows.append(line(label, measure(folds, strategy, catalog)))
            print("  " + "  ".join(rows[-1]), file=sys.stderr, flush=True)
        for (module, name), value in saved.items():  # back to the modules' own values
            setattr(module, name, value)
    return rows


if __name__ == "__main__":
    main()
