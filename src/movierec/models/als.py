"""Biased explicit matrix factorisation fitted by alternating least squares (ALS-WR).

``stars(u, i) = mu + b_u + b_i + p_u . q_i``. Each half-step holds one side fixed and
solves every row of the other side in closed form (a ridge regression on the design
``[q_i, 1]``), in parallel over rows. As in Spark MLlib's ALS ("weighted-lambda
regularisation", Zhou et al. 2008) the factor penalty grows with the row's rating
count, ``n_u * reg``; the bias penalty is a fixed ``reg_bias`` (a prior worth
``reg_bias`` ratings at zero, as Surprise's baseline ALS).

Each half-step runs a few conjugate-gradient steps per row (``cg_steps``), warm-started
from the previous iteration's answer, without ever forming the ``(k+1)^2`` system
(:func:`_kernels.als_cg_side`, as implicit's CPU ALS); the first item half-step and the
last user half-step are solved exactly (:func:`_kernels.als_exact_side`, Cholesky), so
the start is not a cold guess and the trained user state is exactly what folding in
their own ratings gives. ``cg_steps=0`` solves every half-step exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from tqdm.auto import tqdm

from movierec.data.arrays import Float32Array, FloatArray, IndexArray, Int64Array
from movierec.data.ratings import Ratings
from movierec.models._kernels import ByRow, als_cg_side, als_exact_side
from movierec.models.base import UserState
from movierec.models.factor import FactorModel, FactorParams
from movierec.models.foldin import ridge_with_bias
from movierec.models.params import ModelParams, param


def solve_side(
    indptr: Int64Array, indices: IndexArray, stars: Float32Array, global_mean: float,
    other_factors: FloatArray, other_bias: FloatArray, reg: float, reg_bias: float,
    factors_out: FloatArray, bias_out: FloatArray,
) -> None:  # fmt: skip
    """One exact ALS half-step over CSR rows ``(indptr, indices, stars)``, in place:
    :func:`_kernels.als_exact_side` (kept with its old positional signature for callers
    such as the Spark engine's closing user step)."""
    als_exact_side(ByRow(indptr, indices, stars), global_mean, other_factors, other_bias,
                   reg, reg_bias, factors_out, bias_out)  # fmt: skip


@dataclass(frozen=True)
class ALSParams(FactorParams):
    """The typed parameters of :class:`ALS` (documented there)."""

    n_factors: int = param(50, strict=True)
    n_epochs: int = param(15)
    reg: float = param(0.15, strict=True)  # > 0 keeps every solve well posed
    reg_bias: float = param(2.0)
    init_std: float = param(0.1)
    cg_steps: int = param(3)


class ALS(FactorModel):
    """Biased explicit ALS with count-scaled regularisation.

    Parameters (defaults from ``bench/tune.py`` on a validation split of ml-100k u1.base):

    - ``n_factors``: latent dimensions ``k``.
    - ``n_epochs``: alternations (items then users).
    - ``reg``: factor penalty per rating (``n * reg`` for a row with ``n`` ratings), > 0.
    - ``reg_bias``: bias penalty, in pseudo-ratings.
    - ``init_std``: user factors start as ``normal(0, init_std)``.
    - ``cg_steps``: conjugate-gradient steps per row and half-step (0: exact solves).

    Unknown users or movies contribute nothing (``b = 0``, ``p = 0``).
    """

    name: ClassVar[str] = "als"
    params_type: ClassVar[type[ModelParams]] = ALSParams
    config: ALSParams

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        rng = np.random.default_rng(self.seed)
        k = self.config.n_factors
        steps = self.config.cg_steps
        by_user = ratings.matrix
        by_item = by_user.tocsc()  # column-major = CSR of the transpose
        user_rows = ByRow(by_user.indptr.astype(np.int64), by_user.indices, by_user.data)
        item_rows = ByRow(by_item.indptr.astype(np.int64), by_item.indices, by_item.data)
        # float32 throughout, as saved: the half-steps are bound by random reads of the
        # other side's factors, so half the bytes is most of the speed (the per-row
        # solves still accumulate their dot products in float64)
        init_std = self.config.init_std
        user_factors = rng.normal(0.0, init_std, (ratings.n_users, k)).astype(np.float32)
        user_bias = np.zeros(ratings.n_users, dtype=np.float32)
        item_factors = np.zeros((ratings.n_items, k), dtype=np.float32)
        item_bias = np.zeros(ratings.n_items, dtype=np.float32)
        mu = self.global_mean
        n_epochs = self.config.n_epochs
        for epoch in tqdm(range(n_epochs), desc="als", unit="epoch", disable=not progress):
            exact_items = steps == 0 or epoch == 0
            exact_users = steps == 0 or epoch == n_epochs - 1
            self._half_step(item_rows, mu, user_factors, user_bias, item_factors, item_bias,
                            exact_items)  # fmt: skip
            self._half_step(user_rows, mu, item_factors, item_bias, user_factors, user_bias,
                            exact_users)  # fmt: skip
        self.user_factors, self.item_factors = user_factors, item_factors
        self.user_bias, self.item_bias = user_bias, item_bias

    def _half_step(
        self, rows: ByRow, mu: float, other: Float32Array, other_bias: Float32Array,
        out: Float32Array, out_bias: Float32Array, exact: bool,
    ) -> None:  # fmt: skip
        """Solve every row of ``rows`` for ``(out, out_bias)`` against the fixed other side."""
        reg, reg_bias = self.config.reg, self.config.reg_bias
        if exact:
            als_exact_side(rows, mu, other, other_bias, reg, reg_bias, out, out_bias)
        else:
            als_cg_side(rows, mu, other, other_bias, reg, reg_bias, out, out_bias,
                        self.config.cg_steps)  # fmt: skip

    def _fold_in(self, items: Int64Array, stars: Float32Array) -> UserState:
        """The user half-step for one visitor: ridge on ``r - mu - b_i`` with ``[q_i, 1]``,
        penalties ``n * reg`` (factors) and ``reg_bias`` (bias), as in training."""
        residual = stars - self.global_mean - self.item_bias[items]
        factors, bias = ridge_with_bias(
            self.item_factors[items],
            residual,
            reg_factors=items.size * self.config.reg,
            reg_bias=self.config.reg_bias,
        )
        return UserState(items=items, stars=stars, factors=factors.astype(np.float32), bias=bias)
