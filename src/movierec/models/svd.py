"""Biased matrix factorisation trained by SGD, as Surprise's ``SVD``.

``stars(u, i) = mu + b_u + b_i + p_u . q_i``, fitted by stochastic gradient descent
(Surprise's update, :func:`_kernels.svd_epoch`). The ratings are cut into blocks of
about 8,000 (whole users), shuffled within each block once per fit; every epoch visits
the blocks in a fresh random order, on every core at once from 500,000 ratings up
(Hogwild: threads share the movie factors without locks), so an epoch costs neither a
full permutation nor a cache miss on the user side per rating. A new visitor is folded
in by ridge least squares against the fixed item parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from tqdm.auto import tqdm

from movierec.data.arrays import Float32Array, Int64Array
from movierec.data.ratings import Ratings
from movierec.models._kernels import SGDRates, Triples, svd_epoch_blocks
from movierec.models.base import GenreWeightParams, UserState
from movierec.models.factor import (
    FactorModel,
    FactorParams,
    ThreadedParams,
    either,
    numba_threads,
    shuffled_within,
    user_blocks,
)
from movierec.models.foldin import ridge_with_bias, ridge_with_bias_leave_one_out
from movierec.models.params import ModelParams, param


@dataclass(frozen=True)
class SVDMemberParams(FactorParams):
    """The parameters of an SVD fit, also those of ``ease``'s SVD member."""

    n_factors: int = param(100, strict=True)
    n_epochs: int = param(60)
    lr_all: float = param(0.005)
    reg_all: float = param(0.08)


@dataclass(frozen=True)
class SVDParams(SVDMemberParams, ThreadedParams, GenreWeightParams):
    """The typed parameters of :class:`SVD` (documented there)."""

    lr_bias: float | None = param(None)
    reg_bias: float | None = param(None)
    init_std: float = param(0.05)


class SVD(FactorModel):
    """Biased MF (Funk SVD) with SGD; Surprise's update rule, numba speed.

    Parameters (defaults chosen by ``bench/tune.py search`` on a validation split of
    ml-100k's u1.base, never the test folds; see ``bench/README.md``):

    - ``n_factors``: latent dimensions ``k``.
    - ``n_epochs``: SGD passes over the ratings.
    - ``lr_all`` / ``reg_all``: learning rate and L2 weight of every term.
    - ``lr_bias`` / ``reg_bias``: override those two for ``b_u`` and ``b_i`` (None: same).
    - ``init_std``: factors start as ``normal(0, init_std)``; biases start at 0.
    - ``n_threads``: 0 = every core from 500,000 ratings up and one below (reproducible
      from the seed); ``n`` = that many (more than one: results vary in the last bits).
    - ``genre_weight``: how strongly picks follow the visitor's genre mix
      (:mod:`movierec.rerank`; 0: off).

    Unknown users or movies contribute nothing (``b = 0``, ``p = 0``), as in Surprise.
    """

    name: ClassVar[str] = "svd"
    params_type: ClassVar[type[ModelParams]] = SVDParams
    config: SVDParams

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
        lr, reg = self.config.lr_all, self.config.reg_all
        lr_b = either(self.config.lr_bias, self.config.lr_all)
        reg_b = either(self.config.reg_bias, self.config.reg_all)
        rates = SGDRates(lr_b, lr_b, lr, lr, reg_b, reg_b, reg, reg)
        triples = Triples(*ratings.triples())  # user-major
        indptr = self._rated_items().indptr
        block_users = user_blocks(indptr)
        block_starts = indptr[block_users]
        order = shuffled_within(block_starts, rng)
        epochs = range(self.config.n_epochs)
        bar = tqdm(epochs, desc="svd", unit="epoch", disable=not progress)
        with numba_threads(self._threads(ratings.nnz)):
            for _ in bar:
                block_order = rng.permutation(block_starts.size - 1)
                rmse = svd_epoch_blocks(
                    triples, order, block_starts, block_order, self.global_mean, model, rates
                )
                bar.set_postfix(train_rmse=f"{rmse:.4f}")
        self._keep(model)

    def _fold_in(self, items: Int64Array, stars: Float32Array) -> UserState:
        """Ridge solve of ``(p, b_u)`` on ``r - mu - b_i`` with design ``[q_i, 1]``.

        The penalty is ``n * reg`` (``n`` = ratings given): per-rating SGD regularisation
        adds ``reg |p|^2`` once per rating, so that is the objective training minimised
        for a user with ``n`` ratings.
        """
        n = items.size
        residual = stars - self.global_mean - self.item_bias[items]
        factors, bias = ridge_with_bias(
            self.item_factors[items],
            residual,
            reg_factors=n * self.config.reg_all,
            reg_bias=n * either(self.config.reg_bias, self.config.reg_all),
        )
        return UserState(items=items, stars=stars, factors=factors.astype(np.float32), bias=bias)

    def _fold_in_without_each(
        self, items: Int64Array, stars: Float32Array, only: Int64Array
    ) -> list[UserState]:
        """The leave-one-out fold-ins at ``only`` from one solve (penalties for ``n - 1``
        ratings; ``O(n k^2)``, so thousands of ratings are fine)."""
        n = items.size
        residual = stars - self.global_mean - self.item_bias[items]
        factors, biases = ridge_with_bias_leave_one_out(
            self.item_factors[items],
            residual,
            reg_factors=(n - 1) * self.config.reg_all,
            reg_bias=(n - 1) * either(self.config.reg_bias, self.config.reg_all),
        )
        return [
            UserState(
                items=np.delete(items, i),
                stars=np.delete(stars, i),
                factors=factors[i].astype(np.float32),
                bias=float(biases[i]),
            )
            for i in only
        ]
