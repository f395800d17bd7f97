"""Item-based k-nearest neighbours on top of baselines, as Surprise's ``KNNBaseline``.

``stars(u, i) = b_ui + sum_j s_ij (r_uj - b_uj) / sum_j s_ij`` over the ``k`` movies
``j`` the user rated that are most similar to ``i`` (positive similarities only), where
``b_ui = mu + b_u + b_i`` are baselines fitted by alternating least squares (Surprise's
``bsl_options={"method": "als"}``) and ``s_ij`` is the shrunk Pearson-baseline similarity

``s_ij = sum_u e_ui e_uj / sqrt(sum_u e_ui^2 sum_u e_uj^2) * (n_ij - 1) / (n_ij - 1 + shrinkage)``

with ``e_ui = r_ui - b_ui`` and sums over the ``n_ij`` users who rated both.

Each movie keeps its ``max_neighbors`` most similar movies (positive similarities,
best first) in a CSR table, so a prediction walks that list and stops at the ``k``-th
movie the user rated. With ``max_neighbors`` at least the number of movies this is
exactly ``KNNBaseline``; fewer trades a little accuracy for memory on big catalogues.

A visitor is folded in by their baseline bias against the fixed item biases (the user
half of the baseline ALS); their ratings then are the neighbourhood.

**Scale: sparse neighbours.** The similarities are never held as a dense item x item
matrix (62k movies would need 15 GB in float32): each movie's co-rating sums live in
per-thread scratch arrays of length ``n_items`` while that movie is worked on, and only
its ``max_neighbors`` best neighbours are kept, so the table grows with
``n_items * max_neighbors`` (248 MB at 62k movies and 500 neighbours) and the work with
``sum_u n_u^2``, never with ``n_items^2``. Unlike EASE, which needs an inverse and so a
dense matrix over a chosen item set, a neighbourhood is local: each movie's list is
computed on its own, every movie gets one, and the prediction only ever reads the
first ``k`` of a list, so nothing is gained by a denser table. The fit is sized before
anything big is allocated (:func:`fit_bytes`: the largest of its phases, counting the
per-rating arrays of the baselines and the residual CSR/CSC copies, the neighbour
table while it is compacted, and each thread's scratch) and a fit that would need
more than ``memory_budget_gb`` raises :class:`~movierec.errors.ModelError` naming the
bytes needed and the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from movierec.data.arrays import Float32Array, Float64Array, Int32Array, Int64Array
from movierec.data.ratings import Ratings
from movierec.errors import ModelError
from movierec.models.base import Recommender, UserState
from movierec.models.baselines import (
    ALS_BASELINE_BYTES_PER_RATING,
    als_baselines,
    rows_of,
    user_baseline_bias,
)
from movierec.models.files import ArraySpec
from movierec.models.foldin import RatedItems
from movierec.models.params import ModelParams, param

GB = 1024**3
#: per rating while the residuals are built: row numbers (int32), the baseline being
#: summed and one gathered bias (float64 each)
RESIDUAL_BUILD_BYTES_PER_RATING = 4 + 8 + 8
#: per rating while the similarities are computed: the residuals by user (float64; the
#: item indices are the ratings' own) and by item (float64 + int32)
KERNEL_BYTES_PER_RATING = 8 + 8 + 4
#: per neighbour slot (``n_items * max_neighbors``): the table's int32 item and float32
#: similarity, then while it is compacted the keep-mask (bool) and the compact copy
TABLE_BYTES_PER_SLOT = 4 + 4
COMPACT_BYTES_PER_SLOT = TABLE_BYTES_PER_SLOT + 1 + 4 + 4
#: per item and thread in the kernel: co-rating count and touched list (int64), three
#: running sums (float64), and one item's sorted candidates, similarities and order
SCRATCH_BYTES_PER_ITEM = 2 * 8 + 3 * 8 + 3 * 8
#: per user and per item: biases, counts, sums and index pointers (float64 / int64)
BYTES_PER_USER = BYTES_PER_ITEM = 6 * 8


def fit_bytes(n_users: int, n_items: int, n_ratings: int, max_neighbors: int, threads: int) -> int:
    """Bytes an ``itemknn`` fit holds at its peak besides the ratings themselves.

    The largest of its phases: the baseline ALS (``ALS_BASELINE_BYTES_PER_RATING``),
    building the residuals, the similarity kernel (residuals by user and by item, the
    ``(n_items, max_neighbors)`` table, ``threads`` scratch sets) and compacting the
    table (the residuals by user, the table, its mask and the compact copy).
    """
    slots = n_items * min(max_neighbors, max(n_items - 1, 0))
    phases = (
        ALS_BASELINE_BYTES_PER_RATING * n_ratings,
        RESIDUAL_BUILD_BYTES_PER_RATING * n_ratings,
        KERNEL_BYTES_PER_RATING * n_ratings
        + TABLE_BYTES_PER_SLOT * slots
        + threads * SCRATCH_BYTES_PER_ITEM * n_items,
        8 * n_ratings + COMPACT_BYTES_PER_SLOT * slots,
    )
    return max(phases) + BYTES_PER_USER * n_users + BYTES_PER_ITEM * n_items


def residual_matrix(
    ratings: Ratings, mean: float, user_bias: Float64Array, item_bias: Float64Array
) -> sp.csr_matrix:
    """``(n_users, n_items)`` float64 CSR of ``e_ui = r_ui - (mu + b_u + b_i)``, sharing the
    ratings' index arrays (copied only if unsorted, as the kernel sorts them in place)."""
    matrix = ratings.matrix
    base = user_bias[rows_of(matrix.indptr)]  # (nnz,) float64
    base += mean
    base += item_bias[matrix.indices]
    np.subtract(matrix.data, base, out=base)  # float32 stars - float64 baseline
    indices = matrix.indices if matrix.has_sorted_indices else matrix.indices.copy()
    return sp.csr_matrix((base, indices, matrix.indptr), shape=matrix.shape, copy=False)


# -- similarities ------------------------------------------------------------------------
def pearson_baseline_neighbours(
    residuals: sp.csr_matrix,
    shrinkage: float,
    min_support: int,
    max_neighbors: int,
) -> tuple[Int64Array, Int32Array, Float32Array]:
    """Each item's most similar items by shrunk Pearson-baseline similarity.

    residuals: ``(n_users, n_items)`` CSR of ``e_ui = r_ui - b_ui`` (stored where rated).
    min_support: pairs rated by fewer common users get similarity 0.
    Returns CSR parts ``(indptr (n_items + 1,) int64, items int32, sims float32)``:
    row ``i`` lists up to ``max_neighbors`` items ``j != i`` with ``s_ij > 0``,
    highest similarity first (ties: lower index first).

    Work is ``sum_u n_u^2`` (every pair of ratings of each user), never ``n_items^2``.
    """
    by_user = residuals
    if not (sp.isspmatrix_csr(residuals) and residuals.dtype == np.float64):
        by_user = sp.csr_matrix(residuals, dtype=np.float64)
    by_user.sort_indices()
    by_item = by_user.tocsc()
    by_item.sort_indices()
    n_items = by_user.shape[1]
    keep = min(int(max_neighbors), max(n_items - 1, 0))
    counts, items, sims = _neighbour_table(
        by_user.indptr.astype(np.int64), np.asarray(by_user.indices, np.int32), by_user.data,
        by_item.indptr.astype(np.int64), np.asarray(by_item.indices, np.int32), by_item.data,
        float(shrinkage), max(int(min_support), 1), keep,
    )  # fmt: skip
    del by_item
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(counts)
    have = np.arange(keep)[None, :] < counts[:, None]
    return indptr, items[have], sims[have]


@njit(cache=True, parallel=True, nogil=True)
def _neighbour_table(
    user_indptr: Int64Array,
    user_items: Int32Array,
    user_residuals: Float64Array,
    item_indptr: Int64Array,
    item_users: Int32Array,
    item_residuals: Float64Array,
    shrinkage: float,
    min_support: int,
    keep: int,
) -> tuple[Int64Array, Int32Array, Float32Array]:
    """``(counts (n_items,), items (n_items, keep) int32, sims (n_items, keep) float32)``:
    row ``i`` holds its ``counts[i]`` best neighbours first. Both CSR/CSC inputs hold the
    residuals, indices sorted. For each item, walk its raters' other ratings and
    accumulate the co-rating sums in dense scratch arrays (Surprise's loop, per item).
    """
    n_items = item_indptr.shape[0] - 1
    counts = np.zeros(n_items, dtype=np.int64)
    table_items = np.zeros((n_items, keep), dtype=np.int32)
    table_sims = np.zeros((n_items, keep), dtype=np.float32)
    n_chunks = min(n_items, 256)
    for chunk in prange(n_chunks):
        freq = np.zeros(n_items, dtype=np.int64)
        prods = np.zeros(n_items)
        sq_here = np.zeros(n_items)
        sq_there = np.zeros(n_items)
        touched = np.empty(n_items, dtype=np.int64)
        for i in range(chunk, n_items, n_chunks):
            n_touched = 0
            for p in range(item_indptr[i], item_indptr[i + 1]):
                u = item_users[p]
                e_i = item_residuals[p]
                for q in range(user_indptr[u], user_indptr[u + 1]):
                    j = user_items[q]
                    if j == i:
                        continue
                    e_j = user_residuals[q]
                    if freq[j] == 0:
                        touched[n_touched] = j
                        n_touched += 1
                    freq[j] += 1
                    prods[j] += e_i * e_j
                    sq_here[j] += e_i * e_i
                    sq_there[j] += e_j * e_j
            candidates = np.sort(touched[:n_touched])  # ascending: ties keep lower index
            sims = np.zeros(n_touched)
            for t in range(n_touched):
                j = candidates[t]
                support = freq[j]
                denom = np.sqrt(sq_here[j] * sq_there[j])
                if support >= min_support and denom > 0.0:
                    sims[t] = prods[j] / denom * (support - 1) / (support - 1 + shrinkage)
                freq[j] = 0
                prods[j] = 0.0
                sq_here[j] = 0.0
                sq_there[j] = 0.0
            order = np.argsort(-sims, kind="mergesort")
            n_kept = 0
            for t in order[:keep]:
                if sims[t] <= 0.0:
                    break
                table_items[i, n_kept] = candidates[t]
                table_sims[i, n_kept] = sims[t]
                n_kept += 1
            counts[i] = n_kept
    return counts, table_items, table_sims


# -- prediction --------------------------------------------------------------------------
@njit(cache=True, parallel=True, nogil=True)
def neighbourhood_offsets(
    rated_indptr: Int64Array,
    rated_items: Int32Array,
    rated_residuals: Float32Array,
    target_indptr: Int64Array,
    target_items: Int32Array,
    nb_indptr: Int64Array,
    nb_items: Int32Array,
    nb_sims: Float32Array,
    n_items: int,
    k: int,
    min_k: int,
) -> Float64Array:
    """The neighbourhood term ``sum s (r - b) / sum s`` for many (user, item) queries.

    Users are rows of two CSR tables: what each rated (``rated_items`` int32 with
    residuals ``r - b_uj`` float32) and the items to estimate (``target_items``).
    nb_*: the item-neighbour table, rows sorted by similarity, best first.
    Returns ``(len(target_items),)`` float64 offsets in stars, 0 where fewer than
    ``min_k`` neighbours were rated.
    """
    out = np.zeros(target_items.shape[0])
    for user in prange(rated_indptr.shape[0] - 1):
        residual = np.full(n_items, np.nan, dtype=np.float32)
        for p in range(rated_indptr[user], rated_indptr[user + 1]):
            residual[rated_items[p]] = rated_residuals[p]
        for t in range(target_indptr[user], target_indptr[user + 1]):
            i = target_items[t]
            sum_sim = 0.0
            sum_dev = 0.0
            used = 0
            for p in range(nb_indptr[i], nb_indptr[i + 1]):
                dev = residual[nb_items[p]]
                if not np.isnan(dev):
                    sum_sim += nb_sims[p]
                    sum_dev += nb_sims[p] * dev
                    used += 1
                    if used == k:
                        break
            if used >= min_k and used > 0 and sum_sim > 0.0:
                out[t] = sum_dev / sum_sim
    return out


@njit(cache=True, nogil=True)
def visitor_offsets(
    rated_items: Int32Array,
    rated_residuals: Float32Array,
    rev_indptr: Int64Array,
    rev_targets: Int32Array,
    rev_sims: Float32Array,
    nb_indptr: Int64Array,
    nb_items: Int32Array,
    nb_sims: Float32Array,
    k: int,
    min_k: int,
) -> Float64Array:
    """``neighbourhood_offsets`` of one user for every item, pushed from what they rated.

    rev_*: the neighbour table transposed (row ``j``: the items ``i`` whose list holds
    ``j``, with ``s_ij``). Each rated movie adds its ``s_ij (r - b)`` to the items that
    list it: work is the rated movies' in-degrees (a few hundred thousand) instead of
    walking all ``n_items`` lists (tens of millions at 59k movies). An item with more
    than ``k`` rated neighbours needs the ``k`` most similar: its list is walked as
    ``neighbourhood_offsets`` does. Returns ``(n_items,)`` float64.
    """
    n_items = nb_indptr.shape[0] - 1
    sum_sim = np.zeros(n_items)
    sum_dev = np.zeros(n_items)
    count = np.zeros(n_items, dtype=np.int64)
    for t in range(rated_items.shape[0]):
        j = rated_items[t]
        dev = rated_residuals[t]
        for p in range(rev_indptr[j], rev_indptr[j + 1]):
            i = rev_targets[p]
            sum_sim[i] += rev_sims[p]
            sum_dev[i] += rev_sims[p] * dev
            count[i] += 1
    residual = np.full(n_items, np.nan, dtype=np.float32)
    for t in range(rated_items.shape[0]):
        residual[rated_items[t]] = rated_residuals[t]
    out = np.zeros(n_items)
    for i in range(n_items):
        if count[i] > k:  # only the k most similar count: walk the list, best first
            sum_sim[i] = 0.0
            sum_dev[i] = 0.0
            used = 0
            for p in range(nb_indptr[i], nb_indptr[i + 1]):
                dev = residual[nb_items[p]]
                if not np.isnan(dev):
                    sum_sim[i] += nb_sims[p]
                    sum_dev[i] += nb_sims[p] * dev
                    used += 1
                    if used == k:
                        break
            count[i] = used
        if count[i] >= min_k and count[i] > 0 and sum_sim[i] > 0.0:
            out[i] = sum_dev[i] / sum_sim[i]
    return out


@dataclass(frozen=True)
class ItemKNNParams(ModelParams):
    """The typed parameters of :class:`ItemKNN` (documented there)."""

    k: int = param(40, strict=True)
    min_k: int = param(5)
    shrinkage: float = param(400.0)
    min_support: int = param(1)
    max_neighbors: int = param(500, strict=True)
    reg_user: float = param(15.0)
    reg_item: float = param(2.0)
    bias_epochs: int = param(10)
    memory_budget_gb: float = param(6.0, strict=True)


class ItemKNN(Recommender):
    """Item-item kNN with baselines and shrunk Pearson-baseline similarity.

    Parameters (Surprise's names where they exist; defaults from ``bench/tune.py`` on a
    validation split of ml-100k u1.base):

    - ``k``: most neighbours used per estimate; ``min_k``: fewer rated neighbours than
      this and the estimate is the baseline alone.
    - ``shrinkage``: similarity shrinkage, in common raters.
    - ``min_support``: fewer common raters and the similarity is 0.
    - ``max_neighbors``: neighbours stored per movie (see the module notes).
    - ``reg_user`` / ``reg_item`` / ``bias_epochs``: the baseline ALS.
    - ``memory_budget_gb``: most memory (GiB) the fit may hold besides the ratings
      (:func:`fit_bytes`); a fit that needs more is refused before it starts.
    """

    name: ClassVar[str] = "itemknn"
    array_specs: ClassVar[dict[str, ArraySpec]] = {
        "user_bias": ArraySpec("float32", ("n_users",)),
        "item_bias": ArraySpec("float32", ("n_items",)),
        "nb_indptr": ArraySpec("int64", ("n_items+1",)),
        "nb_items": ArraySpec("int32", ("n_neighbours",)),
        "nb_sims": ArraySpec("float32", ("n_neighbours",)),
        **RatedItems.specs,
    }
    params_type: ClassVar[type[ModelParams]] = ItemKNNParams
    config: ItemKNNParams

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        self.nb_indptr = np.zeros(1, dtype=np.int64)  # (n_items + 1,) CSR of neighbours
        #: ``(nb_items it was built from, _reverse_table())``, built on first use
        self._reverse: tuple[Int32Array, tuple[Int64Array, Int32Array, Float32Array]] | None = None

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        self._check_budget(ratings)
        user_bias, item_bias = als_baselines(
            ratings,
            reg_user=self.config.reg_user,
            reg_item=self.config.reg_item,
            n_epochs=self.config.bias_epochs,
        )
        residuals = residual_matrix(ratings, self.global_mean, user_bias, item_bias)
        self.nb_indptr, self.nb_items, self.nb_sims = pearson_baseline_neighbours(
            residuals,
            shrinkage=self.config.shrinkage,
            min_support=self.config.min_support,
            max_neighbors=self.config.max_neighbors,
        )
        self.user_bias = user_bias.astype(np.float32)
        self.item_bias = item_bias.astype(np.float32)

    def _check_budget(self, ratings: Ratings) -> None:
        """``ModelError`` naming the bytes needed if the fit would exceed the budget."""
        need = fit_bytes(
            ratings.n_users, ratings.n_items, ratings.nnz, self.config.max_neighbors,
            numba.get_num_threads(),
        )  # fmt: skip
        budget = self.config.memory_budget_gb
        if need > budget * GB:
            raise ModelError(
                f"itemknn needs {need / GB:.2f} GB ({need:,} bytes) to fit {ratings.nnz:,} "
                f"ratings of {ratings.n_items:,} movies with max_neighbors="
                f"{self.config.max_neighbors}, over memory_budget_gb={budget:g}; lower "
                "max_neighbors or raise memory_budget_gb"
            )

    def _baseline(self, users: Int64Array, items: Int64Array) -> Float64Array:
        est = np.full(users.shape, self.global_mean, dtype=np.float64)
        known_u, known_i = users >= 0, items >= 0
        est[known_u] += self.user_bias[users[known_u]]
        est[known_i] += self.item_bias[items[known_i]]
        return est

    def _offsets(
        self,
        rated: tuple[Int64Array, Int32Array, Float32Array],
        targets: tuple[Int64Array, Int32Array],
    ) -> Float64Array:
        return neighbourhood_offsets(
            *rated, *targets, self.nb_indptr, self.nb_items, self.nb_sims,
            self.n_items, self.config.k, self.config.min_k,
        )  # fmt: skip

    def _predict(self, users: Int64Array, items: Int64Array) -> Float64Array:
        est = self._baseline(users, items)
        both = np.flatnonzero((users >= 0) & (items >= 0))
        if both.size == 0:
            return est
        distinct, inverse = np.unique(users[both], return_inverse=True)
        order = np.argsort(inverse, kind="stable")  # queries grouped by user
        target_indptr = np.zeros(distinct.size + 1, dtype=np.int64)
        target_indptr[1:] = np.cumsum(np.bincount(inverse, minlength=distinct.size))
        rated = self._rated_residuals(distinct)
        offsets = self._offsets(rated, (target_indptr, items[both][order].astype(np.int32)))
        est[both[order]] += offsets
        return est

    def _rated_residuals(self, users: Int64Array) -> tuple[Int64Array, Int32Array, Float32Array]:
        """CSR (indptr, items, ``r - b_uj``) of the training ratings of ``users``."""
        rated = self._rated_items()
        counts = np.diff(rated.indptr)[users]
        indptr = np.zeros(users.size + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(counts)
        take = np.concatenate(
            [np.arange(rated.indptr[u], rated.indptr[u + 1]) for u in users]
        ) if users.size else np.zeros(0, np.int64)  # fmt: skip
        items = rated.items[take]
        owner = np.repeat(users, counts)
        residual = rated.stars[take] - (
            self.global_mean + self.user_bias[owner] + self.item_bias[items]
        )
        return indptr, items, residual.astype(np.float32)

    def _fold_in(self, items: Int64Array, stars: Float32Array) -> UserState:
        """The visitor's baseline bias ``sum (r - mu - b_i) / (reg_user + n)``."""
        bias = user_baseline_bias(
            stars - self.global_mean - self.item_bias[items], self.config.reg_user
        )
        return UserState(items=items, stars=stars, factors=None, bias=bias)

    def _score(self, state: UserState) -> Float32Array:
        """``(n_items,)`` float32: ``mu + b_u + b_i`` plus each movie's neighbourhood term
        over the state's ratings; unclipped."""
        items = np.asarray(state.items, dtype=np.int32)
        residual = np.asarray(state.stars, dtype=np.float64) - (
            self.global_mean + state.bias + self.item_bias[items]
        )
        rated = (np.array([0, items.size], dtype=np.int64), items, residual.astype(np.float32))
        distinct = np.unique(items).size == items.size  # (a state's items are distinct)
        if distinct:
            offsets = visitor_offsets(
                items, rated[2], *self._reverse_table(), self.nb_indptr, self.nb_items,
                self.nb_sims, self.config.k, self.config.min_k,
            )  # fmt: skip
        else:
            targets = (
                np.array([0, self.n_items], dtype=np.int64),
                np.arange(self.n_items, dtype=np.int32),
            )
            offsets = self._offsets(rated, targets)
        scores = self.global_mean + state.bias + self.item_bias + offsets
        return scores.astype(np.float32)

    def _reverse_table(self) -> tuple[Int64Array, Int32Array, Float32Array]:
        """The neighbour table transposed, CSR ``(indptr, targets int32, sims float32)``:
        row ``j`` lists the items whose neighbour list holds ``j``. Built on first use."""
        cached = self._reverse
        if cached is not None and cached[0] is self.nb_items:
            return cached[1]
        owners = np.repeat(
            np.arange(self.n_items, dtype=np.int32), np.diff(self.nb_indptr).astype(np.int64)
        )
        order = np.argsort(self.nb_items, kind="stable")
        indptr = np.zeros(self.n_items + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(np.bincount(self.nb_items, minlength=self.n_items))
        table = (indptr, owners[order], np.ascontiguousarray(self.nb_sims[order]))
        self._reverse = (self.nb_items, table)
        return table
