"""The parallel kernels against their exact / serial counterparts on small random data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.models._kernels import (
    Biased,
    ByRow,
    SGDRates,
    Triples,
    als_cg_side,
    als_exact_side,
    nmf_epoch,
    nmf_half_step,
    svd_epoch,
    svd_epoch_blocks,
)
from movierec.models.factor import numba_threads, shuffled_within, user_blocks


def random_csr(n_rows: int, n_cols: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    matrix = sp.random(n_rows, n_cols, density=density, format="csr", random_state=rng)
    matrix.data = (rng.integers(1, 11, matrix.nnz) / 2).astype(np.float32)
    matrix.sort_indices()
    return matrix.astype(np.float32)


def rows_of(matrix: sp.csr_matrix) -> ByRow:
    return ByRow(matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32), matrix.data)


def test_cg_half_step_converges_to_the_exact_solve() -> None:
    matrix = random_csr(40, 30, 0.3, seed=0)
    rng = np.random.default_rng(1)
    other, other_bias = rng.normal(0, 0.5, (30, 6)), rng.normal(0, 0.3, 30)
    exact, exact_bias = np.zeros((40, 6)), np.zeros(40)
    als_exact_side(rows_of(matrix), 3.5, other, other_bias, 0.1, 2.0, exact, exact_bias)
    # m = k + 1 = 7 unknowns: CG is exact after 7 steps in exact arithmetic
    cg, cg_bias = np.zeros((40, 6)), np.zeros(40)
    als_cg_side(rows_of(matrix), 3.5, other, other_bias, 0.1, 2.0, cg, cg_bias, 7)
    np.testing.assert_allclose(cg, exact, atol=1e-6)
    np.testing.assert_allclose(cg_bias, exact_bias, atol=1e-6)
    assert np.all(cg[np.diff(matrix.indptr) == 0] == 0.0)


def test_cg_warm_start_improves_each_call() -> None:
    """Two steps from a cold start are not the answer; more calls warm-started from the
    last one get closer every time (the solver never moves away from the solution)."""
    matrix = random_csr(50, 40, 0.4, seed=2)
    rng = np.random.default_rng(3)
    other, other_bias = rng.normal(0, 0.7, (40, 10)), rng.normal(0, 0.3, 40)
    exact, exact_bias = np.zeros((50, 10)), np.zeros(50)
    als_exact_side(rows_of(matrix), 3.0, other, other_bias, 0.05, 1.0, exact, exact_bias)
    cg, cg_bias = np.zeros((50, 10)), np.zeros(50)
    gaps = []
    for _ in range(4):
        als_cg_side(rows_of(matrix), 3.0, other, other_bias, 0.05, 1.0, cg, cg_bias, 2)
        gaps.append(np.abs(cg - exact).max())
    assert gaps[0] > 1e-3
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:], strict=False))
    assert gaps[-1] < gaps[0] / 2


def test_block_epoch_on_one_thread_is_the_serial_epoch_in_block_order() -> None:
    matrix = random_csr(60, 25, 0.3, seed=4)
    coo = matrix.tocoo()
    triples = Triples(coo.row.astype(np.int32), coo.col.astype(np.int32), coo.data)
    rng = np.random.default_rng(5)
    indptr = matrix.indptr.astype(np.int64)
    starts = indptr[user_blocks(indptr, target=40)]
    order = shuffled_within(starts, rng)
    block_order = rng.permutation(starts.size - 1)
    rates = SGDRates(0.02, 0.03, 0.01, 0.015, 0.05, 0.06, 0.07, 0.08)

    def start() -> Biased:
        r = np.random.default_rng(6)
        return Biased(np.zeros(60, np.float32), np.zeros(25, np.float32),
                      r.normal(0, 0.1, (60, 4)).astype(np.float32),
                      r.normal(0, 0.1, (25, 4)).astype(np.float32))  # fmt: skip

    blocked, serial = start(), start()
    with numba_threads(1):
        rmse_blocked = svd_epoch_blocks(triples, order, starts, block_order, 3.2, blocked, rates)
    flat = np.concatenate([order[starts[b] : starts[b + 1]] for b in block_order])
    rmse_serial = svd_epoch(triples, flat, 3.2, serial, rates)
    assert rmse_blocked == pytest.approx(rmse_serial, rel=1e-6)
    for got, want in zip(blocked, serial, strict=True):
        np.testing.assert_array_equal(got, want)


def test_blocks_cut_at_users_and_cover_every_rating() -> None:
    indptr = np.array([0, 5, 5, 30, 31, 40, 100], dtype=np.int64)
    users = user_blocks(indptr, target=10)
    assert users[0] == 0 and users[-1] == 6 and np.all(np.diff(users) > 0)
    order = shuffled_within(indptr[users], np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(100))
    for a, b in zip(indptr[users][:-1], indptr[users][1:], strict=True):
        assert sorted(order[a:b].tolist()) == list(range(a, b))  # shuffled only within


def test_parallel_nmf_half_steps_are_the_serial_epoch() -> None:
    matrix = random_csr(30, 20, 0.4, seed=7)
    coo = matrix.tocoo()
    rng = np.random.default_rng(8)
    p, q = rng.uniform(0, 1, (30, 3)), rng.uniform(0, 1, (20, 3))
    ref_p, ref_q = p.copy(), q.copy()
    zeros_u, zeros_i = np.zeros(30), np.zeros(20)
    rates = SGDRates(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.2)
    nmf_epoch(Triples(coo.row.astype(np.int32), coo.col.astype(np.int32), coo.data), 0.0,
              Biased(zeros_u, zeros_i, ref_p, ref_q), np.diff(matrix.indptr),
              np.bincount(matrix.indices, minlength=20), rates, False)  # fmt: skip
    by_item = matrix.tocsc()
    old_p = p.copy()
    nmf_half_step(rows_of(matrix), p, q, 0.0, zeros_u, zeros_i, 0.1)
    item_rows = ByRow(by_item.indptr.astype(np.int64), by_item.indices, by_item.data)
    nmf_half_step(item_rows, q, old_p, 0.0, zeros_i, zeros_u, 0.2)
    np.testing.assert_allclose(p, ref_p, rtol=1e-10)
    np.testing.assert_allclose(q, ref_q, rtol=1e-10)
