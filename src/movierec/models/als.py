"""Biased explicit matrix factorisation fitted by alternating least squares (ALS-WR).

``stars(u, i) = mu + b_u + b_i + p_u . q_i``. Each half-step holds one side fixed and
solves every row of the other side in closed form (a ridge regression on the design
``[q_i, 1]``), in parallel over rows. As in Spark MLlib's ALS ("weighted-lambda
regularisation", Zhou et al. 2008) the factor penalty grows with the row's rating
count, ``n_u * reg``; the bias penalty is a fixed ``reg_bias`` (a prior worth
``reg_bias`` ratings at zero, as Surprise's baseline ALS).

An epoch solves items, then users, so the trained user state is exactly what folding
in their own ratings gives.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numba import njit, prange
from tqdm.auto import tqdm

from movierec.data.ratings import Ratings
from movierec.models.base import UserState
from movierec.models.factor import FactorModel
from movierec.models.foldin import RatedItems, check_param, ridge_with_bias


@njit(cache=True, fastmath=True, nogil=True)
def cholesky_solve(gram: np.ndarray, rhs: np.ndarray) -> None:
    """Solve ``gram x = rhs`` for symmetric positive definite ``gram``, in place.

    Only the lower triangle of ``gram`` ``(m, m)`` float64 is read; it is overwritten
    by its Cholesky factor, and ``rhs`` ``(m,)`` by the solution. Plain loops: for the
    small systems here this beats a LAPACK call per row, and keeps BLAS threads out of
    the parallel loop.
    """
    m = gram.shape[0]
    for j in range(m):
        diag = gram[j, j]
        for p in range(j):
            diag -= gram[j, p] * gram[j, p]
        diag = np.sqrt(diag)
        gram[j, j] = diag
        for i in range(j + 1, m):
            value = gram[i, j]
            for p in range(j):
                value -= gram[i, p] * gram[j, p]
            gram[i, j] = value / diag
    for a in range(m):  # L y = rhs
        value = rhs[a]
        for b in range(a):
            value -= gram[a, b] * rhs[b]
        rhs[a] = value / gram[a, a]
    for a in range(m - 1, -1, -1):  # L^T x = y
        value = rhs[a]
        for b in range(a + 1, m):
            value -= gram[b, a] * rhs[b]
        rhs[a] = value / gram[a, a]


@njit(cache=True, parallel=True, fastmath=True)
def solve_side(
    indptr: np.ndarray,
    indices: np.ndarray,
    stars: np.ndarray,
    global_mean: float,
    other_factors: np.ndarray,
    other_bias: np.ndarray,
    reg: float,
    reg_bias: float,
    factors_out: np.ndarray,
    bias_out: np.ndarray,
) -> None:
    """One ALS half-step: ridge-solve every row against the fixed other side.

    Row ``r`` with ratings ``(j, s)`` gets ``(x_r, c_r)`` minimising
    ``sum (s - mu - d_j - y_j . x_r - c_r)^2 + n_r reg |x_r|^2 + reg_bias c_r^2``
    (normal equations on the design ``[y_j, 1]``, solved by Cholesky; ``reg > 0``
    makes them positive definite).

    indptr / indices / stars: CSR of the side being solved (``(n_rows + 1,)`` int64,
        ``(nnz,)`` int32 column indices, ``(nnz,)`` float32 stars).
    other_factors: ``(n_cols, k)`` float64 fixed factors ``y_j``; other_bias ``(n_cols,)``.
    factors_out: ``(n_rows, k)`` float64; bias_out ``(n_rows,)`` float64, written in place.
    Rows without ratings get zeros.
    """
    n_rows = indptr.shape[0] - 1
    k = other_factors.shape[1]
    m = k + 1
    for row in prange(n_rows):
        start = indptr[row]
        n = indptr[row + 1] - start
        if n == 0:
            factors_out[row, :] = 0.0
            bias_out[row] = 0.0
            continue
        gram = np.zeros((m, m))  # lower triangle of [Y 1]^T [Y 1]
        rhs = np.zeros(m)
        design_row = np.empty(m)
        design_row[k] = 1.0
        for t in range(n):
            j = indices[start + t]
            design_row[:k] = other_factors[j]
            residual = stars[start + t] - global_mean - other_bias[j]
            for a in range(m):
                value = design_row[a]
                rhs[a] += value * residual
                for b in range(a + 1):
                    gram[a, b] += value * design_row[b]
        for f in range(k):
            gram[f, f] += n * reg
        gram[k, k] += reg_bias
        cholesky_solve(gram, rhs)
        factors_out[row] = rhs[:k]
        bias_out[row] = rhs[k]


class ALS(FactorModel):
    """Biased explicit ALS with count-scaled regularisation.

    Parameters (defaults from ``bench/tune.py`` on a validation split of ml-100k u1.base):

    - ``n_factors``: latent dimensions ``k``.
    - ``n_epochs``: alternations (items then users).
    - ``reg``: factor penalty per rating (``n * reg`` for a row with ``n`` ratings), > 0.
    - ``reg_bias``: bias penalty, in pseudo-ratings.
    - ``init_std``: user factors start as ``normal(0, init_std)``.

    Unknown users or movies contribute nothing (``b = 0``, ``p = 0``).
    """

    name: ClassVar[str] = "als"
    defaults: ClassVar[dict[str, Any]] = {
        "n_factors": 50,
        "n_epochs": 15,
        "reg": 0.15,
        "reg_bias": 2.0,
        "init_std": 0.1,
    }

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        check_param(self.params, "n_factors", integer=True, positive=True)
        check_param(self.params, "n_epochs", integer=True)
        check_param(self.params, "reg", positive=True)  # keeps every solve well posed
        for name in ("reg_bias", "init_std"):
            check_param(self.params, name)

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        rng = np.random.default_rng(self.seed)
        k = int(self.params["n_factors"])
        reg, reg_bias = float(self.params["reg"]), float(self.params["reg_bias"])
        by_user = ratings.matrix
        by_item = by_user.tocsc()  # column-major = CSR of the transpose
        user_csr = (by_user.indptr.astype(np.int64), by_user.indices, by_user.data)
        item_csr = (by_item.indptr.astype(np.int64), by_item.indices, by_item.data)
        user_factors = rng.normal(0.0, float(self.params["init_std"]), (ratings.n_users, k))
        user_bias = np.zeros(ratings.n_users)
        item_factors = np.zeros((ratings.n_items, k))
        item_bias = np.zeros(ratings.n_items)
        mu = self.global_mean
        epochs = range(int(self.params["n_epochs"]))
        for _ in tqdm(epochs, desc="als", unit="epoch", disable=not progress):
            solve_side(*item_csr, mu, user_factors, user_bias, reg, reg_bias,
                       item_factors, item_bias)  # fmt: skip
            solve_side(*user_csr, mu, item_factors, item_bias, reg, reg_bias,
                       user_factors, user_bias)  # fmt: skip
        self.user_factors = user_factors.astype(np.float32)
        self.item_factors = item_factors.astype(np.float32)
        self.user_bias = user_bias.astype(np.float32)
        self.item_bias = item_bias.astype(np.float32)
        self.rated = RatedItems.from_ratings(ratings)

    def _fold_in(self, items: np.ndarray, stars: np.ndarray) -> UserState:
        """The user half-step for one visitor: ridge on ``r - mu - b_i`` with ``[q_i, 1]``,
        penalties ``n * reg`` (factors) and ``reg_bias`` (bias), as in training."""
        residual = stars - self.global_mean - self.item_bias[items]
        factors, bias = ridge_with_bias(
            self.item_factors[items],
            residual,
            reg_factors=items.size * float(self.params["reg"]),
            reg_bias=float(self.params["reg_bias"]),
        )
        return UserState(items=items, stars=stars, factors=factors.astype(np.float32), bias=bias)
