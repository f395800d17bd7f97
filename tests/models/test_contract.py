"""The contract every registered model keeps, checked for each of ``models.available()``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec import models
from movierec.data import Ratings
from movierec.errors import InvalidInput, ModelError
from movierec.models import Recommender, UserState
from movierec.models.files import read_model_file, write_model_file

UNKNOWN_USER = 10**9
UNKNOWN_MOVIE = 10**9 + 7


def quick(name: str, catalog=None, **params) -> Recommender:
    """Model ``name`` with at most 20 training epochs, so the contract runs fast; models
    that read movie text get ``catalog`` (as ``movierec train`` gives them)."""
    klass = models.model_class(name)
    if "n_epochs" in klass.defaults:
        params.setdefault("n_epochs", min(20, klass.defaults["n_epochs"]))
    model = models.create(name, **params)
    if catalog is not None:
        model.with_catalog(catalog)
    return model


@pytest.fixture(scope="module", params=models.available())
def fitted(request, small_split, ml_small) -> Recommender:
    train, _ = small_split
    return quick(request.param, catalog=ml_small.catalog, seed=1).fit(train)


def in_star_range(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and values.min() >= 0.5 and values.max() <= 5.0)


def test_predict_gives_stars_per_pair(fitted: Recommender, small_split) -> None:
    _, test = small_split
    stars = fitted.predict(test["userId"], test["movieId"])
    assert stars.shape == (len(test),)
    assert in_star_range(stars)
    # better than guessing the global mean for everyone
    rmse = np.sqrt(np.mean((stars - test["rating"]) ** 2))
    assert rmse < np.sqrt(np.mean((fitted.global_mean - test["rating"]) ** 2))


def test_unknown_users_and_movies_fall_back(fitted: Recommender, small_split) -> None:
    train, _ = small_split
    user, movie = int(train.user_ids[0]), int(train.movie_ids[0])
    stars = fitted.predict(
        [UNKNOWN_USER, user, UNKNOWN_USER], [movie, UNKNOWN_MOVIE, UNKNOWN_MOVIE]
    )
    assert in_star_range(stars)
    assert stars[2] == pytest.approx(fitted.global_mean, abs=1e-6)
    assert fitted.predict([], []).shape == (0,)


def test_fold_in_names_an_unknown_movie(fitted: Recommender, small_split) -> None:
    train, _ = small_split
    with pytest.raises(InvalidInput, match=f"unknown movieId {UNKNOWN_MOVIE}") as caught:
        fitted.fold_in([int(train.movie_ids[0]), UNKNOWN_MOVIE], [4.0, 3.0])
    assert caught.value.field == "movieId"


@pytest.mark.parametrize("bad", [0.0, 5.5, -1.0, float("nan")])
def test_fold_in_rejects_stars_out_of_range(fitted: Recommender, small_split, bad) -> None:
    train, _ = small_split
    with pytest.raises(InvalidInput, match="between 0.5 and 5") as caught:
        fitted.fold_in(train.movie_ids[:2].tolist(), [4.0, bad])
    assert caught.value.field == "stars"


def test_score_rates_every_movie(fitted: Recommender, small_split) -> None:
    train, _ = small_split
    states = [
        fitted.user_state(int(train.user_ids[3])),
        fitted.fold_in(train.movie_ids[[0, 5, 9]].tolist(), [5.0, 0.5, 3.5]),
        fitted.fold_in([], []),  # a visitor who rated nothing still gets scores
    ]
    for state in states:
        assert isinstance(state, UserState)
        scores = fitted.score(state)
        assert scores.shape == (train.n_items,)
        assert scores.dtype == np.float32
        assert in_star_range(scores)


def test_user_state_lists_training_ratings(fitted: Recommender, small_split) -> None:
    train, _ = small_split
    state = fitted.user_state(int(train.user_ids[7]))
    items, stars = train.user_row(7)
    np.testing.assert_array_equal(np.sort(state.items), np.sort(items))
    assert stars.sum() == pytest.approx(state.stars.sum())
    with pytest.raises(InvalidInput, match=f"unknown userId {UNKNOWN_USER}"):
        fitted.user_state(UNKNOWN_USER)


def test_item_vectors_are_none_or_one_row_per_movie(fitted: Recommender) -> None:
    vectors = fitted.item_vectors()
    if vectors is not None:
        assert vectors.ndim == 2 and vectors.shape[0] == fitted.n_items
        assert vectors.dtype == np.float32
        assert np.all(np.isfinite(vectors))


def test_save_load_gives_identical_scores(fitted: Recommender, small_split, tmp_path: Path) -> None:
    train, test = small_split
    path = fitted.save(tmp_path / "model.npz")
    loaded = models.load(path)
    assert type(loaded) is type(fitted)
    assert loaded.params == fitted.params and loaded.seed == fitted.seed
    np.testing.assert_array_equal(loaded.movie_ids, fitted.movie_ids)
    movies, stars = train.movie_ids[[1, 2, 30]].tolist(), [4.5, 2.0, 5.0]
    for a, b in [
        (fitted.fold_in(movies, stars), loaded.fold_in(movies, stars)),
        (fitted.user_state(int(train.user_ids[0])), loaded.user_state(int(train.user_ids[0]))),
    ]:
        np.testing.assert_array_equal(fitted.score(a), loaded.score(b))
    np.testing.assert_array_equal(
        fitted.predict(test["userId"], test["movieId"]),
        loaded.predict(test["userId"], test["movieId"]),
    )
    assert type(models.model_class(fitted.name).load(path)) is type(fitted)
    for name, array in fitted._arrays().items():
        np.testing.assert_array_equal(loaded._arrays()[name], array, err_msg=name)


def test_saved_file_lists_a_checksum_of_every_array(fitted: Recommender, tmp_path: Path) -> None:
    meta, arrays = read_model_file(fitted.save(tmp_path / "model.npz"))
    assert set(meta["arrays"]) == set(arrays) == {
        "user_ids", "movie_ids", "item_counts", *(f"m_{name}" for name in fitted._arrays())
    }  # fmt: skip
    for name, array in arrays.items():
        assert meta["arrays"][name]["sha256"] == hashlib.sha256(array.tobytes()).hexdigest()


def test_load_refuses_any_array_of_the_wrong_size_or_dtype(
    fitted: Recommender, tmp_path: Path
) -> None:
    """Each model declares every array it saves (``array_specs``): a file whose checksums
    are right but one array is a row short, or of another dtype, is refused."""
    meta, arrays = read_model_file(fitted.save(tmp_path / "model.npz"))
    meta = {k: v for k, v in meta.items() if k not in ("format", "arrays")}
    path = tmp_path / "wrong.npz"
    for name, array in arrays.items():
        other = "S" if array.dtype.kind == "U" else "f4" if array.dtype == "f8" else "f8"
        other_dtype = array.astype(other)
        for wrong in (array[:-1], other_dtype) if array.size else (other_dtype,):
            write_model_file(path, {**arrays, name: wrong}, meta)
            with pytest.raises(ModelError, match=str(path)):
                models.load(path)


def test_same_seed_gives_identical_fit(fitted: Recommender, small_split, ml_small) -> None:
    train, test = small_split
    again = quick(fitted.name, catalog=ml_small.catalog, seed=1).fit(train)
    np.testing.assert_array_equal(
        again.predict(test["userId"], test["movieId"]),
        fitted.predict(test["userId"], test["movieId"]),
    )
    for name, array in fitted._arrays().items():
        np.testing.assert_array_equal(again._arrays()[name], array, err_msg=name)


@pytest.mark.parametrize("name", models.available())
def test_create_rejects_unknown_parameters(name: str) -> None:
    with pytest.raises(InvalidInput, match="no_such_param") as caught:
        models.create(name, no_such_param=3)
    assert caught.value.field == "no_such_param"


@pytest.mark.parametrize("name", models.available())
def test_unfitted_model_says_so(name: str) -> None:
    with pytest.raises(ModelError, match="not fitted"):
        models.create(name).score(UserState(np.zeros(0, np.int64), np.zeros(0, np.float32)))


@pytest.mark.parametrize("name", models.available())
def test_fit_on_tiny_data(name: str, ml_small) -> None:
    """Two users, three movies: fitting and folding in still work."""
    frame = pd.DataFrame(
        {"userId": [1, 1, 2, 2], "movieId": [10, 20, 20, 30], "rating": [5.0, 3.0, 4.0, 1.0]}
    )
    model = quick(name, catalog=ml_small.catalog).fit(Ratings.from_frame(frame))
    assert in_star_range(model.score(model.fold_in([10, 30], [4.0, 2.0])))
