"""The chance a visitor likes a pick: a probability calibrated on held-out users.

A pick's figure is ``P(stars >= 4 | the visitor's ratings)``: among people who rated
movies as this visitor did, the share who gave such a movie 4 stars or more (so it is
the chance of liking it *if* they watch it; we only ever see stars of watched movies).
It means the same for everybody, unlike the rank score rescaled per visitor that it
replaces (whose best pick always said "100 % match", even for a visitor who liked
nothing).

**What is calibrated.** Two of the model's public outputs for the folded-in visitor,
per pick: ``stars`` (``model.score``: what the visitor would give it) and ``share``,
the share of the movies the visitor has not rated that ``model.rank`` puts at or above
the pick (``(0, 1]``; 1/n for the best of n). Measured with ``ease`` on test users
(``bench/calibration.py --features``, seeds 0-2; expected calibration error, ECE, on
ml-latest-small / ml-100k): an isotonic map of the predicted stars alone, per group,
is calibrated over all held-out pairs (0.013 / 0.007) but not at the top of the list,
the movies actually shown (pairs in the top 1 % of the visitor's ranking: 0.045 /
0.056, 0.067 / 0.076 for visitors with 1-2 ratings), because the ranking also knows
which movies people like this visitor watch and like; the rank share alone is
calibrated at the top (0.024 / 0.010) but says the same for a visitor who hated
everything (whose best pick is still first) as for one who loved everything. Both
together: 0.009 / 0.005 over all pairs, 0.012 / 0.025 at the top. So per group of
visitors (by how many usable ratings they gave: ``GROUP_STARTS``) a
logistic regression on ``(stars, log share)`` gives one direction ``z = w . x``, and an
isotonic regression maps ``z`` to the observed share of 4+ stars (isotonic: only the
order of ``z`` matters, and the map is exactly the held-out frequencies, monotone,
within [0, 1]). Groups, because a visitor's stars after 2 ratings and after 50 mean
different things: one map of the stars for everybody had ECE 0.045 / 0.039 for visitors
with 1-2 ratings and 0.054 / 0.052 for 51+.

**When it is fitted.** At train time only (``training.train_model``), never per request:
:func:`fit_calibration` cuts the users into ``FOLDS`` folds; per fold it fits a model of
the same kind on the other users, folds in every held-out user once per range of
``REVEALS`` with that many of their ratings revealed (a random subset, as a visitor
rates what they have seen; revealing popular movies first, as the app's form does,
changed nothing measurable) and scores their other ratings. Every user of a small set is
held out once: with one fold of 15 % of ml-latest-small's users (73) the maps followed
those few users' taste: ECE 0.038 on seed 0's test users (0.021-0.076 per group) against
0.013 with all 488 held out once. A big set stops at ``MAX_HELDOUT_USERS`` held-out
users, so one extra fit. The maps are attached to the model fitted on every user
(:class:`LikeCalibration`, saved in the model file as arrays with checksums plus JSON,
no pickle). A group with too few held-out pairs or users is pooled with the groups above
it (the top ones with the pool below them); a visitor with no usable rating, or a model
with no calibration (an older file, too few users), gets no figure at all.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from movierec.data.arrays import (
    AnyArray,
    BoolArray,
    Float32Array,
    Float64Array,
    FloatArray,
    IndexArray,
    Int64Array,
)
from movierec.data.catalog import Catalog
from movierec.data.ratings import Ratings
from movierec.models.files import damaged

#: stars from which a rating counts as "liked"
LIKED_STARS = 4.0
#: first usable-rating count of each group: 1-2, 3-5, 6-15, 16-50, 51 and more
GROUP_STARTS = (1, 3, 6, 16, 51)
#: users are cut into this many folds, each held out in turn (a model fitted per fold)...
FOLDS = 5
#: ...until this many users are held out in all (one fold, cut to this, on big sets)
MAX_HELDOUT_USERS = 1000
#: one fold-in of each held-out user per range, revealing a number of ratings drawn
#: uniformly from it (each draw a fresh random subset): one draw per group of
#: ``GROUP_STARTS``. Ten fixed counts (1, 2, 3, 5, 8, 12, 20, 35, 60, 100) took twice the
#: fold-ins for the same ECE: on the same test users and draws (bench/calibration.py's
#: split, seeds 0-2) 0.011 / 0.011 with them (ml-latest-small / ml-100k), 0.011 / 0.012
#: with these; 0.010-0.024 per group either way
REVEALS = ((1, 2), (3, 5), (6, 15), (16, 50), (51, 150))
#: a draw needs this many of the user's other ratings to score; at most MAX_TARGETS used
#: (a random sample), so the figure is about a person, not about a rating: the few users
#: with 1,000+ ratings, who give 4+ stars to a smaller share of what they rate, would
#: otherwise outweigh everyone else
MIN_TARGETS = 5
MAX_TARGETS = 200
#: a group is fitted on its own with at least this many pairs from this many users
MIN_GROUP_PAIRS = 2000
MIN_GROUP_USERS = 20
#: held-out pairs behind each knot of a map at least (see ``fit_isotonic``)
MIN_BLOCK = 200
#: saved arrays are named ``c_<name>`` (beside the model's ``m_`` ones)
PREFIX = "c_"


@dataclass(frozen=True)
class LikeCalibration:
    """Per group of visitors, ``P(liked) = isotonic(w . (stars, log share))``.

    group_starts: ``(g,)`` int64 first usable-rating count of each group, ascending.
    weights: ``(g, 2)`` float64 direction ``w`` per group (stars, log share).
    knots_x / knots_y: ``(K,)`` float64 the isotonic maps' knots, group after group
      (``knots_y`` non-decreasing in [0, 1] within a group); between knots linear,
      outside them the end values (as scikit-learn's ``IsotonicRegression.predict``).
    knot_starts: ``(g + 1,)`` int64 where each group's knots start in ``knots_x``.
    info: JSON-able facts of the fit (held-out users and pairs per group, seconds).
    """

    group_starts: Int64Array
    weights: Float64Array
    knots_x: Float64Array
    knots_y: Float64Array
    knot_starts: Int64Array
    info: dict[str, Any] = field(default_factory=dict)

    def group_of(self, n_ratings: int) -> int:
        """Index of the group for ``n_ratings`` usable ratings (-1: below the first)."""
        return int(np.searchsorted(self.group_starts, n_ratings, side="right")) - 1

    def probability(self, stars: FloatArray, share: Float64Array, n_ratings: int) -> Float64Array:
        """``(n,)`` float64 in [0, 1]: the chance of 4+ stars for picks with predicted
        ``stars`` ``(n,)`` and rank ``share`` ``(n,)`` (:func:`share_at_or_above`), for a
        visitor with ``n_ratings`` usable ratings; NaN for a visitor with none."""
        values = np.asarray(stars, dtype=np.float64)
        group = self.group_of(n_ratings)
        if group < 0:
            return np.full(values.shape, np.nan)
        z = self.weights[group, 0] * values + self.weights[group, 1] * _log_share(share)
        lo, hi = self.knot_starts[group], self.knot_starts[group + 1]
        return apply_isotonic(self.knots_x[lo:hi], self.knots_y[lo:hi], z)

    # -- the model file ----------------------------------------------------------------
    def arrays(self) -> dict[str, AnyArray]:
        """The arrays to save, named ``c_<field>``."""
        return {
            PREFIX + "group_starts": self.group_starts.astype(np.int64),
            PREFIX + "weights": self.weights.astype(np.float64),
            PREFIX + "knots_x": self.knots_x.astype(np.float64),
            PREFIX + "knots_y": self.knots_y.astype(np.float64),
            PREFIX + "knot_starts": self.knot_starts.astype(np.int64),
        }

    @classmethod
    def from_file(cls, info: object, arrays: Mapping[str, AnyArray]) -> LikeCalibration:
        """The calibration a model file holds (``info``: its JSON, ``arrays``: checksummed);
        ``UnusableFile`` naming what is wrong with it."""
        if not isinstance(info, dict):
            raise damaged("calibration metadata is not an object")
        got = {}
        for name in ("group_starts", "weights", "knots_x", "knots_y", "knot_starts"):
            array = arrays.get(PREFIX + name)
            if array is None:
                raise damaged(f"calibration array {PREFIX + name} is missing")
            got[name] = np.asarray(array)
        starts, weights, kx, ky, ks = (got[k] for k in got)
        g = starts.size
        ok = (
            starts.dtype == np.int64
            and ks.dtype == np.int64
            and all(a.dtype == np.float64 for a in (weights, kx, ky))
            and starts.ndim == kx.ndim == ky.ndim == ks.ndim == 1
            and g >= 1
            and weights.shape == (g, 2)
            and kx.shape == ky.shape
            and ks.size == g + 1
            and ks[0] == 0
            and ks[-1] == kx.size
            and bool(np.all(np.diff(ks) >= 1))
            and bool(np.all(np.diff(starts) > 0))
            and starts[0] >= 1
            and bool(np.all((ky >= 0) & (ky <= 1)))
        )
        if ok:
            for k in range(g):
                part_x, part_y = kx[ks[k] : ks[k + 1]], ky[ks[k] : ks[k + 1]]
                ok = ok and bool(np.all(np.diff(part_x) >= 0) and np.all(np.diff(part_y) >= 0))
        if not ok:
            raise damaged("calibration arrays do not describe monotone maps")
        return cls(starts, weights, kx, ky, ks, dict(info))


# -- maths ------------------------------------------------------------------------------------
def fit_isotonic(
    x: FloatArray, liked: BoolArray, min_block: int = 1
) -> tuple[Float64Array, Float64Array]:
    """``(knots_x, knots_y)`` float64 of the non-decreasing map from ``x`` ``(n,)`` to the
    share of ``liked`` ``(n,)`` bool (scikit-learn's ``IsotonicRegression``, clipped to
    [0, 1] and constant beyond the data).

    ``min_block``: the pairs, sorted by ``x``, are first averaged in consecutive blocks
    of this many (each block's mean ``x`` and share liked, weighted by its size), so no
    knot rests on fewer pairs: plain isotonic regression ends in a block of the few most
    extreme pairs, which said 100 % (or 0 %) where a few dozen pairs all agreed.
    """
    from sklearn.isotonic import IsotonicRegression  # train time only

    x = np.asarray(x, np.float64)
    y = np.asarray(liked, np.float64)
    weight = np.ones(x.size)
    if min_block > 1 and x.size >= 2 * min_block:
        order = np.argsort(x, kind="stable")
        starts = np.arange(0, x.size, min_block)
        if x.size - starts[-1] < min_block:  # a short last block joins the one before
            starts = starts[:-1]
        weight = np.diff(np.append(starts, x.size)).astype(np.float64)
        x = np.add.reduceat(x[order], starts) / weight
        y = np.add.reduceat(y[order], starts) / weight
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    fitted.fit(x, y, sample_weight=weight)
    return (
        np.asarray(fitted.X_thresholds_, np.float64),
        np.clip(np.asarray(fitted.y_thresholds_, np.float64), 0.0, 1.0),
    )


def apply_isotonic(knots_x: Float64Array, knots_y: Float64Array, x: FloatArray) -> Float64Array:
    """``(n,)`` float64 the map of :func:`fit_isotonic` at ``x`` (linear between knots,
    the end values beyond them, as ``IsotonicRegression.predict``)."""
    mapped: Float64Array = np.interp(np.asarray(x, np.float64), knots_x, knots_y)
    return mapped


def share_at_or_above(ranking: FloatArray, rated: IndexArray, items: IndexArray) -> Float64Array:
    """``(len(items),)`` float64: for each of ``items``, the share of the movies not in
    ``rated`` whose ``ranking`` ``(n_items,)`` is at least its own, in ``(0, 1]`` (1/n
    for the best; ties count as above). ``rated``: ``(m,)`` item indices."""
    ranking = np.asarray(ranking)
    columns = np.asarray(items, dtype=np.int64)
    keep = np.ones(ranking.size, dtype=bool)
    keep[np.asarray(rated, dtype=np.int64)] = False
    unrated = ranking[keep]
    n = max(unrated.size, 1)
    if columns.size <= 16:  # a request's picks: a few comparisons beat a sort
        at_or_above = (unrated[None, :] >= ranking[columns][:, None]).sum(axis=1)
    else:
        ordered = np.sort(unrated)
        at_or_above = ordered.size - np.searchsorted(ordered, ranking[columns], side="left")
    share: Float64Array = np.maximum(at_or_above, 1) / n
    return share


def _log_share(share: Float64Array) -> Float64Array:
    return np.log(np.clip(np.asarray(share, np.float64), 1e-9, 1.0))


def reliability(
    probability: FloatArray, liked: BoolArray, n_bins: int = 10
) -> tuple[Float64Array, Float64Array, Float64Array]:
    """``(mean predicted, observed share, count)``, each ``(n_bins,)``, of the pairs
    binned by ``probability`` into equal-width bins over [0, 1] (NaN for empty bins)."""
    p = np.asarray(probability, np.float64)
    y = np.asarray(liked, np.float64)
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(bins, weights=p, minlength=n_bins) / count
        observed = np.bincount(bins, weights=y, minlength=n_bins) / count
    return mean_p, observed, count


def expected_calibration_error(
    probability: FloatArray, liked: BoolArray, n_bins: int = 10
) -> float:
    """``sum_b (n_b / n) |mean predicted_b - observed share_b|`` over equal-width bins
    (NaN for no pairs)."""
    mean_p, observed, count = reliability(probability, liked, n_bins)
    if not count.sum():
        return float("nan")
    used = count > 0
    return float(np.sum(count[used] * np.abs(mean_p[used] - observed[used])) / count.sum())


# -- held-out pairs ---------------------------------------------------------------------------
@dataclass
class HeldOutPairs:
    """Scored held-out ratings: per pair ``stars`` (predicted), ``share`` (rank),
    ``n_ratings`` (revealed), ``liked`` (bool) and ``user`` (raw id); all ``(n,)``."""

    stars: Float64Array
    share: Float64Array
    n_ratings: Int64Array
    liked: BoolArray
    user: Int64Array


def heldout_pairs(
    model: Any,
    users: Mapping[int, tuple[Int64Array, Float32Array]],
    seed: int = 0,
    reveals: tuple[tuple[int, int], ...] = REVEALS,
    threshold: float = LIKED_STARS,
) -> HeldOutPairs:
    """Fold in each user of ``users`` (``{user id: (movie ids, stars)}``, none of them in
    ``model``'s training) once per ``(low, high)`` range in ``reveals``, revealing a
    random subset of a size drawn from the range (at most all but ``MIN_TARGETS``; none
    if not even ``low``); score up to ``MAX_TARGETS`` of the others."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    parts: dict[str, list[AnyArray]] = {k: [] for k in ("stars", "share", "n", "liked", "user")}
    with threadpool_limits(1, user_api="blas"):  # small solves: 4x faster on a busy machine
        _score_draws(model, users, rng, reveals, threshold, parts)
    cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
    return HeldOutPairs(
        cat["stars"],
        cat["share"],
        cat["n"].astype(np.int64),
        cat["liked"].astype(bool),
        cat["user"].astype(np.int64),
    )


def _score_draws(
    model: Any,
    users: Mapping[int, tuple[Int64Array, Float32Array]],
    rng: np.random.Generator,
    reveals: tuple[tuple[int, int], ...],
    threshold: float,
    parts: dict[str, list[AnyArray]],
) -> None:
    """:func:`heldout_pairs`' draws, appended to ``parts`` (lists by field)."""
    for user_id, (movie_ids, stars) in users.items():
        movie_ids = np.asarray(movie_ids, np.int64)
        known = np.fromiter((model.has_movie(m) for m in movie_ids), bool, movie_ids.size)
        movie_ids, given = movie_ids[known], np.asarray(stars, np.float32)[known]
        for low, high in reveals:
            most = min(high, given.size - MIN_TARGETS)
            if most < low:
                break
            count = int(rng.integers(low, most + 1))
            order = rng.permutation(given.size)
            shown, rest = order[:count], order[count : count + MAX_TARGETS]
            state = model.fold_in(movie_ids[shown], given[shown])  # as the app folds in
            ranking, predicted = model.rank_and_score(state)
            targets = model.items_of(movie_ids[rest])
            parts["stars"].append(predicted[targets].astype(np.float64))
            parts["share"].append(share_at_or_above(ranking, state.items, targets))
            parts["n"].append(np.full(targets.size, count, np.int64))
            parts["liked"].append(given[rest] >= threshold)
            parts["user"].append(np.full(targets.size, user_id, np.int64))


# -- fitting ----------------------------------------------------------------------------------
def calibrate(pairs: HeldOutPairs, info: dict[str, Any] | None = None) -> LikeCalibration | None:
    """The per-group maps fitted on ``pairs``; None when all groups together lack
    ``MIN_GROUP_PAIRS`` pairs from ``MIN_GROUP_USERS`` users (nothing can be calibrated).
    A group short of data is pooled with the groups above it until the pool has enough;
    a short pool at the top joins the one below it (:func:`_segments`)."""
    from sklearn.linear_model import LogisticRegression  # train time only

    starts = np.asarray(GROUP_STARTS, np.int64)
    group = np.searchsorted(starts, pairs.n_ratings, side="right") - 1
    segments = _segments(group, pairs.user, starts.size)
    if not segments:
        return None
    weights = np.zeros((starts.size, 2))
    kx, ky, ks = [], [], [0]
    per_group = []
    for members in segments:
        mask = np.isin(group, members)
        x = np.column_stack([pairs.stars[mask], _log_share(pairs.share[mask])])
        y = pairs.liked[mask]
        if np.unique(y).size < 2:  # everybody liked (or nobody): a constant map
            w = np.array([1.0, 0.0])
        else:
            w = LogisticRegression(C=1.0).fit(x, y).coef_[0].astype(np.float64)
        knots = fit_isotonic(x @ w, y, MIN_BLOCK)
        for g in members:
            weights[g] = w
            kx.append(knots[0])
            ky.append(knots[1])
            ks.append(ks[-1] + knots[0].size)
            per_group.append(
                {
                    "ratings_from": int(starts[g]),
                    "pairs": int(mask.sum()),
                    "users": int(np.unique(pairs.user[mask]).size),
                    "pooled_with": [int(starts[m]) for m in members if m != g],
                }
            )
    order = np.argsort([g for members in segments for g in members], kind="stable")
    kx = [kx[i] for i in order]
    ky = [ky[i] for i in order]
    sizes = np.array([a.size for a in kx], np.int64)
    return LikeCalibration(
        group_starts=starts,
        weights=weights,
        knots_x=np.concatenate(kx),
        knots_y=np.concatenate(ky),
        knot_starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        info={
            **(info or {}),
            "liked_stars": LIKED_STARS,
            "pairs": int(pairs.liked.size),
            "users": int(np.unique(pairs.user).size),
            "groups": [per_group[i] for i in order],
        },
    )


def _segments(group: IndexArray, user: Int64Array, n_groups: int) -> list[list[int]]:
    """Groups pooled until each pool has enough pairs and users, lowest first; a short
    pool at the top joins the one below it. [] if even all of them together fall short."""

    def enough(members: list[int]) -> bool:
        mask = np.isin(group, members)
        return mask.sum() >= MIN_GROUP_PAIRS and np.unique(user[mask]).size >= MIN_GROUP_USERS

    segments: list[list[int]] = []
    pending: list[int] = []
    for g in range(n_groups):
        pending.append(g)
        if enough(pending):
            segments.append(pending)
            pending = []
    if pending:
        if segments:
            segments[-1] = segments[-1] + pending
        elif enough(pending):
            segments.append(pending)
    return segments


def user_folds(
    ratings: Ratings, seed: int = 0
) -> list[tuple[Ratings, dict[int, tuple[Int64Array, Float32Array]]]]:
    """Up to ``FOLDS`` ``(ratings of the other users, {held-out user id: (movie ids,
    stars)})``: the users cut into ``FOLDS`` random folds (``seed``), each held out in
    turn until ``MAX_HELDOUT_USERS`` are held out in all (the last fold used is cut to
    what is left: one fold of 1,000 users on a big data set)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(ratings.n_users)
    matrix = ratings.matrix
    out = []
    budget = MAX_HELDOUT_USERS
    for fold in np.array_split(order, FOLDS):
        if budget <= 0:
            break
        held = np.zeros(ratings.n_users, dtype=bool)
        held[fold] = True
        users = {}
        for row in np.sort(fold[:budget]):  # a random subset: fold is a permutation's
            lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
            users[int(ratings.user_ids[row])] = (
                ratings.movie_ids[matrix.indices[lo:hi]],
                np.asarray(matrix.data[lo:hi], np.float32),
            )
        budget -= len(users)
        kept = matrix[~held].tocoo()
        rest = Ratings.from_arrays(
            ratings.user_ids[~held][kept.row], ratings.movie_ids[kept.col], kept.data
        )
        out.append((rest, users))
    return out


def fit_calibration(
    model_name: str,
    params: Mapping[str, Any],
    ratings: Ratings,
    catalog: Catalog | None = None,
    seed: int = 0,
    progress: bool = False,
) -> LikeCalibration | None:
    """Calibrate ``model_name`` (with ``params`` and ``seed``) on ``ratings``' own users:
    per fold of :func:`user_folds`, fit it on the other users and score the held-out ones
    (:func:`heldout_pairs`); then fit the maps on every fold's pairs (:func:`calibrate`).
    None when too few users to calibrate. ``progress`` shows a bar over the folds."""
    from movierec.models.registry import create

    started = time.perf_counter()
    if ratings.n_users < FOLDS * MIN_GROUP_USERS:
        return None
    parts = []
    folds = user_folds(ratings, seed)
    # a bar on a terminal only (None): piped stderr keeps one line per message
    bar = tqdm(folds, desc="like probability", unit="fold", disable=not progress or None)
    for k, (rest, users) in enumerate(bar):
        model = create(model_name, seed=seed, **params)
        model.fit(rest, progress=False, catalog=catalog)
        parts.append(heldout_pairs(model, users, seed=seed * 100 + k))
    pairs = HeldOutPairs(
        *(np.concatenate([vars(part)[name] for part in parts]) for name in vars(parts[0]))
    )
    info = {"folds": len(folds), "heldout_users": int(np.unique(pairs.user).size), "seed": seed}
    calibration = calibrate(pairs, info)
    if calibration is not None:
        calibration.info["seconds"] = round(time.perf_counter() - started, 2)
    return calibration
