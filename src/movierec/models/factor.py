"""Shared parts of the latent-factor models (svd, nmf, als, svdpp).

They all estimate ``offset + b_u + b_i + q_i . p_u`` and keep the same fitted arrays;
only how the factors are fitted and folded in differs. Helpers here cover what their
fits share: starting factors, SGD rates, threads for the parallel kernels, and blocks
of users for Hogwild SGD.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np

from movierec.data.arrays import Float32Array, Float64Array, IndexArray, Int64Array
from movierec.models._kernels import Biased, score_items
from movierec.models.base import Recommender, UserState
from movierec.models.files import ArraySpec
from movierec.models.foldin import RatedItems
from movierec.models.params import ModelParams, param

#: fits with at least this many ratings use every core by default (``n_threads=0``);
#: smaller ones run on one, so they are reproducible from the seed alone
PARALLEL_FROM = 500_000
#: about this many ratings per Hogwild block: a few dozen users, whose factors (and the
#: block's ratings) stay in a core's cache while it works through them
BLOCK_RATINGS = 8192


@dataclass(frozen=True)
class FactorParams(ModelParams):
    """What every factor model declares: ``n_factors``, the latent dimensions ``k`` (> 0;
    each model re-declares it with its own default)."""

    n_factors: int = param(20, strict=True)


@dataclass(frozen=True)
class ThreadedParams(ModelParams):
    """``n_threads``: 0 = all cores from ``PARALLEL_FROM`` ratings up, else one; ``n`` =
    that many (more than one: results vary in the last bits)."""

    n_threads: int = param(0)


def either(value: float | None, fallback: float) -> float:
    """``value``, or ``fallback`` where it is None (``lr_bias=None``: use ``lr_all``)."""
    return fallback if value is None else value


class FactorModel(Recommender):
    """A :class:`Recommender` whose state is user factors ``p`` and bias ``b_u``.

    Fitted arrays: ``user_factors`` ``(n_users, k)``, ``item_factors`` ``(n_items, k)``,
    ``user_bias`` ``(n_users,)``, ``item_bias`` ``(n_items,)`` (float32, stars) and
    ``rated`` (what each training user rated). Subclasses set them in ``_fit``.
    """

    config: FactorParams
    user_factors: Float32Array  # (n_users, k)
    item_factors: Float32Array  # (n_items, k)
    user_bias: Float32Array  # (n_users,) stars
    item_bias: Float32Array  # (n_items,) stars

    array_specs: ClassVar[dict[str, ArraySpec]] = {
        "user_factors": ArraySpec("float32", ("n_users", "n_factors")),
        "item_factors": ArraySpec("float32", ("n_items", "n_factors")),
        "user_bias": ArraySpec("float32", ("n_users",)),
        "item_bias": ArraySpec("float32", ("n_items",)),
        **RatedItems.specs,
    }

    @property
    def _offset(self) -> float:
        """The constant term of the estimate (the global mean; 0 for unbiased NMF)."""
        return self.global_mean

    # -- fitting helpers --------------------------------------------------------------
    def _start(
        self,
        n_users: int,
        n_items: int,
        draw: Callable[[tuple[int, int]], Any],
        dtype: type[np.floating[Any]] = np.float32,
    ) -> Biased:
        """Fresh arrays: factors from ``draw(shape)`` (users first), zero biases; also
        set as the model's (so the fit fills them in place)."""
        k = self.config.n_factors
        arrays = Biased(
            user_bias=np.zeros(n_users, dtype=dtype),
            item_bias=np.zeros(n_items, dtype=dtype),
            user_factors=draw((n_users, k)).astype(dtype),
            item_factors=draw((n_items, k)).astype(dtype),
        )
        self._keep(arrays)
        return arrays

    def _keep(self, arrays: Biased) -> None:
        """Hold ``arrays`` as the fitted ones, stored float32."""
        for name, array in arrays._asdict().items():
            setattr(self, name, np.asarray(array, dtype=np.float32))

    def _threads(self, nnz: int) -> int:
        """How many threads the parallel kernels use for a fit of ``nnz`` ratings."""
        asked = self.config.n_threads if isinstance(self.config, ThreadedParams) else 1
        most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # set at import
        cores = min(most, len(os.sched_getaffinity(0)))
        if asked == 0:
            return cores if nnz >= PARALLEL_FROM else 1
        return max(1, min(asked, cores))

    # -- Recommender -------------------------------------------------------------------
    def _factors_of_users(self, users: Int64Array) -> Float32Array:
        """``(n, k)`` float32 factors of trained users (row indices) used in estimates."""
        return self.user_factors[users]

    def _user_factors(self, user: int) -> Float32Array:
        factors: Float32Array = self._factors_of_users(np.array([user], dtype=np.int64))[0]
        return factors

    def _predict(self, users: Int64Array, items: Int64Array) -> Float64Array:
        """Estimates for index pairs; an unknown user or movie adds no bias and no factors."""
        known_u, known_i = users >= 0, items >= 0
        both = known_u & known_i
        est = np.full(users.shape, self.global_mean, dtype=np.float64)
        est[known_u] += self.user_bias[users[known_u]]
        est[known_i] += self.item_bias[items[known_i]]
        distinct, inverse = np.unique(users[both], return_inverse=True)
        p = self._factors_of_users(distinct)[inverse]
        q = self.item_factors[items[both]]
        # the constant is the global mean only where both are known (0 for unbiased NMF)
        est[both] += (self._offset - self.global_mean) + np.einsum(
            "nk,nk->n", p, q, dtype=np.float64
        )
        return est

    def _score(self, state: UserState) -> Float32Array:
        """``(n_items,)`` float32: ``offset + b_u + b_i + Q p``; unclipped.

        A numba loop rather than ``item_factors @ p``: the matrix-vector product wakes
        OpenBLAS's thread pool, which stalls for tens of ms on a busy machine.
        """
        return self._score_rows(state, self.item_factors, self.item_bias)

    def _score_rows(
        self, state: UserState, item_factors: Float32Array, item_bias: Float32Array
    ) -> Float32Array:
        """``(n,)`` float32 ``_score`` for the ``n`` items whose C-ordered factors ``(n, k)``
        and biases ``(n,)`` are given: the same kernel, so bit for bit ``_score``'s values
        of those items (``ease`` scores its kept movies from a copy of their rows)."""
        factors = np.ascontiguousarray(state.factors, dtype=np.float32)
        offset = self._offset + state.bias
        return score_items(item_factors, item_bias, offset, factors, -np.inf, np.inf)

    def rank_users(self, states: Sequence[UserState]) -> Float32Array:
        """``(len(states), n_items)`` float32 ``offset + b_u + b_i + P Q'``: one matrix
        product (float32 throughout) for many users; rows equal ``rank``'s."""
        self._check_fitted()
        overridden = type(self)._rank is not Recommender._rank
        if overridden or type(self)._score is not FactorModel._score or not len(states):
            return super().rank_users(states)
        factors = np.stack([np.asarray(s.factors, dtype=np.float32) for s in states])
        out = factors @ self.item_factors.T  # (n, n_items) float32
        out += self.item_bias[None, :]
        out += np.array([self._offset + s.bias for s in states], dtype=np.float32)[:, None]
        return out

    def rank_at(self, states: Sequence[UserState], items: IndexArray) -> Float64Array:
        """``(len(states), items.size)`` float64 ``offset + b_u + b_i + q_i . p``, unclipped,
        at ``items`` only (``Recommender.rank_at``), where the model ranks by that estimate."""
        self._check_fitted()
        overridden = type(self)._rank is not Recommender._rank
        if overridden or type(self)._score is not FactorModel._score or not len(states):
            return super().rank_at(states, items)
        columns = np.asarray(items, dtype=np.int64)
        factors = np.stack([np.asarray(s.factors, dtype=np.float64) for s in states])
        out = factors @ self.item_factors[columns].astype(np.float64).T
        out += self.item_bias[columns].astype(np.float64)[None, :]
        out += np.array([self._offset + s.bias for s in states], dtype=np.float64)[:, None]
        return out

    def item_vectors(self) -> Float32Array:
        """``(n_items, k)`` float32 item factors ``q_i``."""
        self._check_fitted()
        return self.item_factors


@contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """Run the block with numba's parallel loops on ``n`` threads (this thread only)."""
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def user_blocks(indptr: Int64Array, target: int = BLOCK_RATINGS) -> Int64Array:
    """``(n_blocks + 1,)`` int64 user boundaries cutting CSR rows into runs of about
    ``target`` ratings (a block never splits a user)."""
    nnz = int(indptr[-1])
    cuts = np.searchsorted(indptr, np.arange(0, nnz, max(target, 1)), side="left")
    return np.unique(np.concatenate([cuts, [indptr.size - 1]])).astype(np.int64)


def shuffled_within(starts: Int64Array, rng: np.random.Generator) -> IndexArray:
    """``(starts[-1],)`` a permutation of ``0..n`` that shuffles only within each run
    ``starts[b]:starts[b + 1]`` (int32 where that fits)."""
    n = int(starts[-1])
    run = np.repeat(np.arange(starts.size - 1), np.diff(starts))
    order = np.lexsort((rng.random(n, dtype=np.float32), run))
    return order.astype(np.int32) if n < 2**31 else order
