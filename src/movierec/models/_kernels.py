"""Numba hot loops of every trained model, in one place: one epoch or half-step per call.

Kept small and free of Python objects so they compile once (``cache=True`` writes the
machine code beside this file) and run at C speed. Callers own the randomness: visiting
orders are passed in, so a fit is reproducible from its seed alone (a parallel kernel
run on one thread visits in the order given; on more, Hogwild races make the last bits
vary).

Arguments come grouped in small named tuples rather than long positional lists:

- :class:`Triples` / :class:`ByRow`: the ratings, as ``(users, items, stars)`` or CSR.
- :class:`Biased`: the fitted arrays of ``mu + b_u + b_i + p_u . q_i`` (updated in place).
- :class:`SGDRates`: learning rates and L2 weights of each term.

Shapes: ``users``/``items`` ``(nnz,)`` int32 indices, ``stars`` ``(nnz,)`` float32,
``indptr`` ``(n_rows + 1,)`` int64, ``user_factors`` ``(n_users, k)``, ``item_factors``
``(n_items, k)``, biases ``(n_users,)`` / ``(n_items,)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from movierec.data.arrays import (
    Float32Array,
    Float64Array,
    FloatArray,
    IndexArray,
    Int32Array,
    Int64Array,
)


class Triples(NamedTuple):
    """Ratings as parallel arrays: ``users``, ``items`` ``(nnz,)`` int32, ``stars`` float32."""

    users: Int32Array
    items: Int32Array
    stars: Float32Array


class ByRow(NamedTuple):
    """Ratings as CSR rows: ``indptr`` ``(n_rows + 1,)`` int64, ``cols`` ``(nnz,)`` int32
    column indices, ``stars`` ``(nnz,)`` float32."""

    indptr: Int64Array
    cols: IndexArray
    stars: Float32Array


class Biased(NamedTuple):
    """Fitted arrays of ``mu + b_u + b_i + p_u . q_i`` (all one float dtype), in place."""

    user_bias: FloatArray
    item_bias: FloatArray
    user_factors: FloatArray
    item_factors: FloatArray


class SGDRates(NamedTuple):
    """Learning rates (``lr_*``) and L2 weights (``reg_*``) of ``b_u, b_i, p_u, q_i``."""

    lr_bu: float
    lr_bi: float
    lr_pu: float
    lr_qi: float
    reg_bu: float
    reg_bi: float
    reg_pu: float
    reg_qi: float


# -- SGD of biased MF (svd) -------------------------------------------------------------------
@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _sgd_step(u, i, r, mu, user_bias, item_bias, user_factors, item_factors, rates) -> float:  # noqa: ANN001
    """One Surprise SVD update on rating ``(u, i, r)``; returns its squared error.

    Takes the arrays one by one: numba's parallel loops do not write through arrays
    held in a tuple (the updates are lost), so kernels unpack :class:`Biased` first.
    """
    f32 = np.float32
    p_u = user_factors[u]
    q_i = item_factors[i]
    dot = f32(0.0)
    for f in range(p_u.shape[0]):
        dot += p_u[f] * q_i[f]
    err = r - (mu + user_bias[u] + item_bias[i] + dot)
    user_bias[u] += f32(rates.lr_bu) * (err - f32(rates.reg_bu) * user_bias[u])
    item_bias[i] += f32(rates.lr_bi) * (err - f32(rates.reg_bi) * item_bias[i])
    lr_pu, lr_qi = f32(rates.lr_pu), f32(rates.lr_qi)
    reg_pu, reg_qi = f32(rates.reg_pu), f32(rates.reg_qi)
    for f in range(p_u.shape[0]):
        puf = p_u[f]
        qif = q_i[f]
        p_u[f] = puf + lr_pu * (err * qif - reg_pu * puf)
        q_i[f] = qif + lr_qi * (err * puf - reg_qi * qif)
    return float(err * err)  # float64: the callers' sum is float64


@njit(cache=True, fastmath=True, nogil=True)
def svd_epoch(
    ratings: Triples, order: IndexArray, global_mean: float, model: Biased, rates: SGDRates
) -> float:
    """One SGD pass of biased MF (Surprise's SVD update, term for term), float32.

    For each rating ``order[j]``: ``e = r - (mu + b_u + b_i + p_u . q_i)``, then
    ``b_u += lr_bu (e - reg_bu b_u)``, ``b_i += lr_bi (e - reg_bi b_i)``,
    ``p_u += lr_pu (e q_i - reg_pu p_u)``, ``q_i += lr_qi (e p_u - reg_qi q_i)``
    (both factor updates use the old values).

    order: ``(nnz,)`` int32 or int64 visiting order (e.g. a permutation of the ratings).
    Returns the training RMSE seen during the pass (before each update).
    """
    mu = np.float32(global_mean)
    users, items, stars = ratings.users, ratings.items, ratings.stars
    user_bias, item_bias = model.user_bias, model.item_bias
    user_factors, item_factors = model.user_factors, model.item_factors
    sse = 0.0
    for j in range(order.shape[0]):
        idx = order[j]
        sse += _sgd_step(users[idx], items[idx], stars[idx], mu, user_bias, item_bias,
                         user_factors, item_factors, rates)  # fmt: skip
    return math.sqrt(sse / max(order.shape[0], 1))


@njit(cache=True, fastmath=True, nogil=True, parallel=True)
def svd_epoch_blocks(
    ratings: Triples,
    order: IndexArray,
    block_starts: IndexArray,
    block_order: IndexArray,
    global_mean: float,
    model: Biased,
    rates: SGDRates,
) -> float:
    """One Hogwild SGD pass over blocks of users, blocks in parallel (``svd_epoch``'s update).

    The ratings are user-major; block ``b`` holds positions
    ``block_starts[b]:block_starts[b + 1]`` of ``order`` (a few hundred users' ratings,
    shuffled among themselves), so a thread's user factors stay in cache and the only
    memory it shares with the other threads is the item side, updated without locks as
    in Hogwild (Recht et al. 2011): collisions are rare and harmless to convergence.

    block_order: ``(n_blocks,)`` the order blocks are handed out this epoch.
    Returns the training RMSE seen during the pass.
    """
    mu = np.float32(global_mean)
    users, items, stars = ratings.users, ratings.items, ratings.stars
    user_bias, item_bias = model.user_bias, model.item_bias
    user_factors, item_factors = model.user_factors, model.item_factors
    sse = 0.0
    for t in prange(block_order.shape[0]):
        b = block_order[t]
        for j in range(block_starts[b], block_starts[b + 1]):
            idx = order[j]
            sse += _sgd_step(users[idx], items[idx], stars[idx], mu, user_bias, item_bias,
                             user_factors, item_factors, rates)  # fmt: skip
    return math.sqrt(sse / max(order.shape[0], 1))


# -- NMF ------------------------------------------------------------------------------------------
@njit(cache=True, fastmath=True, nogil=True)
def nmf_epoch(
    ratings: Triples,
    global_mean: float,
    model: Biased,
    user_counts: Int64Array,
    item_counts: Int64Array,
    rates: SGDRates,
    biased: bool,
) -> float:
    """One pass of Surprise's NMF (Luo et al. 2014 multiplicative updates) on observed ratings.

    Accumulates, over the ratings in the given order, ``num_u = sum_i r q_i`` and
    ``den_u = sum_i est q_i`` (likewise for items), then sets
    ``p_u *= num_u / (den_u + n_u reg_pu p_u)`` and ``q_i *= num_i / (den_i + n_i reg_qi q_i)``
    from the *old* factors, which keeps them non-negative. With ``biased`` the biases
    take an SGD step per rating as in Surprise (rates ``lr_bu``, ``lr_bi``, ``reg_bu``,
    ``reg_bi``; then ``global_mean`` is the stars' mean; pass 0 for the unbiased model).
    ``rates.lr_pu``/``lr_qi`` are unused. Arrays float64.

    user_counts / item_counts: ``(n_users,)`` / ``(n_items,)`` ratings per row / column.
    Returns the training RMSE seen during the pass.
    """
    users, items, stars = ratings.users, ratings.items, ratings.stars
    user_bias, item_bias = model.user_bias, model.item_bias
    user_factors, item_factors = model.user_factors, model.item_factors
    n_users, n_factors = user_factors.shape
    n_items = item_factors.shape[0]
    user_num = np.zeros((n_users, n_factors), dtype=np.float64)
    user_den = np.zeros((n_users, n_factors), dtype=np.float64)
    item_num = np.zeros((n_items, n_factors), dtype=np.float64)
    item_den = np.zeros((n_items, n_factors), dtype=np.float64)
    sse = 0.0
    for idx in range(stars.shape[0]):
        u = users[idx]
        i = items[idx]
        r = stars[idx]
        dot = 0.0
        for f in range(n_factors):
            dot += user_factors[u, f] * item_factors[i, f]
        est = global_mean + user_bias[u] + item_bias[i] + dot
        err = r - est
        sse += err * err
        if biased:
            user_bias[u] += rates.lr_bu * (err - rates.reg_bu * user_bias[u])
            item_bias[i] += rates.lr_bi * (err - rates.reg_bi * item_bias[i])
        for f in range(n_factors):
            user_num[u, f] += item_factors[i, f] * r
            user_den[u, f] += item_factors[i, f] * est
            item_num[i, f] += user_factors[u, f] * r
            item_den[i, f] += user_factors[u, f] * est
    _nmf_apply(user_factors, user_num, user_den, user_counts, rates.reg_pu)
    _nmf_apply(item_factors, item_num, item_den, item_counts, rates.reg_qi)
    return math.sqrt(sse / max(stars.shape[0], 1))


@njit(cache=True, fastmath=True, nogil=True)
def _nmf_apply(factors, num, den, counts, reg) -> None:  # noqa: ANN001
    """``x *= num / (den + n reg x)`` for every non-zero entry (0 where that is not > 0)."""
    for row in range(factors.shape[0]):
        for f in range(factors.shape[1]):
            value = factors[row, f]
            if value != 0.0:
                total = den[row, f] + counts[row] * reg * value
                factors[row, f] = value * num[row, f] / total if total > 0.0 else 0.0


@njit(cache=True, fastmath=True, nogil=True, parallel=True)
def nmf_half_step(
    rows: ByRow, own: FloatArray, other: FloatArray, mu: float, own_bias: FloatArray,
    other_bias: FloatArray, reg: float,
) -> float:  # fmt: skip
    """One side of the unbiased-order NMF update, rows in parallel: for each row ``x`` of
    ``own`` with ratings ``(j, r)``: ``x *= sum r y_j / (sum est y_j + n reg x)`` with
    ``est = mu + b_x + b_j + x . y_j`` from the factors as they were on entry.

    Returns the row-side sum of squared errors. Rows write only themselves, so the
    result does not depend on the number of threads.
    """
    n_rows, k = own.shape
    sse = 0.0
    for row in prange(n_rows):
        num = np.zeros(k)
        den = np.zeros(k)
        start, end = rows.indptr[row], rows.indptr[row + 1]
        for t in range(start, end):
            j = rows.cols[t]
            r = rows.stars[t]
            dot = 0.0
            for f in range(k):
                dot += own[row, f] * other[j, f]
            est = mu + own_bias[row] + other_bias[j] + dot
            sse += (r - est) * (r - est)
            for f in range(k):
                num[f] += other[j, f] * r
                den[f] += other[j, f] * est
        n = end - start
        for f in range(k):
            value = own[row, f]
            if value != 0.0:
                total = den[f] + n * reg * value
                own[row, f] = value * num[f] / total if total > 0.0 else 0.0
    return sse


# -- SVD++ ----------------------------------------------------------------------------------------
@njit(cache=True, fastmath=True, nogil=True, parallel=True)
def svdpp_epoch(
    rows: ByRow,
    rating_order: Int64Array,
    block_starts: IndexArray,
    block_order: IndexArray,
    global_mean: float,
    model: Biased,
    implicit_factors: Float32Array,
    rates: SGDRates,
    reg_implicit: float,
) -> float:
    """One SGD pass of SVD++, blocks of users in parallel (Hogwild on the item side).

    rows: the ratings as CSR by user; block ``b`` is users
        ``block_starts[b]:block_starts[b + 1]``, blocks visited in ``block_order``
        (users in a block in index order).
    rating_order: ``(nnz,)`` int64; ``rating_order[indptr[u]:indptr[u + 1]]`` is a
        permutation of that same range (the order of ``u``'s ratings).
    implicit_factors: ``(n_items, k)`` float32 ``y``; all float32, updated in place.

    Per rating: ``e = r - (mu + b_u + b_i + q_i . (p_u + z_u))``,
    ``b_u += lr_bu (e - reg_bu b_u)`` (same for ``b_i``),
    ``p_u += lr_pu (e q_i - reg_pu p_u)``, ``q_i += lr_qi (e (p_u + z_u) - reg_qi q_i)``.
    After the user's ``n`` ratings, for every rated ``j``:
    ``y_j += lr_pu (n^-1/2 sum_e e q_i - n reg_implicit y_j)``, the sum of the ``n``
    per-rating steps SVD++ would take. Returns the training RMSE seen during the pass.
    """
    f32 = np.float32
    mu = f32(global_mean)
    lr, lr_b = f32(rates.lr_pu), f32(rates.lr_bu)
    reg, reg_b = f32(rates.reg_pu), f32(rates.reg_bu)
    user_bias, item_bias = model.user_bias, model.item_bias
    user_factors, item_factors = model.user_factors, model.item_factors
    items, stars = rows.cols, rows.stars
    k = user_factors.shape[1]
    sse = 0.0
    for t in prange(block_order.shape[0]):
        b = block_order[t]
        implicit = np.empty(k, dtype=np.float32)
        grad = np.empty(k, dtype=np.float32)
        for u in range(block_starts[b], block_starts[b + 1]):
            start = rows.indptr[u]
            end = rows.indptr[u + 1]
            n = end - start
            if n == 0:
                continue
            norm = f32(1.0 / np.sqrt(n))
            implicit[:] = 0.0
            for idx in range(start, end):
                implicit += implicit_factors[items[idx]]
            implicit *= norm
            grad[:] = 0.0
            for pos in range(start, end):
                idx = rating_order[pos]
                i = items[idx]
                dot = f32(0.0)
                for f in range(k):
                    dot += item_factors[i, f] * (user_factors[u, f] + implicit[f])
                err = stars[idx] - (mu + user_bias[u] + item_bias[i] + dot)
                sse += err * err
                user_bias[u] += lr_b * (err - reg_b * user_bias[u])
                item_bias[i] += lr_b * (err - reg_b * item_bias[i])
                for f in range(k):
                    puf = user_factors[u, f]
                    qif = item_factors[i, f]
                    grad[f] += err * qif
                    user_factors[u, f] = puf + lr * (err * qif - reg * puf)
                    item_factors[i, f] = qif + lr * (err * (puf + implicit[f]) - reg * qif)
            shrink = f32(1.0 - lr * n * reg_implicit)
            for idx in range(start, end):
                j = items[idx]
                for f in range(k):
                    implicit_factors[j, f] = shrink * implicit_factors[j, f] + lr * norm * grad[f]
    return math.sqrt(sse / max(stars.shape[0], 1))


# -- ALS ------------------------------------------------------------------------------------------
@njit(cache=True, fastmath=True, nogil=True)
def cholesky_solve(gram: Float64Array, rhs: Float64Array) -> None:
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
def als_exact_side(
    rows: ByRow, global_mean: float, other_factors: FloatArray, other_bias: FloatArray,
    reg: float, reg_bias: float, factors_out: FloatArray, bias_out: FloatArray,
) -> None:  # fmt: skip
    """One ALS half-step: ridge-solve every row against the fixed other side, exactly.

    Row ``r`` with ratings ``(j, s)`` gets ``(x_r, c_r)`` minimising
    ``sum (s - mu - d_j - y_j . x_r - c_r)^2 + n_r reg |x_r|^2 + reg_bias c_r^2``
    (normal equations on the design ``[y_j, 1]``, solved by Cholesky; ``reg > 0``
    makes them positive definite). ``(k+1)^2 / 2`` work per rating.

    other_factors: ``(n_cols, k)`` float64 fixed factors ``y_j``; other_bias ``(n_cols,)``.
    factors_out: ``(n_rows, k)`` float64; bias_out ``(n_rows,)`` float64, written in place.
    Rows without ratings get zeros.
    """
    n_rows = rows.indptr.shape[0] - 1
    k = other_factors.shape[1]
    m = k + 1
    for row in prange(n_rows):
        start = rows.indptr[row]
        n = rows.indptr[row + 1] - start
        if n == 0:
            factors_out[row, :] = 0.0
            bias_out[row] = 0.0
            continue
        gram = np.zeros((m, m))  # lower triangle of [Y 1]^T [Y 1]
        rhs = np.zeros(m)
        design_row = np.empty(m)
        design_row[k] = 1.0
        for t in range(n):
            j = rows.cols[start + t]
            design_row[:k] = other_factors[j]
            residual = rows.stars[start + t] - global_mean - other_bias[j]
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


@njit(cache=True, parallel=True, fastmath=True)
def als_cg_side(
    rows: ByRow, global_mean: float, other_factors: FloatArray, other_bias: FloatArray,
    reg: float, reg_bias: float, factors_out: FloatArray, bias_out: FloatArray, steps: int,
) -> None:  # fmt: skip
    """The half-step of :func:`als_exact_side` by ``steps`` conjugate-gradient steps,
    warm-started from ``factors_out`` / ``bias_out`` (the previous iteration's answer).

    The system ``(D'D + L) x = D'y`` (design ``D = [y_j, 1]`` of the row's ratings,
    ``L = diag(n reg, ..., reg_bias)``) is never formed: each step applies it as
    ``D'(D p) + L p``, ``2 (k+1)`` work per rating instead of ``(k+1)^2 / 2`` to build it
    (implicit's CPU ALS does the same, Takács et al. 2011). Rows without ratings get zeros.

    Works in the factors' dtype: float32 in ``ALS``, which halves the bytes of the random
    ``y_j`` reads and doubles the SIMD lanes (``bench/scale.py`` times it per iteration).
    Every vector update is a loop, so a row allocates only its small work vectors.
    """
    n_rows = rows.indptr.shape[0] - 1
    k = other_factors.shape[1]
    m = k + 1
    dtype = other_factors.dtype
    for row in prange(n_rows):
        start = rows.indptr[row]
        end = rows.indptr[row + 1]
        n = end - start
        if n == 0:
            factors_out[row, :] = 0.0
            bias_out[row] = 0.0
            continue
        x = np.empty(m, dtype)
        x[:k] = factors_out[row]
        x[k] = bias_out[row]
        # scalars in the factors' dtype, so the per-rating loops stay in it (a float64
        # scalar would promote them: float32 SIMD lanes are twice as many)
        scalars = np.zeros(4, dtype)
        scalars[0], scalars[1], scalars[2] = n * reg, reg_bias, global_mean
        penalty, penalty_bias, mu, zero = scalars[0], scalars[1], scalars[2], scalars[3]
        resid = np.empty(m, dtype)  # r = D'y - (D'D + L) x
        for f in range(k):
            resid[f] = -penalty * x[f]
        resid[k] = -penalty_bias * x[k]
        for t in range(start, end):
            j = rows.cols[t]
            pred = x[k]
            for f in range(k):
                pred += other_factors[j, f] * x[f]
            e = rows.stars[t] - mu - other_bias[j] - pred
            for f in range(k):
                resid[f] += other_factors[j, f] * e
            resid[k] += e
        direction = resid.copy()
        rs_old = zero
        for f in range(m):
            rs_old += resid[f] * resid[f]
        applied = np.empty(m, dtype)
        for _ in range(steps):
            if rs_old < 1e-20:
                break
            for f in range(k):
                applied[f] = penalty * direction[f]
            applied[k] = penalty_bias * direction[k]
            for t in range(start, end):
                j = rows.cols[t]
                proj = direction[k]
                for f in range(k):
                    proj += other_factors[j, f] * direction[f]
                for f in range(k):
                    applied[f] += other_factors[j, f] * proj
                applied[k] += proj
            curvature = zero
            for f in range(m):
                curvature += direction[f] * applied[f]
            alpha = rs_old / curvature
            rs_new = zero
            for f in range(m):
                x[f] += alpha * direction[f]
                resid[f] -= alpha * applied[f]
                rs_new += resid[f] * resid[f]
            beta = rs_new / rs_old
            for f in range(m):
                direction[f] = resid[f] + beta * direction[f]
            rs_old = rs_new
        factors_out[row] = x[:k]
        bias_out[row] = x[k]


# -- scoring ------------------------------------------------------------------------------------
@njit(cache=True, fastmath=True, nogil=True)
def score_items(
    item_factors: Float32Array,
    item_bias: Float32Array,
    offset: float,
    user_factors: Float32Array,
    low: float,
    high: float,
) -> Float32Array:
    """``(n_items,)`` float32 ``clip(offset + b_i + q_i . p, low, high)`` for every item.

    user_factors: ``(k,)`` float32 ``p``; offset: ``mu + b_u`` (stars).

    Written out rather than ``item_factors @ p``: that matrix-vector product is large
    enough for OpenBLAS to wake its thread pool, which on a busy machine stalls a
    request for tens of milliseconds now and then; this loop is single-threaded and
    as fast (about 0.1 ms for 10,000 movies x 100 factors).
    """
    n_items, n_factors = item_factors.shape
    out = np.empty(n_items, dtype=np.float32)
    base = np.float32(offset)
    lo, hi = np.float32(low), np.float32(high)
    for i in range(n_items):
        acc = np.float32(0.0)
        for f in range(n_factors):
            acc += item_factors[i, f] * user_factors[f]
        value = base + item_bias[i] + acc
        out[i] = min(max(value, lo), hi)
    return out
