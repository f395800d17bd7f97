"""SVD++ (Koren 2008): biased MF plus implicit feedback from *which* movies a user rated.

``stars(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)`` where
``N(u)`` is the set of movies ``u`` rated. Fitted by SGD in numba
(:func:`_kernels.svdpp_epoch`), user by user: the implicit sum ``z_u`` is formed once
per user visit, the user's ratings are visited in a random order (drawn once per fit)
with Surprise's per-rating updates of ``b_u, b_i, p_u, q_i``, and the ``y_j`` take the
summed gradient of those ratings at the end of the visit. Users are visited in blocks
whose order is drawn every epoch; from 500,000 ratings up the blocks run on every core
(Hogwild, as ``svd``). That is the
usual fast form of SVD++: the exact per-rating ``y_j`` step costs ``|N(u)| k`` per
rating, which is why Surprise's ``SVDpp`` is slow.

A visitor is folded in by forming ``z`` from the movies they rated, then a ridge solve
for ``(p, b_u)`` on the residual ``r - mu - b_i - q_i . z``. Their state's ``factors``
hold the effective vector ``p + z``, so scoring is one matrix-vector product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from movierec.data.arrays import Float32Array, Float64Array, Int64Array
from movierec.data.ratings import Ratings
from movierec.models._kernels import ByRow, SGDRates, svdpp_epoch
from movierec.models.base import UserState
from movierec.models.factor import (
    FactorModel,
    FactorParams,
    ThreadedParams,
    either,
    numba_threads,
    shuffled_within,
)
from movierec.models.files import ArraySpec
from movierec.models.foldin import ridge_with_bias
from movierec.models.params import ModelParams, param

#: users per block: blocks are shuffled each epoch (and run in parallel at scale)
BLOCK_USERS = 16


@dataclass(frozen=True)
class SVDppParams(FactorParams, ThreadedParams):
    """The typed parameters of :class:`SVDpp` (documented there)."""

    n_factors: int = param(20, strict=True)
    n_epochs: int = param(20)
    lr_all: float = param(0.007)
    reg_all: float = param(0.08)
    lr_bias: float | None = param(None)
    reg_bias: float | None = param(None)
    reg_implicit: float | None = param(0.002)
    lr_decay: float = param(1.0, strict=True)
    init_std: float = param(0.1)


class SVDpp(FactorModel):
    """SVD++ with SGD in numba.

    Parameters (defaults from ``bench/tune.py`` on a validation split of ml-100k u1.base):

    - ``n_factors``: latent dimensions ``k``.
    - ``n_epochs``: SGD passes.
    - ``lr_all`` / ``reg_all``: learning rate and L2 weight of ``p``, ``q`` (and ``y``).
    - ``lr_bias`` / ``reg_bias``: the same for ``b_u``, ``b_i`` (None: ``lr_all`` / ``reg_all``).
    - ``reg_implicit``: L2 weight of ``y`` (None: ``reg_all``).
    - ``lr_decay``: every learning rate is multiplied by this after each epoch.
    - ``init_std``: ``p``, ``q``, ``y`` start as ``normal(0, init_std)``; biases at 0.
    - ``n_threads``: as ``svd``'s (0: every core from 500,000 ratings up, else one).

    Unknown users or movies contribute nothing, as in Surprise.
    """

    name: ClassVar[str] = "svdpp"
    array_specs: ClassVar[dict[str, ArraySpec]] = {
        **FactorModel.array_specs,
        "implicit_factors": ArraySpec("float32", ("n_items", "n_factors")),  # y_j
    }
    params_type: ClassVar[type[ModelParams]] = SVDppParams
    config: SVDppParams

    # -- Recommender -------------------------------------------------------------------
    def fold_in_reg(self) -> float | None:
        """``reg_all``: a visitor's factors are folded in with ``n * reg_all``."""
        return self.config.reg_all

    def _fit(self, ratings: Ratings, progress: bool) -> None:
        rng = np.random.default_rng(self.seed)
        std = self.config.init_std
        model = self._start(
            ratings.n_users, ratings.n_items, lambda shape: rng.normal(0, std, shape)
        )
        self.implicit_factors = rng.normal(0.0, std, self.item_factors.shape).astype(np.float32)
        rated = self._rated_items()
        rows = ByRow(rated.indptr, rated.items, rated.stars)
        rating_order = shuffled_within(rated.indptr, rng).astype(np.int64)
        block_starts = np.arange(0, ratings.n_users + BLOCK_USERS, BLOCK_USERS).clip(
            max=ratings.n_users
        )
        block_starts = np.unique(block_starts).astype(np.int64)
        lr, lr_bias = self.config.lr_all, either(self.config.lr_bias, self.config.lr_all)
        reg, reg_bias = self.config.reg_all, either(self.config.reg_bias, self.config.reg_all)
        reg_implicit = either(self.config.reg_implicit, self.config.reg_all)
        decay = self.config.lr_decay
        epochs = range(self.config.n_epochs)
        bar = tqdm(epochs, desc="svdpp", unit="epoch", disable=not progress)
        with numba_threads(self._threads(ratings.nnz)):
            for _ in bar:
                block_order = rng.permutation(block_starts.size - 1)
                rates = SGDRates(lr_bias, lr_bias, lr, lr, reg_bias, reg_bias, reg, reg)
                rmse = svdpp_epoch(
                    rows, rating_order, block_starts, block_order, self.global_mean,
                    model, self.implicit_factors, rates, reg_implicit,
                )  # fmt: skip
                lr, lr_bias = lr * decay, lr_bias * decay
                bar.set_postfix(train_rmse=f"{rmse:.4f}")
        self._keep(model)

    def _implicit_sum(self, items: Int64Array) -> Float32Array:
        """``(k,)`` float32 ``|N|^-1/2 sum_{j in N} y_j`` for the rated set ``items``."""
        if items.size == 0:
            return np.zeros(self.implicit_factors.shape[1], dtype=np.float32)
        total: Float64Array = self.implicit_factors[items].sum(axis=0, dtype=np.float64)
        return (total / float(np.sqrt(items.size))).astype(np.float32)

    def _effective_user_factors(self, users: Int64Array) -> Float32Array:
        """``(len(users), k)`` float32 ``p_u + z_u`` of training users."""
        rated = self._rated_items()
        n_users = rated.indptr.size - 1
        counts = np.diff(rated.indptr).astype(np.float64)
        weights = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1.0)), np.diff(rated.indptr))
        implicit_weights = sp.csr_matrix(
            (weights, rated.items, rated.indptr), shape=(n_users, self.implicit_factors.shape[0])
        )
        implicit: Float64Array = implicit_weights[users] @ self.implicit_factors.astype(np.float64)
        return (self.user_factors[users] + implicit).astype(np.float32)

    def _fold_in(self, items: Int64Array, stars: Float32Array) -> UserState:
        """``z`` from the rated set, then ridge of ``(p, b_u)`` on ``r - mu - b_i - q_i . z``
        with penalties ``n * reg_all`` and ``n * reg_bias`` (the per-rating SGD penalties
        summed over the visitor's ``n`` ratings). ``factors`` is ``p + z``."""
        n = items.size
        implicit = self._implicit_sum(items)
        q = self.item_factors[items]
        residual = stars - self.global_mean - self.item_bias[items] - q @ implicit
        factors, bias = ridge_with_bias(
            q,
            residual,
            reg_factors=n * self.config.reg_all,
            reg_bias=n * either(self.config.reg_bias, self.config.reg_all),
        )
        effective = (factors + implicit).astype(np.float32)
        return UserState(items=items, stars=stars, factors=effective, bias=bias)

    def _factors_of_users(self, users: Int64Array) -> Float32Array:
        """``(n, k)`` float32 ``p_u + |N(u)|^-1/2 sum_j y_j``: the implicit term folded in."""
        return self._effective_user_factors(users)
