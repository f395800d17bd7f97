"""Fold-in: exact maths on tiny data, and agreement with training on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import lsq_linear

from movierec import models
from movierec.data import Ratings
from movierec.models.foldin import nnls_ridge, ridge_with_bias, ridge_with_bias_leave_one_out

TINY = pd.DataFrame(
    {
        "userId": [1, 1, 1, 2, 2, 3, 3, 3, 4],
        "movieId": [10, 20, 30, 10, 40, 20, 30, 40, 50],
        "rating": [5.0, 3.0, 4.0, 4.5, 1.0, 2.0, 3.5, 4.0, 3.0],
    }
)


def augmented_lstsq(design: np.ndarray, target: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Ridge the textbook way: least squares on ``[design; diag(sqrt(penalty))]``."""
    stacked = np.vstack([design, np.diag(np.sqrt(penalty))])
    return np.linalg.lstsq(stacked, np.concatenate([target, np.zeros(len(penalty))]))[0]


# -- ridge with a bias ------------------------------------------------------------------
@pytest.mark.parametrize("n_rated", [15, 5])  # more ratings than factors, and fewer
def test_ridge_with_bias_matches_closed_form(n_rated: int) -> None:
    rng = np.random.default_rng(0)
    factors, residual = rng.normal(size=(n_rated, 8)), rng.normal(size=n_rated)
    p, b = ridge_with_bias(factors, residual, reg_factors=1.5, reg_bias=0.3)
    design = np.hstack([factors, np.ones((n_rated, 1))])
    expected = augmented_lstsq(design, residual, np.array([1.5] * 8 + [0.3]))
    np.testing.assert_allclose(np.append(p, b), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("n_rated", "n_factors"), [(15, 20), (5, 8), (30, 8), (9, 8), (2, 3), (1, 3)]
)
def test_leave_one_out_ridge_equals_refitting_without_each_rating(n_rated, n_factors) -> None:
    """Both forms (fewer ratings than factors, and more) against real refits."""
    rng = np.random.default_rng(n_rated)
    factors, residual = rng.normal(size=(n_rated, n_factors)), rng.normal(size=n_rated)
    left_p, left_b = ridge_with_bias_leave_one_out(factors, residual, 1.5, 0.3)
    assert left_p.shape == (n_rated, n_factors) and left_b.shape == (n_rated,)
    for i in range(n_rated):
        rest = np.arange(n_rated) != i
        p, b = ridge_with_bias(factors[rest], residual[rest], 1.5, 0.3)
        np.testing.assert_allclose(left_p[i], p, rtol=1e-9, atol=1e-10)
        assert left_b[i] == pytest.approx(b, rel=1e-9, abs=1e-10)


@pytest.mark.parametrize("name", ["svd", "als"])
def test_models_leave_one_out_fold_ins_equal_folding_in_without_each(name) -> None:
    model = models.create(name, seed=0).fit(Ratings.from_frame(TINY))
    items = model.items_of([10, 20, 30, 40])
    stars = np.array([5.0, 3.0, 4.0, 1.5], dtype=np.float32)
    fast = model._fold_in_without_each(items, stars, np.arange(items.size))
    for i, state in enumerate(fast):
        rest = np.arange(items.size) != i
        slow = model._fold_in(items[rest], stars[rest])
        np.testing.assert_array_equal(state.items, slow.items)
        np.testing.assert_allclose(state.factors, slow.factors, rtol=1e-5, atol=1e-6)
        assert state.bias == pytest.approx(slow.bias, rel=1e-6, abs=1e-7)
    # only some positions, in the order asked
    some = model._fold_in_without_each(items, stars, np.array([3, 1]))
    assert [s.items.tolist() for s in some] == [
        fast[3].items.tolist(),
        fast[1].items.tolist(),
    ]
    np.testing.assert_allclose(some[0].factors, fast[3].factors)


def test_ridge_with_no_ratings_is_zero() -> None:
    p, b = ridge_with_bias(np.zeros((0, 3)), np.zeros(0), reg_factors=0.0, reg_bias=0.0)
    np.testing.assert_array_equal(p, np.zeros(3))
    assert b == 0.0


def test_svd_fold_in_is_ridge_with_n_times_reg() -> None:
    model = models.create("svd", n_factors=3, n_epochs=20, reg_all=0.1, reg_bias=0.05)
    model.fit(Ratings.from_frame(TINY))
    movies, stars = [10, 30, 40], np.array([4.0, 2.5, 5.0])
    state = model.fold_in(movies, stars)
    items = model.items_of(movies)
    design = np.hstack([model.item_factors[items], np.ones((3, 1))])
    residual = stars - model.global_mean - model.item_bias[items]
    expected = augmented_lstsq(design, residual, 3 * np.array([0.1, 0.1, 0.1, 0.05]))
    np.testing.assert_allclose(state.factors, expected[:3], rtol=1e-5, atol=1e-6)
    assert state.bias == pytest.approx(expected[3], abs=1e-6)
    scores = model.global_mean + model.item_bias + state.bias + model.item_factors @ expected[:3]
    np.testing.assert_allclose(model.score(state), np.clip(scores, 0.5, 5), atol=1e-5)


# -- non-negative ridge -----------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    factors=arrays(np.float64, (6, 3), elements=st.floats(0, 3)),
    target=arrays(np.float64, 6, elements=st.floats(0.5, 5)),
    reg=st.floats(0.01, 5),
)
def test_nnls_ridge_matches_bounded_least_squares(factors, target, reg) -> None:
    p, b = nnls_ridge(factors, target, reg_factors=reg)
    assert b == 0.0 and np.all(p >= 0)
    stacked = np.vstack([factors, np.sqrt(reg) * np.eye(3)])
    rhs = np.concatenate([target, np.zeros(3)])
    # optimality (KKT): zero gradient where p > 0, gradient >= 0 where p sits on 0
    gradient = stacked.T @ (stacked @ p - rhs)
    scale = 1 + np.abs(stacked.T @ rhs).max()
    assert np.all(np.abs(gradient[p > 1e-12]) <= 1e-8 * scale)
    assert np.all(gradient[p <= 1e-12] >= -1e-8 * scale)
    # and no worse than scipy's general bounded solver
    expected = lsq_linear(stacked, rhs, bounds=(0, np.inf), tol=1e-12).x
    assert np.sum((stacked @ p - rhs) ** 2) <= np.sum((stacked @ expected - rhs) ** 2) + 1e-9


def test_nnls_ridge_with_signed_bias() -> None:
    rng = np.random.default_rng(1)
    factors = rng.uniform(0, 1, size=(12, 3))
    target = factors @ np.array([0.5, 0.0, 1.0]) - 0.7 + rng.normal(0, 0.05, 12)
    p, b = nnls_ridge(factors, target, reg_factors=0.2, reg_bias=0.1)
    stacked = np.vstack(
        [np.hstack([factors, np.ones((12, 1))]), np.diag(np.sqrt([0.2] * 3 + [0.1]))]
    )
    rhs = np.concatenate([target, np.zeros(4)])
    lower, upper = [0, 0, 0, -np.inf], [np.inf] * 4
    expected = lsq_linear(stacked, rhs, bounds=(lower, upper), tol=1e-12).x
    np.testing.assert_allclose(np.append(p, b), expected, atol=1e-6)
    assert b < 0


def test_nmf_fold_in_is_non_negative_ridge_with_n_times_reg() -> None:
    model = models.create("nmf", n_factors=2, n_epochs=30, reg_pu=0.2)
    model.fit(Ratings.from_frame(TINY))
    movies, stars = [10, 20, 50], np.array([4.0, 1.0, 5.0])
    state = model.fold_in(movies, stars)
    q = model.item_factors[model.items_of(movies)].astype(np.float64)
    stacked = np.vstack([q, np.sqrt(3 * 0.2) * np.eye(2)])
    expected = lsq_linear(stacked, np.append(stars, [0, 0]), bounds=(0, np.inf), tol=1e-12).x
    np.testing.assert_allclose(state.factors, expected, atol=1e-5)
    assert np.all(state.factors >= 0)
    np.testing.assert_allclose(
        model.score(state), np.clip(model.item_factors @ state.factors, 0.5, 5), rtol=1e-6
    )


def test_popular_fold_in_is_damped_bias() -> None:
    model = models.create("popular", damping=2.0, user_damping=1.0).fit(Ratings.from_frame(TINY))
    state = model.fold_in([10, 50], [5.0, 1.0])
    means = model.item_mean[model.items_of([10, 50])]
    assert state.bias == pytest.approx(((5.0 - means[0]) + (1.0 - means[1])) / 3.0, rel=1e-6)


# -- folding in a training user reproduces their trained scores --------------------------
@pytest.fixture(scope="module", params=["svd", "nmf", "popular"])
def trained_small(request, ml_small) -> models.Recommender:
    return models.create(request.param, seed=0).fit(ml_small.ratings)


def test_fold_in_reproduces_training_users(trained_small, ml_small) -> None:
    ratings = ml_small.ratings
    counts = np.diff(ratings.matrix.indptr)
    rows = np.random.default_rng(0).choice(np.flatnonzero(counts >= 20), 8, replace=False)
    for row in rows:
        user_id = int(ratings.user_ids[row])
        trained = trained_small.user_state(user_id)
        items, stars = ratings.user_row(row)
        folded = trained_small.fold_in(ratings.movie_ids[items].tolist(), stars.tolist())
        a, b = trained_small.score(trained), trained_small.score(folded)
        corr = np.corrcoef(a, b)[0, 1]
        assert corr >= 0.9, f"{trained_small.name}: user {user_id} correlation {corr:.3f}"
