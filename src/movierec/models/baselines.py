"""Baseline estimates ``mu + b_u + b_i``: the user and item biases, computed in one place.

- :func:`als_baselines`: Surprise's baseline ALS (``bsl_options={"method": "als"}``),
  used by ``itemknn`` and ``content``.
- :func:`user_baseline_bias`: its user step for one visitor (fold-in).
- :func:`damped_means`: Bayesian averages (``popular``'s movie means and user bias).

The factor models (``svd``, ``svdpp``, ``als``, ``nmf``) fit their biases jointly with
their factors, so they use none of these; their biases live in the same arrays
(``user_bias``, ``item_bias``) and read the same way.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from movierec.data.arrays import Float64Array, FloatArray, IndexArray, Int32Array
from movierec.data.ratings import Ratings

#: what ``als_baselines`` holds at most per rating: row numbers (int32), the centred
#: stars and, in each step, a gathered bias and the difference (float64 each)
ALS_BASELINE_BYTES_PER_RATING = 4 + 3 * 8


def rows_of(indptr: IndexArray) -> Int32Array:
    """``(nnz,)`` int32 row number of every stored entry of a CSR matrix."""
    counts = np.diff(indptr)
    return np.repeat(np.arange(counts.size, dtype=np.int32), counts)


def als_baselines(
    ratings: Ratings, reg_user: float, reg_item: float, n_epochs: int
) -> tuple[Float64Array, Float64Array]:
    """Surprise's baseline ALS: ``b_i = sum (r - mu - b_u) / (reg_item + n_i)``, then
    ``b_u = sum (r - mu - b_i) / (reg_user + n_u)``, ``n_epochs`` times from zeros.

    Returns ``user_bias`` ``(n_users,)`` and ``item_bias`` ``(n_items,)`` float64 stars.
    Holds about ``ALS_BASELINE_BYTES_PER_RATING`` bytes a rating besides ``ratings``.
    """
    matrix = ratings.matrix  # CSR: the same order as ``ratings.triples()``, no copies
    users = rows_of(matrix.indptr)
    items = matrix.indices
    centred = matrix.data.astype(np.float64) - ratings.global_mean
    user_count = np.bincount(users, minlength=ratings.n_users)
    item_count = np.bincount(items, minlength=ratings.n_items)
    user_bias = np.zeros(ratings.n_users)
    item_bias = np.zeros(ratings.n_items)
    for _ in range(n_epochs):
        item_sum = np.bincount(items, centred - user_bias[users], minlength=ratings.n_items)
        item_bias = item_sum / (reg_item + item_count)
        user_sum = np.bincount(users, centred - item_bias[items], minlength=ratings.n_users)
        user_bias = user_sum / (reg_user + user_count)
    return user_bias, item_bias


def user_baseline_bias(residual: FloatArray, reg_user: float) -> float:
    """``b_u = sum (r - mu - b_i) / (reg_user + n)``: the user step of the baseline ALS.

    residual: ``(n,)`` the user's stars minus ``mu + b_i``.
    """
    return float(np.sum(residual, dtype=np.float64) / (reg_user + residual.size))


def damped_means(
    totals: npt.ArrayLike, counts: npt.ArrayLike, prior: float, damping: float
) -> Float64Array:
    """``(n,)`` float64 ``(totals + damping * prior) / (counts + damping)``.

    totals: ``(n,)`` sums; counts: ``(n,)`` how many values each sum holds. Where
    ``counts + damping`` is 0 (no data, no damping) the prior is returned.
    """
    totals = np.asarray(totals, dtype=np.float64)
    weight = np.asarray(counts, dtype=np.float64) + damping
    out = np.full(totals.shape, prior, dtype=np.float64)
    np.divide(totals + damping * prior, weight, out=out, where=weight > 0)
    return out
