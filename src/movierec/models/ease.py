"""EASE item-item relevance for top-N, with a biased-MF member for the stars shown.

Top-N (``rank``) and predicted stars (``score``) come from two parts fitted together:

- **Relevance** (Steck 2019, "Embarrassingly Shallow Autoencoders"): on the binary
  user x movie matrix ``X`` ("has rated", whatever the stars), restricted to the
  ``kept`` movies with at least ``min_count`` training ratings (at most ``max_items``,
  most-rated first), the closed form ``P = (X'X + l2 I)^-1``,
  ``B = I - P diag(1 / diag(P))``: ``B[i, j]`` is how much having rated ``i`` says a user
  rates ``j`` (``diag(B) = 0``, so no movie explains itself). A user who gave ``stars`` to
  ``items`` gets relevance ``s_j = (w @ B[items])_j / (1 + n_j) ** popularity_debias``
  with ``w = stars - like_offset`` for a rating of 3 stars or more (a 3 still says "I
  watch this kind of movie", which is most of what predicts the next one) and
  ``w = dislike_weight * (stars - 3)`` for a dislike (2.5 or less,
  :data:`~movierec.models.base.DISLIKE_BELOW`): a disliked movie pushes its companions
  down, the more the fewer stars. ``n_j`` is ``j``'s training ratings: ``B[i, j]`` grows
  with how often ``j`` is rated, so without the division every visitor's list is the
  canon (a movie everybody has seen needs more evidence to rank as high).
  ``popularity * log1p(n_j) / log1p(n_max)`` is added: a tie-breaker, and the whole
  ranking for a visitor who rated nothing (most-rated first).
- **Stars**: a :class:`~movierec.models.svd.SVD` member fitted on the same ratings gives
  ``predict``, ``score`` and the fold-in of a visitor's factors.

``rank = s * (stars / 5) ** star_power`` where ``s > 0`` (liked-and-likely movies rise;
a movie the user is predicted to dislike sinks), ``s`` itself where ``s <= 0``; movies
outside ``kept`` rank below every kept one, by predicted stars. The formula is written
once, :meth:`EASE.kept_relevance` and :meth:`EASE.rank_kept`, and every ranking path
(``rank``, ``rank_users``, ``rank_at``, ``top_k``, the onboarding simulator) goes through
them.

Fold-in costs the member's ridge solve plus, when ranking, a weighted sum of one row of
``B`` per rated movie (``(m,)`` each, ``m`` = kept movies). ``top_k`` needs no more:
since every movie outside ``kept`` ranks below every kept one, the top ``k`` of the whole
ranking are the top ``k`` of the kept movies whenever ``k`` of them are allowed, so the
member scores only the kept movies (from a contiguous copy of their rows) instead of the
whole catalogue (10,000 instead of 62,423 movies at 25 M ratings); the picks are the same.

**Scale.** ``B`` is dense: ``m^2`` float32 (1.6 GB at 20k movies, 14 GB at 59k) and
inverting it costs ``m^3`` flops, so ``B`` covers a chosen item set, not the whole
catalogue: the most-rated movies, as many as ``max_items`` and ``memory_budget_gb``
allow. Why this rather than a sparse approximate inverse: on MovieLens-shaped data the
rating counts follow a power law, so the most-rated movies hold most ratings (every
movie a visitor is shown to rate is among them; ``bench/scale.py`` prints the share of
ratings the kept movies hold), and relevance for the rest would rest on a handful of
co-ratings each. They still rank, below the kept ones, by predicted stars. The fit is sized before
anything big is allocated (:func:`fit_bytes`): the Gram matrix ``X'X`` of the kept
movies is built straight into one dense float32 ``(m, m)`` array by a numba loop over
co-ratings (never a sparse ``m^2`` product), regularised, inverted in place by LAPACK's
Cholesky (``spotrf`` + ``spotri``) and turned into ``B`` in place, so the peak is about
``4 m^2`` bytes plus the kept ratings. With ``fit_to_budget`` (the default) ``m`` is
cut to what ``memory_budget_gb`` holds; without it a fit that would need more raises
:class:`~movierec.errors.ModelError` naming the bytes needed and the budget, before it
allocates anything. ``max_items`` (10,000 by default) bounds the fit time: the inverse
costs about ``m^3`` flops, 10^12 at 10k movies (tens of seconds on 2 cores).

``l2`` chosen by ``bench/onboarding_tune.py``: the onboarding protocol (15 of the 50
most-rated movies shown, about 5 ratings revealed) on validation users carved out of
ml-latest-small's training users only. ``dislike_weight``, ``popularity_debias``,
``star_power``, ``popularity``, ``min_count`` and ``genre_weight`` were chosen on the same
kind of validation users by ``bench/personal_picks.py --validate`` (seeds 1-2, 8 folds,
``evaluate``'s own protocol with the beyond-accuracy figures), for personal picks at
>= 95 % of the old NDCG@10: there the old ranking (``-p min_count=50 star_power=3
popularity=0.01 dislike_weight=null popularity_debias=0 genre_weight=0``) has NDCG@10
0.438, 93 distinct movies in a fold's top 10s, overlap 0.198, miscalibration 0.853,
12.1 % of genre personas' top 10 in their hated genre; the defaults 0.416 (0.95x), 180
(1.94x), 0.094, 0.427 and 4.3 %. Tried beside them (one change each, pooled over the same
folds, with an earlier re-ranking that shrank the genre target towards the population's):
``popularity`` 0.003 (NDCG +0.004, distinct -14), ``dislike_weight`` 2 (-0.005, +13),
``star_power`` 2 (+0.002, -7), ``popularity_debias`` 0.4 (+0.001, -13), ``like_offset``
1 (+0.001, -2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from numba import njit, prange
from scipy.linalg import lapack

from movierec.data.arrays import (
    AnyArray,
    BoolArray,
    Float32Array,
    Float64Array,
    FloatArray,
    IndexArray,
    Int32Array,
    Int64Array,
)
from movierec.data.ratings import Ratings
from movierec.errors import ModelError
from movierec.models.base import (
    DISLIKE_BELOW,
    STAR_MAX,
    STAR_MIN,
    GenreWeightParams,
    PullRanking,
    Recommender,
    UserState,
    top_indices,
)
from movierec.models.files import ArraySpec
from movierec.models.params import ModelParams, param
from movierec.models.svd import SVD, SVDMemberParams

#: member (SVD) parameters this model passes through, with SVD's defaults
MEMBER_PARAMS = tuple(f.name for f in fields(SVDMemberParams))  # the SVD member's
MEMBER_PREFIX = "svd_"


#: bytes of one float32
FLOAT32 = 4
#: rows of ``B`` symmetrised / scaled per step after the in-place inverse
BLOCK_ROWS = 1024
GB = 1024**3
#: bytes the kept ratings take while the Gram matrix is built (see ``fit_bytes``)
BYTES_PER_KEPT_RATING = 20
#: co-raters at which ``item_similarity``'s cosine counts half (validation users of
#: ``bench/similar.py``, seed 0, blended with content at SHRINK 20, COLLAB_MAX 1: 5 / 10 / 20 gave
#: co-liked@10 0.314 / 0.324 / 0.332, popularity lift 0.160 / 0.190 / 0.214; 10 keeps
#: pairs with few co-raters down without drifting to famous movies)
SIMILARITY_SHRINK = 10.0
#: the float type a ranking step works in (float32 for ``rank_users``, else float64)
F = TypeVar("F", bound=np.floating[Any])


def kept_items(counts: IndexArray, min_count: int, max_items: int) -> Int64Array:
    """``(m,)`` int64 sorted indices of the items with ``counts >= min_count``; at most
    ``max_items`` of them, the most counted first (ties: lower index)."""
    counts = np.asarray(counts, dtype=np.int64)
    eligible = np.flatnonzero(counts >= min_count)
    if eligible.size > max_items:
        order = np.lexsort((eligible, -counts[eligible]))
        eligible = np.sort(eligible[order[:max_items]])
    return eligible.astype(np.int64)


def fit_bytes(m: int, n_kept_ratings: int) -> int:
    """Bytes the item-item part of a fit holds at its peak for ``m`` kept movies.

    One dense float32 ``(m, m)`` Gram / inverse / ``B`` (built and inverted in place),
    a ``(BLOCK_ROWS, m)`` scratch block, and the kept ratings three times: their CSR
    columns (float32 + int32), an int32 copy by user, a CSC by item (int8 + int32), plus
    slack: ``BYTES_PER_KEPT_RATING``.
    """
    sizes = np.array([m], dtype=np.int64)
    return int(fit_bytes_array(sizes, np.array([n_kept_ratings], dtype=np.int64))[0])


def budget_items(budget_bytes: float, counts: IndexArray, kept: Int64Array) -> int:
    """How many of ``kept`` (most counted first) fit in ``budget_bytes`` (``fit_bytes``)."""
    by_count = np.sort(np.asarray(counts, dtype=np.int64)[kept])[::-1]
    ratings_so_far = np.cumsum(by_count)
    sizes = np.arange(1, kept.size + 1)
    fits = fit_bytes_array(sizes, ratings_so_far) <= budget_bytes
    return int(np.flatnonzero(fits)[-1] + 1) if fits.any() else 0


def fit_bytes_array(m: IndexArray, n_kept_ratings: IndexArray) -> Int64Array:
    """``fit_bytes`` for arrays of sizes (int64 arithmetic, no overflow below 10^9 items)."""
    sizes = np.asarray(m, dtype=np.int64)
    scratch = FLOAT32 * np.minimum(sizes, BLOCK_ROWS) * sizes
    kept = np.asarray(n_kept_ratings, dtype=np.int64)
    return FLOAT32 * sizes * sizes + scratch + BYTES_PER_KEPT_RATING * kept


@njit(cache=True, parallel=True, nogil=True)
def cooccurrence_gram(
    item_indptr: Int64Array, item_users: Int32Array, user_indptr: Int64Array,
    user_items: Int32Array, out: Float32Array,
) -> None:  # fmt: skip
    """Fill ``out`` ``(m, m)`` float32 with ``X'X`` of a binary ``(n_users, m)`` matrix
    given by CSC (``item_indptr``, ``item_users``) and CSR (``user_indptr``,
    ``user_items``): ``out[i, j]`` = users who rated both ``i`` and ``j``.

    Written by hand: scipy's sparse product would first build an ``m^2``-entry sparse
    result (12+ bytes an entry); this writes the dense one directly, one row per item
    (so the parallel rows never write to the same place), in ``sum_u n_u^2`` steps.
    """
    m = item_indptr.shape[0] - 1
    for i in prange(m):
        row = out[i]
        row[:] = 0.0
        for p in range(item_indptr[i], item_indptr[i + 1]):
            u = item_users[p]
            for q in range(user_indptr[u], user_indptr[u + 1]):
                row[user_items[q]] += 1.0


def ease_weights_inplace(gram: Float32Array, l2: float) -> Float32Array:
    """Turn ``gram`` ``(m, m)`` float32 C-ordered ``X'X`` into EASE's ``B`` in place.

    ``P = (gram + l2 I)^-1`` by Cholesky (``spotrf`` then ``spotri`` on the same
    memory), ``B = I - P diag(1 / diag(P))``. Returns ``gram`` (now ``B``).
    """
    m = gram.shape[0]
    if m == 0:
        return gram
    gram[np.diag_indices(m)] += np.float32(l2)
    # A C-ordered symmetric matrix is its own Fortran-ordered transpose: LAPACK works
    # on gram.T without a copy; its upper triangle is gram's lower one.
    factor, info = lapack.spotrf(gram.T, lower=False, clean=False, overwrite_a=True)
    if info != 0 or not np.shares_memory(factor, gram):
        raise ModelError(f"ease: the item-item system could not be factorised (info {info})")
    inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0 or not np.shares_memory(inverse, gram):
        raise ModelError(f"ease: the item-item system could not be inverted (info {info})")
    for start in range(0, m, BLOCK_ROWS):  # copy the lower triangle up, block by block
        stop = min(start + BLOCK_ROWS, m)
        block = gram[start:stop, start:stop]
        block[:] = np.tril(block) + np.tril(block, -1).T
        gram[start:stop, stop:] = gram[stop:, start:stop].T
    scale = (-1.0 / np.diag(gram).astype(np.float64)).astype(np.float32)
    for start in range(0, m, BLOCK_ROWS):  # B = P diag(-1 / diag(P)), diagonal 0
        gram[start : start + BLOCK_ROWS] *= scale[None, :]
    gram[np.diag_indices(m)] = 0.0
    return gram


def ease_weights(gram: FloatArray, l2: float) -> Float64Array:
    """``(m, m)`` float64 EASE item-item weights ``B = I - P diag(1 / diag(P))``.

    gram: ``(m, m)`` ``X'X`` of the (binary) interaction matrix; ``P = (gram + l2 I)^-1``.
    ``B`` minimises ``||X - X B||^2 + l2 ||B||^2`` subject to ``diag(B) = 0``.
    Reference (float64, copies); fitting uses :func:`ease_weights_inplace`.
    """
    m = gram.shape[0]
    if m == 0:
        return np.zeros((0, 0), dtype=np.float64)
    regularised = np.array(gram, dtype=np.float64)
    regularised[np.diag_indices(m)] += l2
    precision = np.linalg.inv(regularised)
    weights = precision / -np.diag(precision)[None, :]
    weights[np.diag_indices(m)] = 0.0
    return weights


def co_rating_cosine(
    item_indptr: IndexArray, item_users: IndexArray, user_indptr: Int64Array,
    user_items: Int32Array, item: int, shrink: float,
) -> Float64Array:  # fmt: skip
    """``(n_items,)`` float64 similarity of ``item`` to every item by who rated both.

    With ``c_j`` users who rated both ``item`` and ``j`` and ``n_j`` users who rated
    ``j``: ``c_j / sqrt(n_item n_j) * c_j / (c_j + shrink)``, the cosine of the two binary
    columns, shrunk towards 0 when few users back it (a movie with 3 ratings that share
    2 raters with ``item`` is not its twin). The matrix is given both ways: CSC
    (``item_indptr``, ``item_users``) and CSR (``user_indptr``, ``user_items``); the cost
    is the ratings of ``item``'s raters.
    """
    raters = item_users[item_indptr[item] : item_indptr[item + 1]]
    n_items = item_indptr.size - 1
    if raters.size == 0:
        return np.zeros(n_items, dtype=np.float64)
    starts, stops = user_indptr[raters], user_indptr[raters + 1]
    rows = np.concatenate([user_items[a:b] for a, b in zip(starts, stops, strict=True)])
    both = np.bincount(rows, minlength=n_items).astype(np.float64)
    counts = np.diff(item_indptr).astype(np.float64)
    cosine = both / np.sqrt(np.maximum(counts[item] * counts, 1.0))
    shrunk: Float64Array = cosine * both / (both + shrink)
    return shrunk


def weighted_rows(item_item: Float32Array, rows: IndexArray, weights: FloatArray) -> Float64Array:
    """``(m,)`` float64 ``weights @ item_item[rows]``.

    Summed row by row (``r`` axpys of length ``m``) rather than as a matrix-vector
    product, which BLAS may hand to its thread pool (see ``bench/README.md``): each term
    is ``float32(weight) * row`` in float32, added in float64, as numpy computes
    ``out += weight * item_item[row]`` (:func:`_add_weighted_rows` does it in one pass).
    """
    out = np.zeros(item_item.shape[1], dtype=np.float64)
    _add_weighted_rows(
        item_item, np.asarray(rows, dtype=np.int64), np.asarray(weights, dtype=np.float32), out
    )
    return out


@njit(cache=True, nogil=True)
def _add_weighted_rows(
    item_item: Float32Array, rows: Int64Array, weights: Float32Array, out: Float64Array
) -> None:
    """``out[j] += float64(weights[t] * item_item[rows[t], j])`` (float32 product) for
    each ``t`` in order: numpy's ``out += weight * row`` without its temporaries."""
    for t in range(rows.shape[0]):
        row = item_item[rows[t]]
        weight = weights[t]
        for j in range(out.shape[0]):
            out[j] += np.float64(weight * row[j])


@dataclass(frozen=True)
class EASEParams(SVDMemberParams, GenreWeightParams):
    """The typed parameters of :class:`EASE` (documented there)."""

    l2: float = param(500.0, strict=True)
    min_count: int = param(20)
    max_items: int = param(10000, strict=True)
    memory_budget_gb: float = param(6.0, strict=True)
    fit_to_budget: bool = param(True)
    like_offset: float = param(1.5)
    dislike_weight: float | None = param(1.0)
    star_power: float = param(1.0)
    popularity: float = param(0.001)
    popularity_debias: float = param(0.5)


class EASE(Recommender):
    """EASE relevance x predicted-stars ranking; stars from a biased-MF member.

    Parameters (see the module doc):

    - ``l2``: ridge weight ``lambda`` of the item-item regression.
    - ``min_count`` / ``max_items``: which movies the item-item matrix covers.
    - ``memory_budget_gb``: most memory (GiB) the item-item fit may hold (``fit_bytes``).
    - ``fit_to_budget``: cut the kept movies to the budget (True) or refuse (False).
    - ``like_offset``: stars at which a rated movie neither pulls nor pushes.
    - ``dislike_weight``: a dislike's weight per star below 3 (None: weighted as any
      rating, ``stars - like_offset``, as before dislikes counted).
    - ``star_power``: exponent of ``stars / 5`` multiplying positive relevance (0: off).
    - ``popularity_debias``: exponent of ``1 / (1 + n_j)`` multiplying the rated movies'
      pull on ``j`` (0: off).
    - ``genre_weight``: how strongly picks follow the visitor's genre mix after this
      ranking (:mod:`movierec.rerank`; 0: off).
    - ``popularity``: weight of the normalised log rating count added to relevance.
    - ``n_factors``, ``n_epochs``, ``lr_all``, ``reg_all``: the SVD member's.
    """

    name: ClassVar[str] = "ease"
    params_type: ClassVar[type[ModelParams]] = EASEParams
    config: EASEParams
    #: plus the SVD member's arrays, prefixed ``svd.``
    array_specs: ClassVar[dict[str, ArraySpec]] = {
        "kept": ArraySpec("int64", ("n_kept",)),
        "item_item": ArraySpec("float32", ("n_kept", "n_kept")),
        "popularity": ArraySpec("float32", ("n_items",)),
    }

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        self.member = self._new_member()  # bad member parameters fail here
        self.kept = np.zeros(0, dtype=np.int64)  # (m,) item indices covered by B
        self.item_item = np.zeros((0, 0), dtype=np.float32)  # (m, m) B
        self.popularity = np.zeros(0, dtype=np.float32)  # (n_items,) log1p(n)/log1p(n_max)
        self._position = np.zeros(0, dtype=np.int64)  # (n_items,) row in B, -1 if not kept
        self._raters: sp.csc_matrix | None = None  # (n_users, n_items) for item_similarity

    def _new_member(self) -> SVD:
        return SVD(seed=self.seed, **{k: getattr(self.config, k) for k in MEMBER_PARAMS})

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        counts = ratings.item_counts()
        kept = self._choose_kept(counts)  # refuses before any big allocation
        self.member = self._new_member().fit(ratings, progress=progress)
        item_item = self._item_item(ratings.matrix, kept)
        log_counts = np.log1p(counts.astype(np.float64))
        self._set_relevance(
            kept,
            item_item,
            (log_counts / max(float(log_counts.max(initial=0.0)), 1e-12)).astype(np.float32),
        )

    def _choose_kept(self, counts: Int64Array) -> Int64Array:
        """The kept movies: ``kept_items``, then cut to ``memory_budget_gb`` (or refuse)."""
        kept = kept_items(counts, self.config.min_count, self.config.max_items)
        budget = self.config.memory_budget_gb * GB
        need = fit_bytes(kept.size, int(counts[kept].sum()))
        if need <= budget:
            return kept
        if not self.config.fit_to_budget:
            raise ModelError(
                f"ease needs {need / GB:.2f} GB for its {kept.size} x {kept.size} item-item "
                f"matrix, over memory_budget_gb={self.config.memory_budget_gb:g}; lower "
                "max_items, raise memory_budget_gb or allow fit_to_budget"
            )
        fitting = budget_items(budget, counts, kept)
        return kept[kept_items(counts[kept], 0, fitting)] if fitting else kept[:0]

    def _item_item(self, matrix: sp.csr_matrix, kept: Int64Array) -> Float32Array:
        """``(m, m)`` float32 ``B`` of the binary ratings of the ``kept`` columns."""
        seen = matrix[:, kept]  # (n_users, m) CSR, stars where rated
        by_user = (seen.indptr.astype(np.int64), seen.indices.astype(np.int32))
        del seen
        by_item = sp.csr_matrix(
            (np.ones(by_user[1].size, dtype=np.int8), by_user[1], by_user[0]),
            shape=(matrix.shape[0], kept.size),
        ).tocsc()
        gram = np.empty((kept.size, kept.size), dtype=np.float32)
        cooccurrence_gram(
            by_item.indptr.astype(np.int64), by_item.indices.astype(np.int32), *by_user, gram
        )
        del by_item, by_user
        return ease_weights_inplace(gram, self.config.l2)

    def _set_relevance(self, kept: Int64Array, item_item: Float32Array, pop: Float32Array) -> None:
        """Hold the item-item part (the member must be fitted or loaded first)."""
        self._raters = None  # built again from the member's ratings on first use
        self.kept = np.asarray(kept, dtype=np.int64)
        self.item_item = np.ascontiguousarray(item_item, dtype=np.float32)
        self.popularity = np.asarray(pop, dtype=np.float32)
        self._position = np.full(self.n_items, -1, dtype=np.int64)
        self._position[self.kept] = np.arange(self.kept.size)
        # the member's rows of the kept movies, contiguous, for ``top_k`` (4 MB at 10k)
        self._kept_factors = np.ascontiguousarray(self.member.item_factors[self.kept])
        self._kept_bias = np.ascontiguousarray(self.member.item_bias[self.kept])
        # (m,) float64 log(1 + n_j) of the kept movies, from the member's training ratings
        counts = np.bincount(self.member._rated_items().items, minlength=self.n_items)
        self._kept_log_counts = np.log1p(counts[self.kept].astype(np.float64))
        # (popularity, popularity_debias) -> (m,) float64 debias and popularity terms
        self._terms: tuple[tuple[float, float], Float64Array, Float64Array] | None = None

    def _predict(self, users: Int64Array, items: Int64Array) -> Float64Array:
        return self.member._predict(users, items)

    def _fold_in(self, items: Int64Array, stars: Float32Array) -> UserState:
        return self.member._fold_in(items, stars)

    def _fold_in_without_each(
        self, items: Int64Array, stars: Float32Array, only: Int64Array
    ) -> list[UserState]:
        return self.member._fold_in_without_each(items, stars, only)

    def _user_state(self, user: int) -> UserState:
        return self.member._user_state(user)

    def _score(self, state: UserState) -> Float32Array:
        """``(n_items,)`` float32 the member's predicted stars, 0.5-5."""
        return self.member._score(state)

    def pull_ranking(self) -> PullRanking | None:
        """The kept movies' ranking as parts (module doc): ``B``'s rows debiased by
        popularity, ``(stars / 5) ** star_power`` gain, stars before any rating from the
        member (``mu + b_i``). None before fitting or with no kept movie."""
        if not self.is_fitted or not self.kept.size:
            return None
        member = self.member

        def pulls(rows: Int64Array, cols: Int64Array) -> Float32Array:
            position = self._position
            block: Float32Array = self.item_item[np.ix_(position[rows], position[cols])]
            return block

        def start_stars(cols: Int64Array) -> Float32Array:
            stars: Float32Array = np.clip(
                member.global_mean + member.item_bias[cols], STAR_MIN, STAR_MAX
            )
            return stars

        return PullRanking(
            items=self.kept.copy(),
            pulls=pulls,
            terms=lambda cols: self.kept_terms(self._position[cols]),
            gain=self.kept_gain,
            weights=self.rating_weights,
            start_stars=start_stars,
        )

    def fold_in_reg(self) -> float | None:
        return self.member.fold_in_reg()

    def rating_weights(self, stars: FloatArray) -> Float64Array:
        """``(r,)`` float64: how much each rating given with ``stars`` ``(r,)`` pulls its
        companions up (> 0) or pushes them down (< 0) in :meth:`relevance` (module doc)."""
        values = np.asarray(stars, dtype=np.float64)
        weights = values - self.config.like_offset
        dislike = self.config.dislike_weight
        if dislike is not None:
            below = values < DISLIKE_BELOW
            weights[below] = float(dislike) * (values[below] - DISLIKE_BELOW)
        return weights

    def kept_relevance(
        self, pull: npt.NDArray[F], rows: Int64Array | None = None
    ) -> npt.NDArray[F]:
        """Relevance (module doc) of the kept movies at ``rows`` (positions in ``kept``,
        ``(r,)``; None: all ``m``) from ``pull`` ``(..., r)``, the rated movies' weighted
        rows of ``B`` there: ``pull / (1 + n_j) ** popularity_debias + popularity *
        log1p(n_j) / log1p(n_max)``. In ``pull``'s float type (float32 for
        ``rank_users``)."""
        debias, prior = self.kept_terms(rows)
        kind = np.asarray(pull).dtype.type
        relevance: npt.NDArray[F] = pull * debias.astype(kind) + prior.astype(kind)
        return relevance

    def rank_kept(
        self, relevance: FloatArray, kept_stars: FloatArray, rows: Int64Array | None = None
    ) -> FloatArray:
        """The ranking formula (module doc): ``relevance`` ``(..., r)`` of the kept movies
        at ``rows`` (None: all) times ``(stars / 5) ** star_power`` where positive, itself
        elsewhere; ``kept_stars`` ``(..., r)`` their stars, clipped to 0.5-5. ``rows`` is
        accepted for symmetry with :meth:`kept_relevance` (the gain needs only stars)."""
        return np.where(relevance > 0, relevance * self.kept_gain(kept_stars), relevance)

    def kept_gain(self, kept_stars: npt.NDArray[F]) -> npt.NDArray[F]:
        """``(..., r)`` ``(stars / 5) ** star_power``: what positive relevance is
        multiplied by (:meth:`rank_kept`), in ``kept_stars``' float type."""
        kept_stars = np.asarray(kept_stars)
        kind = kept_stars.dtype.type
        gain: npt.NDArray[F] = (kept_stars / kind(STAR_MAX)) ** kind(self.config.star_power)
        return gain

    def kept_terms(self, rows: Int64Array | None = None) -> tuple[Float64Array, Float64Array]:
        """``(debias, prior)``, each ``(r,)`` float64 at ``rows`` (None: all kept movies):
        ``(1 + n_j) ** -popularity_debias`` and ``popularity * log1p(n_j) /
        log1p(n_max)``, computed once per setting of the two parameters."""
        key = (self.config.popularity, self.config.popularity_debias)
        if self._terms is None or self._terms[0] != key:
            debias = np.exp(-key[1] * self._kept_log_counts)
            prior = key[0] * self.popularity[self.kept].astype(np.float64)
            self._terms = (key, debias, prior)
        _, debias, prior = self._terms
        return (debias, prior) if rows is None else (debias[rows], prior[rows])

    def relevance(self, state: UserState) -> Float64Array:
        """``(m,)`` float64 EASE relevance of the kept movies (``self.kept`` order)."""
        self._check_fitted()
        position = self._position[np.asarray(state.items, dtype=np.int64)]
        known = position >= 0
        weights = self.rating_weights(np.asarray(state.stars)[known])
        return self.kept_relevance(weighted_rows(self.item_item, position[known], weights))

    def _rank(self, state: UserState) -> Float32Array:
        """``(n_items,)``: relevance x (stars / 5) ** star_power for the kept movies (see
        the module doc); the rest below them all, by predicted stars."""
        return self._rank_from(state, self.member.score(state))

    def _rank_from(self, state: UserState, stars: Float32Array) -> Float32Array:
        """``_rank`` given ``stars`` ``(n_items,)`` float32, the member's clipped ones."""
        # not kept: -5.5 to -1, then shifted below the kept; float32 over the whole
        # catalogue (62k movies at 25 M ratings), float64 only over the kept ones
        rank = stars - np.float32(STAR_MAX + 1.0)
        if self.kept.size:
            kept_rank = self._kept_rank(state, stars[self.kept])
            rank += self._below_kept(kept_rank)
            rank[self.kept] = kept_rank
        return rank

    def _kept_rank(self, state: UserState, kept_stars: Float32Array) -> Float64Array:
        """``(m,)`` float64 rank of the kept movies given their ``(m,)`` float32 stars."""
        rank = self.rank_kept(self.relevance(state), kept_stars)  # float64 x float32 gain
        return np.asarray(rank, dtype=np.float64)

    @staticmethod
    def _below_kept(kept_rank: FloatArray) -> np.float32:
        """What the other movies' ``stars - 6`` is shifted by: the kept minimum if < 0."""
        return np.float32(min(float(kept_rank.min()), 0.0))

    def _kept_stars(self, state: UserState) -> Float32Array:
        """``(m,)`` float32 ``member.score(state)[kept]`` without scoring the rest: the
        member's kernel on its kept rows, clipped the same way (bit for bit equal)."""
        raw = self.member._score_rows(state, self._kept_factors, self._kept_bias)
        return np.clip(raw, STAR_MIN, STAR_MAX, out=raw)

    def rank_and_score(self, state: UserState) -> tuple[Float32Array, Float32Array]:
        """``(rank(state), score(state))`` from one pass of the member over every movie."""
        self._check_fitted()
        stars = self.member.score(state)
        return np.asarray(self._rank_from(state, stars), dtype=np.float32), stars

    def top_k(self, state: UserState, k: int, allowed: BoolArray | None = None) -> Int64Array:
        """``Recommender.top_k`` (same items, same order) from the kept movies alone when
        at least ``k`` of them are allowed: every other movie ranks below every kept one
        (``stars - 6``, at most -1, shifted by the kept minimum if that is negative), so
        the member scores 10,000 movies instead of the whole catalogue."""
        self._check_fitted()
        if self.kept.size:
            kept_rank = self._kept_rank(state, self._kept_stars(state))
            below = self._below_kept(kept_rank)
            kept_values = kept_rank.astype(np.float32)  # as ``rank`` holds them
            if np.float32(-1.0) + below < below:  # the others' best stays below the kept
                if allowed is None and self.kept.size >= k:
                    return self.kept[top_indices(kept_values, k)]
                positions = np.flatnonzero(allowed[self.kept]) if allowed is not None else None
                if positions is not None and positions.size >= k:
                    return self.kept[positions[top_indices(kept_values[positions], k)]]
        return super().top_k(state, k, allowed)

    def score_users(self, states: Sequence[UserState]) -> Float32Array:
        """``(len(states), n_items)`` float32 ``score`` of many states (the member's
        stars, clipped to 0.5-5): one matrix product."""
        self._check_fitted()
        stars = self.member.rank_users(states)
        np.minimum(stars, np.float32(STAR_MAX), out=stars)  # np.clip is several times slower
        np.maximum(stars, np.float32(STAR_MIN), out=stars)
        return stars

    def rank_users(self, states: Sequence[UserState]) -> Float32Array:
        """``(len(states), n_items)`` float32 ``rank`` of many states: the relevance of
        all of them is one sparse ``(n, m)`` x dense ``B`` product, the stars one member
        matrix product; float32 throughout (``rank`` sums in float64)."""
        stars = self.score_users(states)
        out = stars - np.float32(STAR_MAX + 1.0)  # not kept: below every kept movie
        if not self.kept.size or not len(states):
            return out
        rows, cols, weights = [], [], []
        for row, state in enumerate(states):
            position = self._position[np.asarray(state.items, dtype=np.int64)]
            known = position >= 0
            rows.append(np.full(int(known.sum()), row))
            cols.append(position[known])
            weights.append(self.rating_weights(np.asarray(state.stars)[known]))
        rated = sp.csr_matrix(
            (np.concatenate(weights).astype(np.float32),
             (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(states), self.kept.size),
        )  # fmt: skip
        pull = np.asarray(rated @ self.item_item, dtype=np.float32)  # (n, m)
        relevance = self.kept_relevance(pull)
        kept_rank = self.rank_kept(relevance, stars[:, self.kept])
        out += np.minimum(kept_rank.min(axis=1), 0.0)[:, None]
        out[:, self.kept] = kept_rank
        return out

    def rank_at(self, states: Sequence[UserState], items: IndexArray) -> Float64Array:
        """``Recommender.rank_at``: at kept ``items``, the relevance of those columns of
        ``B`` only (one ``(rated, len(items))`` block a state) and the member's stars
        there, through :meth:`rank_kept`; an item outside ``kept`` (whose rank depends on
        the kept minimum) falls back to ``rank_users``."""
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64)
        rows = self._position[items] if self.kept.size else np.full(items.size, -1)
        if (rows < 0).any() or not len(states):
            return super().rank_at(states, items)
        stars = np.clip(self.member.rank_at(states, items), STAR_MIN, STAR_MAX)
        # One (states, rated kept movies) weight matrix times one block of B: the states
        # of a leave-one-out share nearly all their ratings, so B is read once, not once
        # a state (40 states cost 7 ms that way).
        sizes = [len(state.items) for state in states]
        rated = self._position[np.concatenate([np.asarray(s.items) for s in states])]
        weights = self.rating_weights(np.concatenate([np.asarray(s.stars) for s in states]))
        owner = np.repeat(np.arange(len(states)), sizes)
        known = rated >= 0
        kept_rated, column = np.unique(rated[known], return_inverse=True)
        matrix = np.zeros((len(states), kept_rated.size), dtype=np.float64)
        np.add.at(matrix, (owner[known], column), weights[known])
        block = self.item_item[np.ix_(kept_rated, rows)].astype(np.float64)  # (rated, items)
        pull = matrix @ block
        rank = self.rank_kept(self.kept_relevance(pull, rows), stars, rows)  # both float64
        return np.asarray(rank, dtype=np.float64)

    def item_vectors(self) -> Float32Array:
        """``(n_items, k)`` float32 the member's item factors (to explain picks)."""
        self._check_fitted()
        return self.member.item_factors

    def item_similarity(self, movie_id: int) -> Float32Array:
        """``(n_items,)`` float32: the shrunk cosine of ``movie_id``'s column of the binary
        "has rated" matrix ``X`` with every other column (:func:`co_rating_cosine`), from
        the training ratings the member keeps: ``X'X``, the co-occurrence counts ``B`` is
        solved from, normalised by both movies' counts.

        Why not ``B``'s row: ``B[i, j]`` grows with how common ``j`` is, so its largest
        entries are the most-rated movies whatever ``i`` is (*Toy Story* -> *Independence
        Day*), and it covers only the kept movies (50+ ratings). Its symmetric form, the
        partial correlation ``sign(B[i, j]) sqrt(B[i, j] B[j, i])``, gave the same co-liked@10
        as the raw row (0.302 / 0.303, ``bench/similar.py --validate``, seed 0, no content
        blended) and still only the kept movies; the shrunk cosine gave 0.409 and covers
        every movie. Built on first use (an item -> users index, the ratings once more).
        """
        self._check_fitted()
        item = int(self.items_of([movie_id])[0])
        rated = self.member.rated
        if rated is None:
            return super().item_similarity(movie_id)
        if self._raters is None:
            self._raters = sp.csr_matrix(
                (np.ones(rated.items.size, dtype=np.int8), rated.items, rated.indptr),
                shape=(self.n_users, self.n_items),
            ).tocsc()
        cosine = co_rating_cosine(
            self._raters.indptr, self._raters.indices, rated.indptr, rated.items, item,
            SIMILARITY_SHRINK,
        )  # fmt: skip
        return cosine.astype(np.float32)

    def _arrays(self) -> dict[str, AnyArray]:
        return {
            "kept": self.kept,
            "item_item": self.item_item,
            "popularity": self.popularity,
            **{MEMBER_PREFIX + k: v for k, v in self.member._arrays().items()},
        }

    def _check_arrays(
        self, arrays: Mapping[str, AnyArray], sizes: dict[str, int], prefix: str = ""
    ) -> None:
        super()._check_arrays(arrays, sizes, prefix)
        self.member._check_arrays(arrays, sizes, prefix + MEMBER_PREFIX)

    def _set_arrays(self, arrays: dict[str, AnyArray]) -> None:
        self.member = self._new_member()
        self.member._set_ids(*self._ids())
        self.member.global_mean = self.global_mean
        n = len(MEMBER_PREFIX)
        self.member._set_arrays(
            {k[n:]: v for k, v in arrays.items() if k.startswith(MEMBER_PREFIX)}
        )
        self._set_relevance(arrays["kept"], arrays["item_item"], arrays["popularity"])
