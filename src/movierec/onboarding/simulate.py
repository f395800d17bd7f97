"""Training users as simulated visitors: which questions raise ``ease``'s NDCG@10 most.

GreedyExtend (Rashid, Karypis & Riedl 2008; cf. Golbandi, Koren & Lempel 2011): a batch of
questions is chosen one movie at a time, each time the one that most raises the mean
NDCG@10 of *training* users who are asked the movies and answer what they rated, ranked
by the same relevance the app ranks with. Each training user is weighted by how well it
explains the visitor's answers so far (``P(seen)``'s weights, :mod:`.strategies`), and
starts from its own answers to the movies the visitor was already asked: a soft decision
tree over the training users.

The ranking simulated is ``ease``'s (:mod:`movierec.models.ease`): relevance ``s = pop +
sum (stars - like_offset) B[asked, :]`` over the kept movies, times ``(stars / 5) **
star_power`` where positive, with the stars a visitor would get before any answer
(``mu + b_i``: the member's user factors are left out); movies rated in answers are not
ranked and not counted as hits, as in the protocol. Only the ``SIM_RANKED`` most-rated
kept movies are ranked, and ``SIM_USERS`` training users at most (a seeded sample) are
simulated (of which a request draws ``SIM_SAMPLE``, :mod:`.strategies`), so a 25 M-rating
set costs what a small one does.

Arrays (``U`` users, ``K`` candidate movies, ``M`` ranked movies): ``stars`` ``(U, K)``
float32 (0: not rated), ``liked`` ``(U, M)`` bool (stars >= 4), ``n_liked`` ``(U,)``
(liked training movies, ranked or not: the ideal DCG), ``b`` ``(K, M)`` float32 rows of
``B``, ``base`` ``(M,)`` popularity term, ``gain`` ``(M,)`` star gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from movierec.data.ratings import Ratings

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


@dataclass
class Simulator:
    """Training users ranked by ``ease``'s relevance as answers accrue (module doc)."""

    cand_pos: np.ndarray  # (K,) index positions of the candidate movies
    cand_col: np.ndarray  # (K,) each candidate's column among the ranked, -1 if not ranked
    stars: np.ndarray  # (U, K) float32
    liked: np.ndarray  # (U, M) bool
    n_liked: np.ndarray  # (U,) int64
    b: np.ndarray  # (K, M) float32
    base: np.ndarray  # (M,) float32
    gain: np.ndarray  # (M,) float32
    like_offset: float
    user_rows: np.ndarray  # (U,) rows of the index's seen matrix
    cand_of: np.ndarray  # (n_items,) candidate number of each index position, -1 if none

    @property
    def n_users(self) -> int:
        return int(self.stars.shape[0])

    def greedy(
        self,
        n: int,
        weights: np.ndarray,
        allowed: np.ndarray,
        asked: np.ndarray,
        rng: np.random.Generator | None = None,
        *,
        sample: int = 0,
        pool: int = 1,
        recheck: int = 0,
    ) -> np.ndarray:
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
        liked = np.ascontiguousarray(self.liked[active])
        gain = self.gain
        rel = np.repeat(self.base[None, :], active.size, axis=0)
        excluded = np.zeros(liked.shape, dtype=np.bool_)
        n_left = self.n_liked[active].copy()
        for k in np.asarray(asked, dtype=np.int64).tolist():
            _answer(rel, excluded, n_left, liked, stars[:, k], self.b[k], self.cand_col[k],
                    self.like_offset)  # fmt: skip
        now = np.empty(active.size)
        _ndcg_of(rel, excluded, n_left, liked, gain, np.ones(active.size, np.float32), now)
        free = allowed.copy()
        free[np.asarray(asked, dtype=np.int64)] = False
        candidates = np.flatnonzero(free)
        gains = np.full(candidates.size, np.inf)  # last measured gain of each
        chosen: list[int] = []
        while len(chosen) < n and candidates.size:
            measure = np.arange(candidates.size)
            if chosen and 0 < recheck < candidates.size:
                measure = np.argsort(-gains, kind="stable")[:recheck]
            fresh = np.empty(measure.size)
            _gains(rel, excluded, n_left, liked, now, w, stars, self.b, self.cand_col,
                   candidates[measure], gain, self.like_offset, fresh)  # fmt: skip
            gains[measure] = fresh
            best = measure[np.argsort(-fresh, kind="stable")]
            pick = int(best[0])
            if rng is not None and pool > 1:
                pick = int(best[rng.integers(min(pool, best.size))])
            k = int(candidates[pick])
            chosen.append(k)
            _answer(rel, excluded, n_left, liked, stars[:, k], self.b[k], self.cand_col[k],
                    self.like_offset)  # fmt: skip
            _ndcg_of(rel, excluded, n_left, liked, gain, stars[:, k], now)
            candidates, gains = np.delete(candidates, pick), np.delete(gains, pick)
        return self.cand_pos[np.asarray(chosen, dtype=np.int64)]

    # -- construction -----------------------------------------------------------------
    @classmethod
    def build(
        cls,
        train: Ratings,
        model: object,
        movie_ids: np.ndarray,
        user_rows: np.ndarray,
        seed: int = 0,
    ) -> Simulator | None:
        """The simulator of ``model`` (None unless it is an ``ease``-like model with
        ``kept``, ``item_item``, ``popularity`` and an SVD ``member``) over the index's
        ``movie_ids``; ``user_rows``: the training users the index samples (rows of
        ``train.matrix``), of which at most ``SIM_USERS`` are simulated."""
        needed = ("kept", "item_item", "popularity", "member", "movie_ids")
        if not all(hasattr(model, name) for name in needed) or not model.kept.size:
            return None
        params = model.params
        position = {int(m): i for i, m in enumerate(movie_ids)}
        model_pos = np.array([position.get(int(m), -1) for m in model.movie_ids])
        kept = model.kept[model_pos[model.kept] >= 0]  # model columns the index knows
        rows_of = np.full(model.n_items, -1)
        rows_of[model.kept] = np.arange(model.kept.size)
        kept_counts = _counts_of(train, model.movie_ids[kept])
        by_count = np.lexsort((kept, -kept_counts))
        ranked = np.sort(kept[by_count[:SIM_RANKED]])  # model columns, ascending
        cands = np.sort(kept[by_count[:SIM_CANDIDATES]])
        b = model.item_item[np.ix_(rows_of[cands], rows_of[ranked])].astype(np.float32)
        rng = np.random.default_rng(seed)
        users = np.asarray(user_rows, dtype=np.int64)
        if users.size > SIM_USERS:
            users = np.sort(rng.choice(users, SIM_USERS, replace=False))
        member = model.member
        start = np.clip(member.global_mean + member.item_bias[ranked], 0.5, 5.0)
        gain = (start / 5.0) ** float(params["star_power"])
        base = float(params["popularity"]) * model.popularity[ranked]
        stars, liked, n_liked = _user_arrays(train, users, model.movie_ids[cands],
                                             model.movie_ids[ranked])  # fmt: skip
        cand_pos = model_pos[cands]
        cand_of = np.full(len(movie_ids), -1, dtype=np.int64)
        cand_of[cand_pos] = np.arange(cands.size)
        return cls(
            cand_pos=cand_pos,
            cand_col=np.searchsorted(ranked, cands).astype(np.int64),
            stars=stars,
            liked=liked,
            n_liked=n_liked,
            b=np.ascontiguousarray(b),
            base=base.astype(np.float32),
            gain=gain.astype(np.float32),
            like_offset=float(params["like_offset"]),
            user_rows=np.searchsorted(np.asarray(user_rows), users),
            cand_of=cand_of,
        )


def _counts_of(train: Ratings, movie_ids: np.ndarray) -> np.ndarray:
    """``(len(movie_ids),)`` training rating counts (0 for unknown movies)."""
    columns = train.items_of(movie_ids)
    counts = train.item_counts()
    return np.where(columns >= 0, counts[np.maximum(columns, 0)], 0)


def _user_arrays(
    train: Ratings, users: np.ndarray, cand_ids: np.ndarray, ranked_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
def _user_ndcg(
    rel: np.ndarray,
    excluded: np.ndarray,
    liked: np.ndarray,
    n_left: int,
    gain: np.ndarray,
    stars: float,
    row: np.ndarray,
    offset: float,
    skip: int,
    scratch: np.ndarray,
) -> float:
    """NDCG@TOP_K of one user ranked by ``rel + (stars - offset) row`` (``stars`` 0: no
    row), movies ``excluded`` and column ``skip`` left out. ``scratch``: ``(M,)`` float32
    work space (the scores, computed in one vectorisable pass before the top-K pass)."""
    if n_left <= 0:
        return 0.0
    weight = np.float32(stars - offset if stars > 0 else 0.0)
    for j in range(rel.shape[0]):
        r = rel[j] + weight * row[j]
        scratch[j] = r * gain[j] if r > 0 else r
    if skip >= 0:
        scratch[skip] = -np.inf
    top_v = np.full(TOP_K, -np.inf, dtype=np.float32)
    top_j = np.full(TOP_K, -1)
    for j in range(rel.shape[0]):
        v = scratch[j]
        if v <= top_v[TOP_K - 1] or excluded[j]:
            continue
        p = TOP_K - 1
        while p > 0 and top_v[p - 1] < v:
            top_v[p] = top_v[p - 1]
            top_j[p] = top_j[p - 1]
            p -= 1
        top_v[p] = v
        top_j[p] = j
    dcg = 0.0
    ideal = 0.0
    for p in range(TOP_K):
        discount = 1.0 / np.log2(p + 2.0)
        if p < n_left:
            ideal += discount
        if top_j[p] >= 0 and liked[top_j[p]]:
            dcg += discount
    return dcg / ideal


@njit(cache=True, nogil=True)
def _gain(rel, excluded, n_left, liked, now, w, stars, row, col, gain, offset):  # noqa: ANN001
    """Weighted sum over users of the NDCG change if candidate (``stars`` column, ``row``
    of ``B``, ranked column ``col``) were asked."""
    total = 0.0
    scratch = np.empty(rel.shape[1], dtype=np.float32)
    for u in range(rel.shape[0]):
        if stars[u] <= 0:
            continue  # not seen: this user's ranking does not change
        left = n_left[u] - (1 if col >= 0 and liked[u, col] else 0)
        new = _user_ndcg(
            rel[u], excluded[u], liked[u], left, gain, stars[u], row, offset, col, scratch
        )
        total += w[u] * (new - now[u])
    return total


@njit(cache=True, nogil=True)
def _gains(rel, excluded, n_left, liked, now, w, stars, b, cand_col, candidates, gain, offset,
           out):  # noqa: ANN001  # fmt: skip
    """``out[j]``: :func:`_gain` of candidate ``candidates[j]``."""
    for j in range(candidates.size):
        k = candidates[j]
        out[j] = _gain(rel, excluded, n_left, liked, now, w, stars[:, k], b[k], cand_col[k],
                       gain, offset)  # fmt: skip


@njit(cache=True, nogil=True)
def _ndcg_of(rel, excluded, n_left, liked, gain, stars, out):  # noqa: ANN001
    """``out[u]``: NDCG@TOP_K now of each user with ``stars[u] > 0`` (the others keep
    theirs: their ranking did not change)."""
    empty = np.zeros(rel.shape[1], dtype=np.float32)
    scratch = np.empty(rel.shape[1], dtype=np.float32)
    for u in range(rel.shape[0]):
        if stars[u] > 0:
            out[u] = _user_ndcg(
                rel[u], excluded[u], liked[u], n_left[u], gain, 0.0, empty, 0.0, -1, scratch
            )


@njit(cache=True, nogil=True)
def _answer(rel, excluded, n_left, liked, stars, row, col, offset):  # noqa: ANN001
    """Users who rated the candidate answer it: relevance moves, the movie leaves."""
    for u in range(rel.shape[0]):
        if stars[u] <= 0:
            continue
        rel[u] += (stars[u] - offset) * row
        if col >= 0:
            if liked[u, col]:
                n_left[u] -= 1
            excluded[u, col] = True
