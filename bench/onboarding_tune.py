"""Tune ``ease`` for the onboarding protocol, on validation users carved out of training.

The target is ``movierec evaluate --dataset ml-latest-small --protocol onboarding
--split holdout:0.2`` (seed 0): 20% of the users are held out, each is shown 15 random
movies of the 50 most-rated, reveals their ratings of those, and is scored on their other
ratings >= 4 (HR@5, NDCG@10, R@20). Those held-out users are never looked at here:

1. The evaluation's own user split (``user_folds(..., "holdout:0.2", seed)``) is redone
   and only its *training* frame is kept (488 users on ml-latest-small).
2. Those training users are cut into 4 groups (``kfold:4``, seed + 1); each group in turn
   is the validation set and the ``ease`` model is fitted on the other three.
3. Every validation user gets the form twice (form seeds seed + 10 and seed + 11), drawn by
   the protocol's own :func:`onboarding_visitors` from the fitted users' 50 most-rated
   movies; users who reveal nothing or have no liked movie left are skipped, as there.
4. Each visitor is folded in and ranked by ``model.rank`` (the recommend service's path);
   revealed movies are excluded, the rest of their ratings >= 4 are the hits. Metrics are
   pooled over all visitors of the 4 folds x 2 forms (about 870).
5. The search is coordinate-wise, as fitting costs seconds but re-ranking milliseconds:
   stage 1 fits every (``l2``, ``min_count``) at the starting rank parameters; stage 2
   tries every (``like_offset``, ``star_power``, ``popularity``) on the stage-1 winner's
   fits (rank-time parameters are read at ranking time, so they are set on the fitted
   model); stage 3 refits (``l2``, ``min_count``) with the stage-2 rank parameters.
6. Choice: the best pooled NDCG@10 wins, except that in the fit stages a *wider*
   item-item matrix (lower ``min_count``: more movies can be recommended) is preferred
   when its NDCG@10 is within one paired standard error of the best (the one-standard-
   error rule; the SE is of the per-visitor differences, so it is printed beside each
   line). The stage-3 choice gives the defaults, printed at the end beside ``popular`` and
   ``svd`` measured on the same visitors.

Usage::

    nice python bench/onboarding_tune.py [--source DIR_OR_URL] [--seed 0] [--quick]

``--quick`` runs a smaller grid (for checking the script, not for choosing defaults).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from typing import Any

import numpy as np
import pandas as pd
from common import (  # bench/common.py (scripts run from bench/)
    default_source,
    header,
    markdown_table,
    print_table,
    stopwatch,
    temp_home,
)

from movierec import models
from movierec.data import Ratings, fetch_dataset, load_dataset
from movierec.evaluate import metrics
from movierec.evaluate.protocols import RELEVANT_STARS, onboarding_visitors
from movierec.evaluate.splits import parse_split, user_folds

K_VALUES = (5, 10, 20)
N_GROUPS = 4
FORM_SEEDS = (10, 11)  # offsets from --seed
START = {"like_offset": 1.5, "star_power": 3.0, "popularity": 0.01}

FIT_GRID = {"l2": (100.0, 250.0, 500.0, 1000.0, 2000.0), "min_count": (5, 10, 20, 50)}
RANK_GRID = {
    "like_offset": (0.0, 1.0, 1.5, 2.0, 2.5, 3.0),
    "star_power": (0.0, 1.0, 2.0, 3.0, 4.0, 6.0),
    "popularity": (0.0, 0.01, 0.05, 0.2),
}
QUICK_FIT_GRID = {"l2": (250.0, 1000.0), "min_count": (20,)}
QUICK_RANK_GRID = {"like_offset": (1.5, 2.5), "star_power": (0.0, 3.0), "popularity": (0.01,)}


def validation_sets(frame: pd.DataFrame, seed: int) -> list[tuple[Ratings, list]]:
    """``[(fit ratings, visitors), ...]``: one per validation group, the forms of both seeds
    pooled; only the evaluation's training users are used (see the module doc)."""
    train_frame, _ = user_folds(frame, parse_split("holdout:0.2"), seed=seed)[0]
    sets = []
    for fit_frame, val_frame in user_folds(train_frame, parse_split(f"kfold:{N_GROUPS}"), seed + 1):
        fit = Ratings.from_frame(fit_frame)
        visitors = []
        for offset in FORM_SEEDS:
            drawn, _ = onboarding_visitors(fit, val_frame, seed + offset)
            visitors += [v for v in drawn if (v.target_stars >= RELEVANT_STARS).any()]
        sets.append((fit, visitors))
    return sets


def visitor_metrics(ranks: np.ndarray, visitors: list) -> dict[str, np.ndarray]:
    """Per-visitor metrics from ``(n_visitors, n_items)`` ranks (revealed excluded)."""
    rows, cols, n_relevant = [], [], []
    for row, v in enumerate(visitors):
        liked = np.setdiff1d(v.target[v.target_stars >= RELEVANT_STARS], v.revealed)
        rows.append(np.full(liked.size, row))
        cols.append(liked)
        n_relevant.append(liked.size)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return metrics.user_ranking_metrics(rows, ranks[rows, cols], np.array(n_relevant), K_VALUES)


def rank_visitors(model: models.Recommender, states: list, visitors: list) -> np.ndarray:
    """``(n_visitors, n_items)`` 0-based ranks by ``model.rank``, revealed movies last."""
    scores = np.stack([model.rank(s) for s in states]).astype(np.float64)
    for row, v in enumerate(visitors):
        scores[row, v.revealed] = -np.inf
    return metrics.rank_rows(scores)[1]


class Fitted:
    """One model per validation set plus its visitors' folded-in states."""

    def __init__(self, name: str, params: dict, sets: list, seed: int) -> None:
        self.sets = sets
        self.models = []
        self.states = []
        for fit, visitors in sets:
            model = models.create(name, seed=seed, **params).fit(fit)
            self.models.append(model)
            self.states.append(
                [model.fold_in(fit.movie_ids[v.revealed], v.revealed_stars) for v in visitors]
            )

    def measure(self, rank_params: dict | None = None) -> dict[str, Any]:
        """Pooled HR@5, NDCG@10, R@20 over every visitor (rank parameters set first), and
        ``per_visitor``: the ``(n_visitors,)`` NDCG@10 values."""
        pooled: dict[str, list] = {"hit_rate@5": [], "ndcg@10": [], "recall@20": []}
        for model, states, (_, visitors) in zip(self.models, self.states, self.sets, strict=True):
            model.params.update(rank_params or {})
            per_user = visitor_metrics(rank_visitors(model, states, visitors), visitors)
            for key in pooled:
                pooled[key].append(per_user[key])
        out: dict[str, Any] = {key: float(np.concatenate(v).mean()) for key, v in pooled.items()}
        out["per_visitor"] = np.concatenate(pooled["ndcg@10"])
        return out


def paired_se(a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of the mean of the per-visitor differences ``a - b``."""
    diff = np.asarray(a) - np.asarray(b)
    return float(diff.std(ddof=1) / np.sqrt(diff.size))


COLUMNS = ["parameters", "HR@5", "NDCG@10", "R@20"]


def line(label: str, m: dict[str, Any]) -> tuple[str, str, str, str]:
    """One table row: ``label`` and the validation HR@5, NDCG@10 and recall@20."""
    return (label, *(f"{m[k]:.4f}" for k in ("hit_rate@5", "ndcg@10", "recall@20")))


def print_stage(title: str, rows: list[tuple[str, ...]]) -> None:
    """A stage's trials as a table under ``title``."""
    print(f"\n{title}\n\n{markdown_table(COLUMNS, rows)}", flush=True)


def progress(row: tuple[str, ...]) -> None:
    """One trial on stderr as it ends (the tables on stdout come at each stage's end)."""
    print("  " + "  ".join(row), file=sys.stderr, flush=True)


def fit_stage(
    title: str, sets: list, grid: dict, rank_params: dict, seed: int
) -> tuple[dict, dict]:
    """Fit every (l2, min_count); returns the chosen fit parameters and their metrics:
    the lowest ``min_count`` within one paired SE of the best NDCG@10 (module doc, 6)."""
    results, rows = [], []
    for l2, min_count in itertools.product(grid["l2"], grid["min_count"]):
        params = {"l2": l2, "min_count": min_count, **rank_params}
        with stopwatch() as watch:
            m = Fitted("ease", params, sets, seed).measure()
        rows.append(line(f"l2={l2:g} min_count={min_count} ({watch.wall:.0f} s)", m))
        progress(rows[-1])
        results.append(({"l2": l2, "min_count": min_count}, m))
    print_stage(title, rows)
    best = max(results, key=lambda r: r[1]["ndcg@10"])[1]
    print(f"\nwithin one paired SE of the best NDCG@10 ({best['ndcg@10']:.4f}):\n")
    close, rows = [], []
    for params, m in results:
        se = paired_se(best["per_visitor"], m["per_visitor"])
        if best["ndcg@10"] - m["ndcg@10"] <= se:
            close.append((params, m))
            rows.append((str(params), f"{m['ndcg@10']:.4f}", f"{se:.4f}"))
    print_table(["parameters", "NDCG@10", "SE of the difference"], rows)
    return min(close, key=lambda r: (r[0]["min_count"], -r[1]["ndcg@10"]))


def rank_stage(title: str, fitted: Fitted, grid: dict) -> tuple[dict, dict]:
    """Every rank-time combination on the same fits; returns the best and its metrics."""
    best: tuple[float, dict, dict] | None = None
    names = list(grid)
    rows = []
    for values in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, values, strict=True))
        m = fitted.measure(params)
        rows.append(line(" ".join(f"{k}={v:g}" for k, v in params.items()), m))
        progress(rows[-1])
        if best is None or m["ndcg@10"] > best[0]:
            best = (m["ndcg@10"], params, m)
    print_stage(title, rows)
    assert best is not None
    return best[1], best[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=default_source(), help="MovieLens mirror")
    parser.add_argument("--seed", type=int, default=0, help="the evaluation's seed")
    parser.add_argument("--quick", action="store_true", help="small grid, to check the script")
    args = parser.parse_args()
    header()
    fit_grid, rank_grid = (QUICK_FIT_GRID, QUICK_RANK_GRID) if args.quick else (FIT_GRID, RANK_GRID)

    with temp_home("movierec-tune-") as home:
        fetch_dataset("ml-latest-small", source=args.source, home=home, progress=False)
        frame = load_dataset("ml-latest-small", home=home).frame
    sets = validation_sets(frame, args.seed)
    print(
        f"ml-latest-small, evaluation seed {args.seed}: validation on the training users only, "
        f"{N_GROUPS} groups x {len(FORM_SEEDS)} forms, "
        f"{sum(len(v) for _, v in sets)} visitors ranked; "
        f"{np.mean([v.revealed.size for _, vs in sets for v in vs]):.1f} ratings revealed on "
        "average"
    )

    stage_1 = f"stage 1: fit parameters at {START}"
    fit_params, _ = fit_stage(stage_1, sets, fit_grid, START, args.seed)
    stage_2 = f"stage 2: rank parameters on the fits of {fit_params}"
    fitted = Fitted("ease", {**fit_params, **START}, sets, args.seed)
    rank_params, _ = rank_stage(stage_2, fitted, rank_grid)
    stage_3 = f"stage 3: fit parameters again at {rank_params}"
    fit_params, best = fit_stage(stage_3, sets, fit_grid, rank_params, args.seed)

    chosen = {**fit_params, **rank_params}
    print(f"\nchosen fit parameters: {fit_params}")
    baselines = {name: Fitted(name, {}, sets, args.seed).measure() for name in ("popular", "svd")}
    rows = [line(f"ease {chosen}", best), *(line(name, m) for name, m in baselines.items())]
    print_stage("chosen, beside the baselines on the same visitors", rows)
    ratio = best["ndcg@10"] / baselines["popular"]["ndcg@10"]
    print(f"\nease / popular NDCG@10 on validation: {ratio:.2f}x")
    print(f"defaults: {chosen}")


if __name__ == "__main__":
    main()
