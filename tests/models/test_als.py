"""ALS: each half-step solves the ridge regression (exactly, or by warm-started conjugate
gradient); fold-in is the user half-step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec import models
from movierec.data import Ratings
from movierec.errors import InvalidInput
from movierec.models.als import ALS, solve_side

FAST = {"n_factors": 8, "n_epochs": 8}


def ridge_by_hand(factors, bias, rated, stars, mu, reg, reg_bias):
    """Normal equations of ``sum (s - mu - d_j - y_j.x - c)^2 + n reg |x|^2 + reg_bias c^2``."""
    design = np.column_stack([factors[rated], np.ones(len(rated))])
    target = np.asarray(stars) - mu - bias[rated]
    penalty = np.diag([len(rated) * reg] * factors.shape[1] + [reg_bias])
    return np.linalg.solve(design.T @ design + penalty, design.T @ target)


def test_half_step_is_the_closed_form_ridge_solve() -> None:
    # 3 rows; row 0 rates cols 0, 2; row 1 rates col 1; row 2 rates nothing
    indptr = np.array([0, 2, 3, 3], dtype=np.int64)
    indices = np.array([0, 2, 1], dtype=np.int32)
    stars = np.array([4.0, 2.0, 5.0], dtype=np.float32)
    other = np.array([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8]])
    other_bias = np.array([0.1, -0.2, 0.3])
    factors, bias = np.full((3, 2), 9.0), np.full(3, 9.0)
    solve_side(indptr, indices, stars, 3.5, other, other_bias, 0.1, 2.0, factors, bias)
    for row, rated, given in [(0, [0, 2], [4.0, 2.0]), (1, [1], [5.0])]:
        expected = ridge_by_hand(other, other_bias, rated, given, 3.5, 0.1, 2.0)
        np.testing.assert_allclose(factors[row], expected[:2], rtol=1e-10)
        assert bias[row] == pytest.approx(expected[2], rel=1e-10)
    np.testing.assert_array_equal(factors[2], 0.0)
    assert bias[2] == 0.0


def test_trained_users_are_the_ridge_solve_against_final_items() -> None:
    frame = pd.DataFrame(
        {
            "userId": [1, 1, 1, 2, 2, 3, 3, 3],
            "movieId": [10, 20, 30, 10, 30, 20, 30, 40],
            "rating": [5.0, 3.0, 4.0, 4.0, 1.0, 2.0, 5.0, 3.5],
        }
    )
    model = ALS(n_factors=2, n_epochs=3, reg=0.2, reg_bias=1.0, seed=3).fit(
        Ratings.from_frame(frame)
    )
    q, b = model.item_factors.astype(np.float64), model.item_bias.astype(np.float64)
    for user, rows in frame.groupby("userId"):
        rated = model.items_of(rows["movieId"])
        expected = ridge_by_hand(q, b, rated, rows["rating"], model.global_mean, 0.2, 1.0)
        state = model.user_state(user)
        np.testing.assert_allclose(state.factors, expected[:2], atol=1e-5)
        assert state.bias == pytest.approx(expected[2], abs=1e-5)
        folded = model.fold_in(rows["movieId"], rows["rating"])
        np.testing.assert_allclose(folded.factors, state.factors, atol=1e-5)
        assert folded.bias == pytest.approx(state.bias, abs=1e-5)


@pytest.fixture(scope="module")
def fitted(small_split) -> ALS:
    train, _ = small_split
    return ALS(seed=0, **FAST).fit(train)


def test_fold_in_of_a_training_user_reproduces_their_scores(fitted: ALS, small_split) -> None:
    train, _ = small_split
    for row in (0, 11, 57):
        user = int(train.user_ids[row])
        items, stars = train.user_row(row)
        trained = fitted.score(fitted.user_state(user))
        folded = fitted.score(fitted.fold_in(train.movie_ids[items], stars))
        assert np.corrcoef(trained, folded)[0, 1] >= 0.999
        np.testing.assert_allclose(folded, trained, atol=1e-3)


def test_beats_the_global_mean_on_held_out_ratings(fitted: ALS, small_split) -> None:
    _, test = small_split
    stars = fitted.predict(test["userId"], test["movieId"])
    rmse = np.sqrt(np.mean((stars - test["rating"]) ** 2))
    assert rmse < np.sqrt(np.mean((fitted.global_mean - test["rating"]) ** 2)) - 0.05


def test_conjugate_gradient_fit_matches_exact_solves(fitted: ALS, small_split) -> None:
    """A few warm-started CG steps per half-step land where exact solves do: held-out
    predictions agree to a few hundredths of a star and RMSE to a thousandth."""
    train, test = small_split
    exact = ALS(seed=0, cg_steps=0, **FAST).fit(train)
    ours = fitted.predict(test["userId"], test["movieId"])
    theirs = exact.predict(test["userId"], test["movieId"])
    assert np.abs(ours - theirs).mean() < 0.02
    rmse = [np.sqrt(np.mean((p - test["rating"]) ** 2)) for p in (ours, theirs)]
    assert rmse[0] == pytest.approx(rmse[1], abs=0.001)


def test_save_load_round_trip(fitted: ALS, small_split, tmp_path) -> None:
    _, test = small_split
    loaded = models.load(fitted.save(tmp_path / "als"))
    assert isinstance(loaded, ALS) and loaded.params == fitted.params
    np.testing.assert_array_equal(loaded.item_factors, fitted.item_factors)
    np.testing.assert_array_equal(
        loaded.predict(test["userId"], test["movieId"]),
        fitted.predict(test["userId"], test["movieId"]),
    )


@pytest.mark.parametrize(
    "param, value", [("reg", -0.1), ("reg", 0.0), ("n_factors", 0), ("n_epochs", 1.5)]
)
def test_bad_parameters_are_named(param: str, value: float) -> None:
    with pytest.raises(InvalidInput, match=param) as caught:
        ALS(**{param: value})
    assert caught.value.field == param
