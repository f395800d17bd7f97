"""Blend: least-squares weights on held-out ratings, member fold-in, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec import models
from movierec.data import Ratings
from movierec.errors import InvalidInput
from movierec.models.blend import Blend, BlendState

MEMBERS = {
    "members": ["als", "itemknn"],
    "member_params": {"als": {"n_factors": 8, "n_epochs": 5, "reg": 0.15}},
    "validation_fraction": 0.2,
}


@pytest.fixture(scope="module")
def fitted(small_split) -> Blend:
    train, _ = small_split
    return Blend(seed=4, **MEMBERS).fit(train)


def test_weights_are_least_squares_on_the_held_out_ratings(fitted: Blend, small_split) -> None:
    train, _ = small_split
    frame = train.to_frame()
    held_out = np.random.default_rng(4).random(len(frame)) < 0.2
    part = Ratings.from_frame(frame[~held_out])
    check = frame[held_out]
    columns = []
    for index, name in enumerate(MEMBERS["members"]):
        params = MEMBERS["member_params"].get(name, {})
        member = models.create(name, seed=4 + index, **params).fit(part)
        columns.append(member.predict(check["userId"], check["movieId"]) - part.global_mean)
    design = np.column_stack(columns)
    target = check["rating"].to_numpy() - part.global_mean
    expected = np.linalg.solve(design.T @ design, design.T @ target)
    np.testing.assert_allclose(fitted.weights, expected, rtol=1e-6)
    assert np.all(fitted.weights > 0)


def test_predictions_and_scores_are_the_weighted_members(fitted: Blend, small_split) -> None:
    train, test = small_split
    mu = fitted.global_mean
    blended = mu + sum(
        w * (m.predict(test["userId"], test["movieId"]) - mu)
        for w, m in zip(fitted.weights, fitted.members, strict=True)
    )
    np.testing.assert_allclose(
        fitted.predict(test["userId"], test["movieId"]), np.clip(blended, 0.5, 5), atol=1e-9
    )
    movies, stars = train.movie_ids[[2, 7, 40]].tolist(), [4.0, 1.5, 5.0]
    state = fitted.fold_in(movies, stars)
    assert isinstance(state, BlendState) and len(state.members) == 2
    expected = mu + sum(
        w * (m.score(m.fold_in(movies, stars)) - mu)
        for w, m in zip(fitted.weights, fitted.members, strict=True)
    )
    np.testing.assert_allclose(fitted.score(state), np.clip(expected, 0.5, 5), atol=1e-5)


def test_fold_in_of_a_training_user_tracks_their_trained_scores(fitted: Blend, small_split) -> None:
    train, _ = small_split
    for row in (0, 11, 57):
        items, stars = train.user_row(row)
        trained = fitted.score(fitted.user_state(int(train.user_ids[row])))
        folded = fitted.score(fitted.fold_in(train.movie_ids[items], stars))
        assert np.corrcoef(trained, folded)[0, 1] >= 0.9


def test_is_about_as_good_as_its_best_member(fitted: Blend, small_split) -> None:
    """On 3,700 held-out ratings the blend may not win, but it must not lose much."""
    _, test = small_split

    def rmse(model) -> float:
        stars = model.predict(test["userId"], test["movieId"])
        return float(np.sqrt(np.mean((stars - test["rating"]) ** 2)))

    assert rmse(fitted) < min(rmse(m) for m in fitted.members) + 0.005


def test_save_load_round_trip(fitted: Blend, small_split, tmp_path) -> None:
    train, test = small_split
    path = fitted.save(tmp_path / "blend")
    with np.load(path, allow_pickle=False) as npz:
        assert "m_0.als.item_factors" in npz.files and "m_1.itemknn.nb_sims" in npz.files
    loaded = models.load(path)
    assert isinstance(loaded, Blend) and [m.name for m in loaded.members] == ["als", "itemknn"]
    np.testing.assert_array_equal(loaded.weights, fitted.weights)
    np.testing.assert_array_equal(
        loaded.predict(test["userId"], test["movieId"]),
        fitted.predict(test["userId"], test["movieId"]),
    )
    movies = train.movie_ids[[3, 8]].tolist()
    np.testing.assert_array_equal(
        loaded.score(loaded.fold_in(movies, [5.0, 2.5])),
        fitted.score(fitted.fold_in(movies, [5.0, 2.5])),
    )


def test_too_few_ratings_give_equal_weights() -> None:
    frame = pd.DataFrame(
        {"userId": [1, 1, 2, 2], "movieId": [10, 20, 20, 30], "rating": [5.0, 3.0, 4.0, 1.0]}
    )
    model = Blend(**MEMBERS).fit(Ratings.from_frame(frame))
    np.testing.assert_array_equal(model.weights, [0.5, 0.5])


@pytest.mark.parametrize(
    "params, field",
    [
        ({"members": []}, "members"),
        ({"members": ["als", "als"]}, "members"),
        ({"members": ["blend"]}, "members"),
        ({"members": ["no_such_model"]}, "model"),
        ({"members": ["als"], "member_params": {"svd": {}}}, "member_params"),
        ({"members": ["als"], "member_params": {"als": 3}}, "member_params"),
        ({"members": ["als"], "member_params": {"als": {"bogus": 1}}}, "bogus"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_bad_parameters_are_named(params: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Blend(**params)
    assert caught.value.field == field
