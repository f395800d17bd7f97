"""Is the like probability honest? Its reliability in ``movierec evaluate``.

For each of our models, per fold: the fold's model is calibrated exactly as
``movierec train`` calibrates (:func:`~movierec.models.calibration.fit_calibration` on the
fold's training users only: a model per inner user fold, so this costs five more fits
per fold), then every evaluated person gets the figure the app would show for each of
their held-out ratings: the onboarding protocol's visitors from the form's revealed
ratings, the rating protocol's users (at most ``MAX_USERS``, sampled) from their whole
training history folded in as a visitor who imported it. Against whether they gave it
4 stars or more (at most ``MAX_TARGETS`` held-out ratings a person, a random sample, as in
the calibration itself: otherwise the few users with 1,000+ ratings, who give 4 stars to a
smaller share of what they rate, outweigh everyone else; the onboarding protocol's ECE on
ml-latest-small was 0.048 with every held-out rating counted and 0.024 with 200 a person):

- ``ece``: the expected calibration error, ``sum_b (n_b / n) |mean figure_b - share
  liked_b|`` over ``N_BINS`` equal-width bins of the figure;
- ``ece/<group>``: the same within each group of visitor rating counts (1-2, 3-5, 6-15,
  16-50, 51+ usable ratings);
- ``reliability_predicted/<b>``, ``reliability_liked/<b>``, ``reliability_pairs/<b>``:
  bin ``b``'s mean figure, share liked and pair count, for ``reliability.png``.

Peers (and models saved without calibration) get none of these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movierec.data.arrays import BoolArray, Float64Array, FloatArray, IndexArray, Int64Array
from movierec.data.ratings import Ratings
from movierec.models.calibration import (
    GROUP_STARTS,
    LIKED_STARS,
    MAX_TARGETS,
    expected_calibration_error,
    fit_calibration,
    reliability,
    share_at_or_above,
)

if TYPE_CHECKING:
    from movierec.evaluate.run import EvaluationResult

N_BINS = 10
#: a group's ECE is reported from this many pairs up (ml-100k's official folds hold one
#: user with 3-5 training ratings: ECE 0.44 from a handful of pairs)
MIN_PAIRS = 200
#: the rating protocol folds in at most this many training users per fold (seeded sample)
MAX_USERS = 500

#: one person's ``(revealed items, their stars, target items, their stars)``, items as
#: column indices of the fold's training ``Ratings``
Person = tuple[IndexArray, FloatArray, IndexArray, FloatArray]


def group_names() -> list[str]:
    """``["1-2", "3-5", "6-15", "16-50", "51+"]`` from ``GROUP_STARTS``."""
    ends = [s - 1 for s in GROUP_STARTS[1:]]
    return [f"{a}-{b}" for a, b in zip(GROUP_STARTS, ends, strict=False)] + [f"{GROUP_STARTS[-1]}+"]


def like_reliability(
    method: Any, train: Ratings, people: Sequence[Person], seed: int = 0
) -> dict[str, float]:
    """The metrics of the module doc for a fitted method (``{}`` for a peer, or when the
    fold has too few users to calibrate)."""
    model = getattr(method, "model", None) if method.kind == "ours" else None
    if model is None or not people:
        return {}
    calibration = fit_calibration(method.name, model.params, train, method.catalog, seed)
    if calibration is None:
        return {}
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):  # small solves: faster on one thread
        return _measure(model, calibration, train, people, seed)


def _measure(
    model: Any, calibration: Any, train: Ratings, people: Sequence[Person], seed: int
) -> dict[str, float]:
    """:func:`like_reliability` once the fold's model is calibrated."""
    figures, liked, counts = [], [], []
    rng = np.random.default_rng(seed)
    for revealed, revealed_stars, target, target_stars in people:
        if target.size > MAX_TARGETS:  # as calibrated: heavy raters count no more
            keep = np.sort(rng.choice(target.size, MAX_TARGETS, replace=False))
            target, target_stars = target[keep], np.asarray(target_stars)[keep]
        movie_ids = train.movie_ids[revealed]
        known = np.fromiter((model.has_movie(m) for m in movie_ids), bool, movie_ids.size)
        targets = train.movie_ids[target]
        aimed = np.fromiter((model.has_movie(m) for m in targets), bool, targets.size)
        if not known.any() or not aimed.any():
            continue
        state = model.fold_in(movie_ids[known], np.asarray(revealed_stars)[known])
        ranking, stars = model.rank_and_score(state)
        items = model.items_of(targets[aimed])
        share = share_at_or_above(ranking, state.items, items)
        figures.append(calibration.probability(stars[items], share, int(known.sum())))
        liked.append(np.asarray(target_stars)[aimed] >= LIKED_STARS)
        counts.append(np.full(items.size, int(known.sum())))
    if not figures:
        return {}
    return reliability_metrics(
        np.concatenate(figures), np.concatenate(liked), np.concatenate(counts)
    )


def reliability_metrics(
    figures: Float64Array, liked: BoolArray, n_ratings: Int64Array, min_pairs: int = MIN_PAIRS
) -> dict[str, float]:
    """``ece``, ``ece/<group>`` (groups with ``min_pairs`` pairs or more) and the
    reliability bins of figures ``(n,)`` against ``liked`` ``(n,)`` bool for people with
    ``n_ratings`` ``(n,)`` usable ratings."""
    out = {"ece": expected_calibration_error(figures, liked, N_BINS)}
    group = np.searchsorted(np.asarray(GROUP_STARTS), n_ratings, side="right") - 1
    for g, name in enumerate(group_names()):
        mask = group == g
        if mask.sum() >= max(min_pairs, 1):
            out[f"ece/{name}"] = expected_calibration_error(figures[mask], liked[mask], N_BINS)
    mean_p, observed, count = reliability(figures, liked, N_BINS)
    for b in range(N_BINS):
        out[f"reliability_predicted/{b}"] = float(mean_p[b])
        out[f"reliability_liked/{b}"] = float(observed[b])
        out[f"reliability_pairs/{b}"] = float(count[b])
    return out


def onboarding_people(visitors: Sequence[Any]) -> list[Person]:
    """The onboarding protocol's visitors: revealed ratings -> their other ratings."""
    return [(v.revealed, v.revealed_stars, v.target, v.target_stars) for v in visitors]


def rating_people(
    train: Ratings,
    rows: Int64Array,
    cols: Int64Array,
    stars: Float64Array,
    seed: int = 0,
    max_users: int = MAX_USERS,
) -> list[Person]:
    """The rating protocol's users with test ratings of training movies (``rows``,
    ``cols``: their training row and column, -1 if unknown; ``stars``: the test stars),
    at most ``max_users`` of them: their training ratings -> their test ratings."""
    known = (rows >= 0) & (cols >= 0)
    users = np.unique(rows[known])
    if users.size > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    order = np.argsort(rows, kind="stable")
    starts = np.searchsorted(rows[order], users, side="left")
    ends = np.searchsorted(rows[order], users, side="right")
    people: list[Person] = []
    for user, lo, hi in zip(users, starts, ends, strict=True):
        mine = order[lo:hi]
        mine = mine[cols[mine] >= 0]
        items, given = train.user_row(int(user))
        people.append((items, given, cols[mine], stars[mine]))
    return people


# -- report ------------------------------------------------------------------------------------
def ece_columns(result: EvaluationResult) -> list[str]:
    """``ece`` and ``ece/<group>`` where measured."""
    measured = set(result.metric_names())
    return [c for c in ["ece", *[f"ece/{g}" for g in group_names()]] if c in measured]


def reliability_plot(result: EvaluationResult, out: Path, plt: Any) -> Path | None:
    """``reliability.png``: per method, the share of held-out ratings of 4+ stars against
    the figure shown (bins pooled over folds, weighted by pairs), beside the diagonal of a
    perfectly calibrated figure; and how many pairs each bin holds. None if no method
    was measured."""
    curves = []
    for name in result.method_names:
        pairs = np.array([result.values(name, f"reliability_pairs/{b}") for b in range(N_BINS)])
        if np.isnan(pairs).all():
            continue
        pairs = np.nan_to_num(pairs)  # (bins, folds)
        predicted = np.array(
            [result.values(name, f"reliability_predicted/{b}") for b in range(N_BINS)]
        )
        liked = np.array([result.values(name, f"reliability_liked/{b}") for b in range(N_BINS)])
        total = pairs.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.nansum(np.nan_to_num(predicted) * pairs, axis=1) / total
            y = np.nansum(np.nan_to_num(liked) * pairs, axis=1) / total
        curves.append((name, p, y, total, result.mean(name, "ece")))
    if not curves:
        return None
    fig, (ax, counts) = plt.subplots(
        2, 1, figsize=(6, 6.5), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfectly calibrated")
    width = 0.8 / N_BINS / len(curves)
    for i, (name, p, y, total, ece) in enumerate(curves):
        used = total > 0
        ece_text = "" if math.isnan(ece) else f" (ECE {ece:.3f})"
        ax.plot(p[used], y[used], marker="o", label=f"{name}{ece_text}")
        centres = (np.arange(N_BINS) + 0.5) / N_BINS + (i - (len(curves) - 1) / 2) * width
        counts.bar(centres, total, width=width, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of held-out ratings with 4+ stars")
    ax.set_title(f"like probability, {result.dataset} {result.split} ({result.protocol})")
    ax.legend(fontsize="small", loc="upper left")
    counts.set_xlabel("like probability shown")
    counts.set_ylabel("pairs")
    fig.tight_layout()
    path = out / "reliability.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


NOTE = (
    "Like probability (ECE): each of our models is calibrated per fold on the fold's "
    "training users only, as movierec train does (a model per inner user fold, so five "
    "more fits per fold); each held-out rating then gets the figure the app would show "
    "(onboarding: from the revealed ratings; rating protocol: from at most "
    f"{MAX_USERS} users' training ratings folded in) and is compared with whether it was "
    f"{LIKED_STARS:g} stars or more (at most {MAX_TARGETS} held-out ratings a person, as "
    "calibrated). ECE: sum over {N_BINS} equal-width bins of the figure "
    "of (share of pairs in the bin) x |mean figure - share liked|; ece/1-2 etc. within "
    "visitors with that many usable ratings. reliability.png plots the bins."
)
