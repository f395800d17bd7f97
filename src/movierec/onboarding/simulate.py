"""Training users as simulated visitors: which questions raise ``ease``'s NDCG@10 most.

GreedyExtend (Rashid, Karypis & Riedl 2008; cf. Golbandi, Koren & Lempel 2011): a batch of
questions is chosen one movie at a time, each time the one that most raises the mean
NDCG@10 of *training* users who are asked the movies and answer what they rated, ranked
by the same relevance the app ranks with. Each training user is weighted by how well it
explains the visitor's answers so far (``P(seen)``'s weights, :mod:`.strategies`), and
starts from its own answers to the movies the visitor was already asked: a soft decision
tree over the training users.

The ranking simulated is ``ease``'s (:mod:`movierec.models.ease`): relevance ``s = pop +
sum w(stars) B[asked, :] * debias`` over the kept movies (the model's ``rating_weights``
and ``kept_terms``), times its ``kept_gain`` where positive (its ``rank_kept``), with the stars a
visitor would get before any answer (``mu + b_i``: the member's user factors are left
out); movies rated in answers are not
ranked and not counted as hits, as in the protocol. Only the ``SIM_RANKED`` most-rated
kept movies are ranked, and ``SIM_USERS`` training users at most (a seeded sample) are
simulated (of which a request draws ``SIM_SAMPLE``, :mod:`.strategies`), so a 25 M-rating
set costs what a small one does.

Arrays (``U`` users, ``K`` candidate movies, ``M`` ranked movies): ``stars`` ``(U, K)``
float32 (0: not rated), ``pulls`` ``(U, K)`` float32 the relevance weight of each answer
(0: not rated), ``liked`` ``(U, M)`` bool (stars >= 4), ``n_liked`` ``(U,)``
(liked training movies, ranked or not: the ideal DCG), ``b`` ``(K, M)`` float32 rows of
``B``, ``base`` ``(M,)`` popularity term, ``gain`` ``(M,)`` star gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from movierec.data.arrays import BoolArray, Float32Array, Float64Array, IndexArray, Int64Array
from movierec.data.ratings import Ratings
from movierec.models.base import Recommender

#: the metric simulated: NDCG at this cut
TOP_K = 10
#: simulate at most this many training users (a seeded sample beyond)
SIM_USERS = 1000
#: questions are chosen among at most this many movies (most rated first)
SIM_CANDIDATES = 300
#: rank at most this many kept movies (most rated first) in the simulation. ml-latest-small
#: keeps 450, so this binds only on big sets: at 25 M ratings (10,000 kept) 2000 / 1000 /
#: 500 cost 19.7 / 15.0 / 12.9 ms CPU p50 a 15-card batch (p99 25.4 / 18.8 / 14.5; the
#: factor version 9.4 / 18.6), hence 1000
SIM_RANKED = 1000
#: stars from which a rated movie counts as a hit (the protocol's threshold)
LIKED_STARS = 4.0
#: relevance of an answered movie: it never enters a top-K (later answers add a few
#: units to it, which float32 absorbs); finite, as ``fastmath`` assumes no infinities.
#: Kept in ``rel`` itself, so no parallel "answered" mask is carried through the kernels
EXCLUDED = np.float32(-1e30)
#: ``(TOP_K,)`` DCG discount of each place, and ``(TOP_K + 1,)`` the ideal DCG of ``n`` hits
DISCOUNT = 1.0 / np.log2(np.arange(TOP_K) + 2.0)
IDEAL_DCG = np.concatenate([[0.0], np.cumsum(DISCOUNT)])
#: each simulated user's best places so far that are kept: the least of ``TOP_K`` of
#: their new scores is the floor under which a candidate's new ranking need not be
#: sorted (one spare: the candidate's own place is left out). The 10th best of twice as
#: many was a higher floor but slower to find
KEPT_PLACES = TOP_K + 1


@dataclass
class Simulator:
    """Training users ranked by ``ease``'s relevance as answers accrue (module doc)."""

    cand_pos: Int64Array  # (K,) index positions of the candidate movies
    cand_col: Int64Array  # (K,) each candidate's column among the ranked, -1 if not ranked
    stars: Float32Array  # (U, K)
    pulls: Float32Array  # (U, K) the model's rating_weights of those stars
    liked: BoolArray  # (U, M)
    n_liked: Int64Array  # (U,)
    b: Float32Array  # (K, M)
    base: Float32Array  # (M,)
    gain: Float32Array  # (M,)
    user_rows: IndexArray  # (U,) rows of the index's seen matrix
    cand_of: Int64Array  # (n_items,) candidate number of each index position, -1 if none

    @property
    def n_users(self) -> int:
        return int(self.stars.shape[0])

    def greedy(
        self,
        n: int,
        weights: Float64Array,
        allowed: BoolArray,
        asked: Int64Array,
        rng: np.random.Generator | None = None,
        *,
        sample: int = 0,
        pool: int = 1,
        recheck: int = 0,
    ) -> Int64Array:
        """Up to ``n`` index positions, chosen greedily by the weighted NDCG@10 gain.

        weights: ``(U,)`` float64 per simulated user (0: left out). allowed: ``(K,)`` bool
        candidates that may be chosen. asked: candidate numbers already asked (each user
        answers them as they rated). With ``rng``: ``sample > 0`` simulates that many
        users drawn with replacement in proportion to ``weights`` (each counted as often
        as drawn) instead of all; ``pool > 1`` draws each pick uniformly among the
        ``pool`` best gains instead of taking the best. ``recheck > 0``: after the first
        pick only the ``recheck`` candidates of highest last-measured gain are measured
        again (the rest keep their old gain).
        """
        active = np.flatnonzero(weights > 0)
        w = weights[active].astype(np.float64)
        if rng is not None and 0 < sample < active.size:
            drawn = rng.choice(active, size=sample, p=w / w.sum())
            active, counts = np.unique(drawn, return_counts=True)
            w = counts.astype(np.float64)
        stars = np.ascontiguousarray(self.stars[active])
        pulls = np.ascontiguousarray(self.pulls[active])
        liked = np.ascontiguousarray(self.liked[active])
        gain = self.gain
        rel = np.repeat(self.base[None, :], active.size, axis=0)
        n_left = self.n_liked[active].copy()
        for k in np.asarray(asked, dtype=np.int64).tolist():
            _answer(rel, n_left, liked, stars[:, k], pulls[:, k], self.b[k], self.cand_col[k])
        now = np.empty(active.size)
        top = np.full((active.size, KEPT_PLACES), -1, dtype=np.int64)  # best places so far
        _ndcg_of(rel, n_left, liked, gain, np.ones(active.size, np.float32), now, top)
        free = allowed.copy()
        free[np.asarray(asked, dtype=np.int64)] = False
        candidates = np.flatnonzero(free)
        gains = np.full(candidates.size, np.inf)  # last measured gain of each
        still = np.ones(candidates.size, dtype=bool)  # not chosen yet
        chosen: list[int] = []
        while len(chosen) < n and len(chosen) < candidates.size:
            measure = np.flatnonzero(still)
            if chosen and 0 < recheck < measure.size:
                measure = measure[np.argsort(-gains[measure], kind="stable")[:recheck]]
            fresh = np.empty(measure.size)
            _gains(rel, n_left, liked, now, top, w, stars, pulls, self.b, self.cand_col,
                   candidates[measure], gain, fresh)  # fmt: skip
            gains[measure] = fresh
            best = measure[np.argsort(-fresh, kind="stable")]
            pick = int(best[0])
            if rng is not None and pool > 1:
                pick = int(best[rng.integers(min(pool, best.size))])
            k = int(candidates[pick])
            chosen.append(k)
            still[pick] = False
            _answer(rel, n_left, liked, stars[:, k], pulls[:, k], self.b[k], self.cand_col[k])
            _ndcg_of(rel, n_left, liked, gain, stars[:, k], now, top)
        return self.cand_pos[np.asarray(chosen, dtype=np.int64)]

    # -- construction -----------------------------------------------------------------
    @classmethod
    def build(
        cls,
        train: Ratings,
        model: Recommender,
        movie_ids: Int64Array,
        user_rows: IndexArray,
        seed: int = 0,
    ) -> Simulator | None:
        """The simulator of ``model`` (None unless its ranking is linear in what each
        rating pulls: :meth:`~movierec.models.base.Recommender.pull_ranking`, ``ease``)
        over the index's ``movie_ids``; ``user_rows``: the training users the index
        samples (rows of ``train.matrix``), of which at most ``SIM_USERS`` are simulated."""
        parts = model.pull_ranking()
        if parts is None:
            return None
        model_movies = np.asarray(model.movie_ids)  # fitted: it has a pull ranking
        position = {int(m): i for i, m in enumerate(movie_ids)}
        model_pos = np.array([position.get(int(m), -1) for m in model_movies])
        kept = parts.items[model_pos[parts.items] >= 0]  # model columns the index knows
        kept_counts = _counts_of(train, model_movies[kept])
        by_count = np.lexsort((kept, -kept_counts))
        ranked = np.sort(kept[by_count[:SIM_RANKED]])  # model columns, ascending
        cands = np.sort(kept[by_count[:SIM_CANDIDATES]])
        debias, prior = parts.terms(ranked)  # relevance = pull * debias + prior
        b = parts.pulls(cands, ranked) * debias.astype(np.float32)
        rng = np.random.default_rng(seed)
        users = np.asarray(user_rows, dtype=np.int64)
        if users.size > SIM_USERS:
            users = np.sort(rng.choice(users, SIM_USERS, replace=False))
        gain = parts.gain(parts.start_stars(ranked))
        base = prior
        stars, liked, n_liked = _user_arrays(train, users, model_movies[cands],
                                             model_movies[ranked])  # fmt: skip
        pulls = np.where(stars > 0, parts.weights(stars.ravel()).reshape(stars.shape), 0)
        cand_pos = model_pos[cands]
        cand_of = np.full(len(movie_ids), -1, dtype=np.int64)
        cand_of[cand_pos] = np.arange(cands.size)
        return cls(
            cand_pos=cand_pos,
            cand_col=np.searchsorted(ranked, cands).astype(np.int64),
            stars=stars,
            pulls=pulls.astype(np.float32),
            liked=liked,
            n_liked=n_liked,
            b=np.ascontiguousarray(b),
            base=base.astype(np.float32),
            gain=gain.astype(np.float32),
            user_rows=np.searchsorted(np.asarray(user_rows), users),
            cand_of=cand_of,
        )


def _counts_of(train: Ratings, movie_ids: Int64Array) -> Int64Array:
    """``(len(movie_ids),)`` training rating counts (0 for unknown movies)."""
    columns = train.items_of(movie_ids)
    counts = train.item_counts()
    found: Int64Array = np.where(columns >= 0, counts[np.maximum(columns, 0)], 0)
    return found


def _user_arrays(
    train: Ratings, users: Int64Array, cand_ids: Int64Array, ranked_ids: Int64Array
) -> tuple[Float32Array, BoolArray, Int64Array]:
    """``stars (U, K)``, ``liked (U, M)``, ``n_liked (U,)`` of training ``users`` (rows)."""
    matrix = train.matrix.tocsr()[users].tocoo()
    to_cand = np.full(train.n_items, -1)
    to_ranked = np.full(train.n_items, -1)
    cand_cols, ranked_cols = train.items_of(cand_ids), train.items_of(ranked_ids)
    to_cand[cand_cols[cand_cols >= 0]] = np.flatnonzero(cand_cols >= 0)
    to_ranked[ranked_cols[ranked_cols >= 0]] = np.flatnonzero(ranked_cols >= 0)
    is_liked = matrix.data >= LIKED_STARS
    n_liked = np.bincount(matrix.row[is_liked], minlength=users.size).astype(np.int64)
    liked = np.zeros((users.size, ranked_ids.size), dtype=np.bool_)
    r = to_ranked[matrix.col]
    ok = is_liked & (r >= 0)
    liked[matrix.row[ok], r[ok]] = True
    stars = np.zeros((users.size, cand_ids.size), dtype=np.float32)
    c = to_cand[matrix.col]
    stars[matrix.row[c >= 0], c[c >= 0]] = matrix.data[c >= 0]
    return stars, liked, n_liked


@njit(cache=True, nogil=True, fastmath=True)
def _scores(rel, gain, pull, row, skip, scratch):  # noqa: ANN001
    """``scratch[j]``: movie ``j``'s ranking score for a user of relevance ``rel`` whose
    answer pulls by ``pull`` (0: no answer) the candidate of ``B`` row ``row`` and ranked
    column ``skip`` (-1: none; it leaves the ranking). One vectorisable pass."""
    weight = np.float32(pull)
    for j in range(rel.shape[0]):
        r = rel[j] + weight * row[j]
        scratch[j] = r * gain[j] if r > 0 else r
    if skip >= 0:
        scratch[skip] = EXCLUDED


@njit(cache=True, nogil=True)
def _top_places(scratch, low, top_v, top_j):  # noqa: ANN001
    """Fill ``top_j`` ``(k,)`` with the ``k`` best scores' places (ties: lower place
    first) and ``top_v`` with their scores, looking only at scores ``>= low`` (a floor
    known to be under the ``k``-th best; ``EXCLUDED``: none known). -1 where fewer."""
    k = top_v.size
    top_v[:] = EXCLUDED  # nothing at or below it enters
    top_j[:] = -1
    floor = EXCLUDED
    for j in range(scratch.size):
        v = scratch[j]
        if v < low or v <= floor:
            continue
        p = k - 1
        while p > 0 and top_v[p - 1] < v:
            top_v[p] = top_v[p - 1]
            top_j[p] = top_j[p - 1]
            p -= 1
        top_v[p] = v
        top_j[p] = j
        floor = top_v[k - 1]


@njit(cache=True, nogil=True)
def _ndcg_at(top_j, liked, n_left):  # noqa: ANN001
    """NDCG@TOP_K of the places ``top_j[:TOP_K]`` for a user with ``n_left`` hits left."""
    dcg = 0.0
    for p in range(TOP_K):
        if top_j[p] >= 0 and liked[top_j[p]]:
            dcg += DISCOUNT[p]
    return dcg / IDEAL_DCG[min(n_left, TOP_K)]


@njit(cache=True, nogil=True)
def _gain(rel, n_left, liked, now, top, w, stars, pulls, row, col, gain):  # noqa: ANN001
    """Weighted sum over users of the NDCG change if candidate (``stars`` column, ``row``
    of ``B``, ranked column ``col``) were asked.

    Only scores at or above a floor are sorted: the new scores of ``TOP_K`` of a user's
    best places so far (``top``, the candidate's own left out) are scores of real
    movies, so the new ``TOP_K``-th best is at least their least. Same places as a full
    sort (nothing under the floor could be among them), with a small share of the
    movies sorted (``bench/onboarding_strategies.py``: p99 of a 15-card batch 18.6-20.1
    -> 14.0-15.0 ms of CPU with this and the other changes of that commit).
    """
    total = 0.0
    scratch = np.empty(rel.shape[1], dtype=np.float32)
    top_v, top_j = np.empty(TOP_K, dtype=np.float32), np.empty(TOP_K, dtype=np.int64)
    for u in range(rel.shape[0]):
        if stars[u] <= 0:
            continue  # not seen: this user's ranking does not change
        left = n_left[u] - (1 if col >= 0 and liked[u, col] else 0)
        if left <= 0:
            new = 0.0
        else:
            _scores(rel[u], gain, pulls[u], row, col, scratch)
            low, counted = np.float32(np.inf), 0
            for t in range(top.shape[1]):
                place = top[u, t]
                if place >= 0 and place != col and counted < TOP_K:
                    low = min(low, scratch[place])
                    counted += 1
            _top_places(scratch, low if counted == TOP_K else EXCLUDED, top_v, top_j)
            new = _ndcg_at(top_j, liked[u], left)
        total += w[u] * (new - now[u])
    return total


@njit(cache=True, nogil=True)
def _gains(rel, n_left, liked, now, top, w, stars, pulls, b, cand_col, candidates, gain,
           out):  # noqa: ANN001  # fmt: skip
    """``out[j]``: :func:`_gain` of candidate ``candidates[j]``."""
    for j in range(candidates.size):
        k = candidates[j]
        out[j] = _gain(rel, n_left, liked, now, top, w, stars[:, k], pulls[:, k], b[k],
                       cand_col[k], gain)  # fmt: skip


@njit(cache=True, nogil=True)
def _ndcg_of(rel, n_left, liked, gain, stars, out, top):  # noqa: ANN001
    """``out[u]``: NDCG@TOP_K now of each user with ``stars[u] > 0`` (the others keep
    theirs: their ranking did not change), and ``top[u]`` ``(KEPT_PLACES,)`` their best
    places."""
    empty = np.zeros(rel.shape[1], dtype=np.float32)
    scratch = np.empty(rel.shape[1], dtype=np.float32)
    top_v = np.empty(top.shape[1], dtype=np.float32)
    for u in range(rel.shape[0]):
        if stars[u] <= 0:
            continue
        if n_left[u] <= 0:
            out[u] = 0.0
            continue
        _scores(rel[u], gain, 0.0, empty, -1, scratch)
        _top_places(scratch, EXCLUDED, top_v, top[u])
        out[u] = _ndcg_at(top[u], liked[u], n_left[u])


@njit(cache=True, nogil=True)
def _answer(rel, n_left, liked, stars, pulls, row, col):  # noqa: ANN001
    """Users who rated the candidate answer it: relevance moves, the movie leaves."""
    for u in range(rel.shape[0]):
        if stars[u] <= 0:
            continue
        rel[u] += pulls[u] * row
        if col >= 0:
            if liked[u, col]:
                n_left[u] -= 1
            rel[u, col] = EXCLUDED
