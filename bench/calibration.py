"""How honest is the figure on a pick? Expected calibration error of "% match" (the rank
score rescaled per visitor, read as a probability: what it replaced) and of the
calibrated like probability (:mod:`movierec.models.calibration`), per group of visitor
rating counts, on users that neither the model nor its calibration ever saw.

Per seed: 20 % of the users are test users; ``train_model``'s calibration
(``fit_calibration``: its own 5 user folds of the other 80 %) and the model itself are
fitted on the other 80 %. Every test user is folded in once per range of
``calibration.REVEALS`` (1-2, 3-5, 6-15, 16-50, 51-150 ratings revealed: a random number
in the range, a random subset, as long as 5 are left) and scored on up to 200 of their
other ratings: liked = 4 stars or more. "top 1 %" keeps the pairs
whose movie the model ranked in the top 1 % of the visitor's unrated movies (the kind of
movie actually shown). The old match is computed as the service did: over the movies
with at least 20 training ratings the visitor has not rated, ``(rank - median) / (best -
median)`` clipped to [0, 1].

    nice .venv/bin/python bench/calibration.py [--dataset ml-latest-small] [--model ease]
        [--seeds 0-2] [--features]

``--features`` also prints the alternatives the design chose between (isotonic maps of
the predicted stars alone, of the rank share alone, one map for every group), fitted
on half of the test users and measured on the other half, both ways round.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import (  # bench/common.py (scripts run from bench/)
    default_source,
    header,
    print_table,
    seed_range,
    stopwatch,
)

from movierec import models
from movierec.data import Ratings, fetch_dataset, load_dataset
from movierec.models import calibration as cal

GROUPS = {"1-2": (1, 2), "3-5": (3, 5), "6-15": (6, 15), "16-50": (16, 50), "51+": (51, 10**9)}


def old_match(model, users, seed, support):
    """The replaced figure for the same draws as ``heldout_pairs`` (same seed, same
    order of random numbers), as a 0-1 value per pair. ``support``: ``(n_items,)``
    bool, the movies with at least 20 training ratings."""
    rng = np.random.default_rng(seed)
    out = []
    for _, (movie_ids, stars) in users.items():
        movie_ids = np.asarray(movie_ids, np.int64)
        known = np.fromiter((model.has_movie(m) for m in movie_ids), bool, movie_ids.size)
        movie_ids, given = movie_ids[known], np.asarray(stars, np.float32)[known]
        for low, high in cal.REVEALS:
            most = min(high, given.size - cal.MIN_TARGETS)
            if most < low:
                break
            count = int(rng.integers(low, most + 1))
            order = rng.permutation(given.size)
            shown, rest = order[:count], order[count : count + cal.MAX_TARGETS]
            state = model.fold_in(movie_ids[shown], given[shown])
            ranking = model.rank(state).astype(np.float64)
            allowed = support.copy()
            allowed[state.items] = False
            best, median = ranking[allowed].max(), np.median(ranking[allowed])
            targets = model.items_of(movie_ids[rest])
            share = (ranking[targets] - median) / max(best - median, 1e-12)
            out.append(np.clip(share, 0.0, 1.0))
    return np.concatenate(out)


def group_of(n):
    return np.array([next(g for g, (lo, hi) in GROUPS.items() if lo <= k <= hi) for k in n])


def ece_row(p, y, groups, mask=None):
    mask = np.ones(p.size, bool) if mask is None else mask
    cells = [cal.expected_calibration_error(p[mask], y[mask])]
    for g in GROUPS:
        m = mask & (groups == g)
        cells.append(cal.expected_calibration_error(p[m], y[m]) if m.any() else float("nan"))
    return cells


def alternatives(pairs, groups, seed):
    """Cross-fitted (half the test users each way) ECE of the designs not chosen."""
    rng = np.random.default_rng(seed)
    users = np.unique(pairs.user)
    half = np.isin(pairs.user, rng.choice(users, users.size // 2, replace=False))
    y = pairs.liked
    out = {}
    for feature, x in (("stars", pairs.stars), ("rank share", -np.log(pairs.share))):
        for per_group in (False, True):
            p = np.zeros(y.size)
            for fit, use in ((half, ~half), (~half, half)):
                for g in GROUPS if per_group else [None]:
                    f = fit if g is None else fit & (groups == g)
                    u = use if g is None else use & (groups == g)
                    if u.any():
                        p[u] = cal.apply_isotonic(*cal.fit_isotonic(x[f], y[f]), x[u])
            out[f"{feature}, {'per group' if per_group else 'one map'}"] = p
    p = np.zeros(y.size)  # the chosen design, cross-fitted the same way
    for fit, use in ((half, ~half), (~half, half)):
        sub = cal.HeldOutPairs(*(a[fit] for a in vars(pairs).values()))
        chosen = cal.calibrate(sub)
        for n in np.unique(pairs.n_ratings[use]):
            m = use & (pairs.n_ratings == n)
            p[m] = chosen.probability(pairs.stars[m], pairs.share[m], int(n))
    out["stars + rank share, per group"] = p
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--model", default="ease")
    parser.add_argument("--seeds", type=seed_range, default=[0, 1, 2])
    parser.add_argument("--source", default=default_source())
    parser.add_argument("--home", default=None)
    parser.add_argument("--features", action="store_true")
    args = parser.parse_args()
    header()
    fetch_dataset(args.dataset, source=args.source, home=args.home, progress=False)
    data = load_dataset(args.dataset, home=args.home)
    rows: dict[str, list[list[float]]] = {}
    fit_s, cal_s = [], []
    for seed in args.seeds:
        rng = np.random.default_rng(1000 + seed)
        frame = data.ratings.to_frame()
        ids = frame["userId"].unique()
        test_ids = set(rng.choice(ids, int(0.2 * ids.size), replace=False).tolist())
        train = Ratings.from_frame(frame[~frame["userId"].isin(test_ids)])
        with stopwatch() as watch:
            model = models.create(args.model).fit(train, catalog=data.catalog)
        fit_s.append(watch.wall)
        with stopwatch() as watch:
            calibration = cal.fit_calibration(args.model, model.params, train, data.catalog, seed)
        cal_s.append(watch.wall)
        test = {
            int(u): (g["movieId"].to_numpy(), g["rating"].to_numpy(np.float32))
            for u, g in frame[frame["userId"].isin(test_ids)].groupby("userId")
        }
        pairs = cal.heldout_pairs(model, test, seed=seed)
        before = old_match(model, test, seed, train.item_counts() >= 20)
        after = np.empty(pairs.liked.size)
        for n in np.unique(pairs.n_ratings):
            m = pairs.n_ratings == n
            after[m] = calibration.probability(pairs.stars[m], pairs.share[m], int(n))
        groups = group_of(pairs.n_ratings)
        top = pairs.share <= 0.01
        candidates = {"% match / 100 (before)": before, "like probability (after)": after}
        if args.features:
            candidates.update(alternatives(pairs, groups, seed))
        for name, p in candidates.items():
            rows.setdefault(f"{name}: all", []).append(ece_row(p, pairs.liked, groups))
            rows.setdefault(f"{name}: top 1 %", []).append(ece_row(p, pairs.liked, groups, top))
        print(
            f"seed {seed}: {len(test)} test users, {pairs.liked.size} pairs "
            f"({top.sum()} in the top 1 %), liked {pairs.liked.mean():.3f}; "
            f"fit {fit_s[-1]:.1f} s, calibration {cal_s[-1]:.1f} s",
            flush=True,
        )
    print(f"\nECE, mean over seeds {args.seeds} ({args.dataset}, {args.model}):")
    table = [
        (name, *(f"{v:.3f}" for v in np.nanmean(np.array(values), axis=0)))
        for name, values in rows.items()
    ]
    print_table(["figure: pairs", "all", *GROUPS], table)
    print(
        f"\ntraining time: model fit {np.mean(fit_s):.1f} s, calibration (a second fit on "
        f"85 % of the users + scoring) {np.mean(cal_s):.1f} s"
    )


if __name__ == "__main__":
    main()
