"""Shared fold-in maths: solve one user's state against fixed item parameters.

- :func:`ridge_with_bias`: the factor models' least squares for ``(p, b)``.
- :func:`nnls_ridge`: the non-negative version (NMF), with an optional free bias.
- :class:`RatedItems`: the training ratings by user, so a trained user's state can say
  what they rated (and a saved model can too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.optimize import nnls

from movierec.data.arrays import (
    AnyArray,
    Float32Array,
    Float64Array,
    FloatArray,
    Int32Array,
    Int64Array,
)
from movierec.data.ratings import Ratings
from movierec.models.files import ArraySpec


def ridge_with_bias(
    factors: FloatArray, residual: FloatArray, reg_factors: float, reg_bias: float
) -> tuple[Float64Array, float]:
    """Ridge least squares for a user's factors and bias.

    Minimises ``||residual - factors @ p - b||^2 + reg_factors ||p||^2 + reg_bias b^2``.

    factors: ``(n, k)`` item factors of the rated items.
    residual: ``(n,)`` stars minus what the model explains without the user
        (``r - mu - b_i``).
    Returns ``p`` ``(k,)`` float64 and ``b`` (stars).

    With design ``X = [factors, 1]`` and penalties ``L = diag(reg)``, the answer is
    ``(X'X + L)^-1 X'y`` (a ``(k+1)``-square system) or, identically,
    ``L^-1 X' (X L^-1 X' + I)^-1 y`` (``n``-square). A visitor rates far fewer movies
    than there are factors, so the second is the small one: besides being cheaper, a
    15 x 15 solve stays single-threaded in OpenBLAS, whereas a 101 x 101 one wakes its
    thread pool and, on a busy machine, can stall for tens of milliseconds.

    Written by hand: scikit-learn's ``Ridge`` leaves its intercept unpenalised (we want
    ``reg_bias``), has no per-column penalty, and spends longer checking inputs than
    this one LAPACK solve takes.
    """
    n, k = factors.shape
    design, target, penalty = _ridge_parts(factors, residual, reg_factors, reg_bias)
    if n == 0:
        return np.zeros(k), 0.0
    if n <= k and np.all(penalty > 0):
        scaled = design / penalty  # X L^-1, (n, k+1)
        kernel = scaled @ design.T  # X L^-1 X', (n, n)
        kernel[np.diag_indices(n)] += 1.0
        solution = scaled.T @ np.linalg.solve(kernel, target)
    else:
        gram = design.T @ design
        gram[np.diag_indices(k + 1)] += penalty
        rhs = design.T @ target
        try:
            solution = np.linalg.solve(gram, rhs)
        except np.linalg.LinAlgError:  # only with zero regularisation: minimum-norm answer
            solution = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return solution[:k], float(solution[k])


def _ridge_parts(
    factors: FloatArray, residual: FloatArray, reg_factors: float, reg_bias: float
) -> tuple[Float64Array, Float64Array, Float64Array]:
    """The ridge problem of :func:`ridge_with_bias`: design ``[factors, 1]`` ``(n, k+1)``,
    target ``(n,)`` and per-column penalty ``(k+1,)``, all float64."""
    n, k = factors.shape
    design = np.empty((n, k + 1), dtype=np.float64)
    design[:, :k] = factors
    design[:, k] = 1.0
    penalty = np.full(k + 1, float(reg_factors))
    penalty[k] = reg_bias
    return design, np.asarray(residual, dtype=np.float64), penalty


def ridge_with_bias_leave_one_out(
    factors: FloatArray, residual: FloatArray, reg_factors: float, reg_bias: float
) -> tuple[Float64Array, Float64Array]:
    """:func:`ridge_with_bias` without each rating in turn, all ``n`` solves at once.

    Row ``i`` of the answer equals ``ridge_with_bias(factors[rest], residual[rest],
    reg_factors, reg_bias)`` with ``rest`` every row but ``i`` (the penalties as given:
    callers pass those for ``n - 1`` ratings). Returns ``(n, k)`` float64 factors and
    ``(n,)`` biases.

    Written by hand because it is the cost of explaining a pick (which rating moved it
    most): ``n`` refits would each solve a system. In the ``n``-square form, leaving row
    ``i`` out of ``K = X L^-1 X' + I`` changes its inverse by a rank-one block update, so
    with ``beta = K^-1 y`` the left-out weights are ``beta - K^-1[:, i] beta_i / K^-1_ii``
    (zero at ``i``); in the ``(k+1)``-square form it is Sherman-Morrison on ``X'X + L``.
    """
    n, k = factors.shape
    if n <= 1:
        return np.zeros((n, k)), np.zeros(n)
    design, target, penalty = _ridge_parts(factors, residual, reg_factors, reg_bias)
    if n - 1 <= k and np.all(penalty > 0):
        scaled = design / penalty  # X L^-1
        kernel = scaled @ design.T
        kernel[np.diag_indices(n)] += 1.0
        inverse = np.linalg.inv(kernel)  # (n, n), symmetric
        beta = inverse @ target
        weights = beta[None, :] - (beta / np.diag(inverse))[:, None] * inverse  # row i: no i
        solutions = weights @ scaled  # (n, k+1)
    else:
        gram = design.T @ design
        gram[np.diag_indices(k + 1)] += penalty
        inverse = np.linalg.pinv(gram)
        full = inverse @ (design.T @ target)
        spread = design @ inverse  # (n, k+1) rows x_i' A^-1
        leverage = np.einsum("ij,ij->i", spread, design)
        error = target - design @ full
        solutions = full[None, :] - spread * (error / (1.0 - leverage))[:, None]
    return solutions[:, :k], solutions[:, k]


def nnls_ridge(
    factors: FloatArray,
    target: FloatArray,
    reg_factors: float,
    reg_bias: float | None = None,
) -> tuple[Float64Array, float]:
    """Non-negative ridge least squares, optionally with a free (signed) bias.

    Minimises ``||target - factors @ p - b||^2 + reg_factors ||p||^2 + reg_bias b^2``
    subject to ``p >= 0``; without ``reg_bias`` there is no bias (``b = 0``).

    factors: ``(n, k)`` non-negative item factors of the rated items.
    target: ``(n,)`` what ``factors @ p + b`` should reproduce.
    Returns ``p`` ``(k,)`` float64 (all >= 0) and ``b``.

    The ridge terms become ``sqrt(reg)`` rows of an augmented system for
    ``scipy.optimize.nnls``. A signed bias is split into ``b+ - b-`` with both >= 0 and
    both penalised: at the optimum one of them is zero, so the penalty is ``reg_bias b^2``.
    """
    n, k = factors.shape
    n_bias = 0 if reg_bias is None else 2
    bias_weight = np.sqrt(reg_bias or 0.0)
    width = k + n_bias
    design = np.zeros((n + width, width), dtype=np.float64)
    design[:n, :k] = factors
    design[n : n + k, :k] = np.sqrt(reg_factors) * np.eye(k)
    if n_bias:
        design[:n, k] = 1.0
        design[:n, k + 1] = -1.0
        design[n + k, k] = design[n + k + 1, k + 1] = bias_weight
    rhs = np.zeros(n + width, dtype=np.float64)
    rhs[:n] = target
    solution, _ = nnls(design, rhs)
    bias = float(solution[k] - solution[k + 1]) if n_bias else 0.0
    return solution[:k], bias


@dataclass
class RatedItems:
    """The training ratings by user (CSR rows), to report what a trained user rated.

    indptr: ``(n_users + 1,)`` int64 row starts.
    items: ``(nnz,)`` int32 item indices, sorted within each row.
    stars: ``(nnz,)`` float32 their stars.
    """

    indptr: Int64Array
    items: Int32Array
    stars: Float32Array

    @classmethod
    def from_ratings(cls, ratings: Ratings) -> RatedItems:
        matrix = ratings.matrix
        return cls(
            indptr=np.asarray(matrix.indptr, dtype=np.int64),
            items=np.asarray(matrix.indices, dtype=np.int32),
            stars=np.asarray(matrix.data, dtype=np.float32),
        )

    def row(self, user: int) -> tuple[Int64Array, Float32Array]:
        """``(items, stars)``: ``(m,)`` int64 item indices and ``(m,)`` float32 stars."""
        start, end = self.indptr[user], self.indptr[user + 1]
        return self.items[start:end].astype(np.int64), self.stars[start:end].copy()

    def arrays(self) -> dict[str, AnyArray]:
        return {"rated_indptr": self.indptr, "rated_items": self.items, "rated_stars": self.stars}

    #: the arrays ``arrays`` returns, as a model's ``array_specs`` declares them
    specs: ClassVar[dict[str, ArraySpec]] = {
        "rated_indptr": ArraySpec("int64", ("n_users+1",)),
        "rated_items": ArraySpec("int32", ("n_rated",)),
        "rated_stars": ArraySpec("float32", ("n_rated",)),
    }

    @classmethod
    def from_arrays(cls, arrays: dict[str, AnyArray]) -> RatedItems:
        return cls(
            indptr=np.asarray(arrays["rated_indptr"], dtype=np.int64),
            items=np.asarray(arrays["rated_items"], dtype=np.int32),
            stars=np.asarray(arrays["rated_stars"], dtype=np.float32),
        )
