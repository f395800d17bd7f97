"""Item kNN with baselines: similarities by hand, neighbourhood term, Surprise parity."""

from __future__ import annotations

import tracemalloc

import numba
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from movierec import models
from movierec.data import Ratings
from movierec.errors import ModelError
from movierec.models import itemknn
from movierec.models.baselines import als_baselines
from movierec.models.itemknn import (
    ItemKNN,
    neighbourhood_offsets,
    pearson_baseline_neighbours,
)

# residuals e_ui (NaN: not rated) of 4 users on 3 movies
RESIDUALS = np.array(
    [
        [1.0, 0.5, -1.0],
        [-0.5, -1.0, np.nan],
        [np.nan, 2.0, 1.0],
        [0.3, np.nan, 0.2],
    ]
)


def similarity_by_hand(e: np.ndarray, i: int, j: int, shrinkage: float) -> float:
    common = ~np.isnan(e[:, i]) & ~np.isnan(e[:, j])
    a, b = e[common, i], e[common, j]
    n = common.sum()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)) * (n - 1) / (n - 1 + shrinkage))


def test_pearson_baseline_similarity_on_three_movies() -> None:
    filled = np.nan_to_num(RESIDUALS)
    residuals = sp.csr_matrix(filled)
    residuals.eliminate_zeros()
    assert residuals.nnz == 9
    indptr, items, sims = pearson_baseline_neighbours(
        residuals, shrinkage=1.0, min_support=1, max_neighbors=10
    )
    # (0, 1): users 0 and 1: 1.0 / sqrt(1.25 * 1.25) * 1 / 2 = 0.4
    assert similarity_by_hand(RESIDUALS, 0, 1, 1.0) == pytest.approx(0.4)
    expected = {
        0: [(1, 0.4)],  # (0, 2) is negative: not a neighbour
        1: [(0, 0.4), (2, similarity_by_hand(RESIDUALS, 1, 2, 1.0))],  # 0.4 > 0.257
        2: [(1, similarity_by_hand(RESIDUALS, 1, 2, 1.0))],
    }
    assert similarity_by_hand(RESIDUALS, 0, 2, 1.0) < 0
    for item, neighbours in expected.items():
        row = slice(indptr[item], indptr[item + 1])
        assert items[row].tolist() == [j for j, _ in neighbours]
        np.testing.assert_allclose(sims[row], [s for _, s in neighbours], rtol=1e-6)
    # min_support 3: no pair has three common raters
    indptr, _, _ = pearson_baseline_neighbours(residuals, 1.0, min_support=3, max_neighbors=10)
    assert indptr[-1] == 0


def test_baselines_are_surprise_als_steps() -> None:
    frame = pd.DataFrame(
        {"userId": [1, 1, 2, 2, 3], "movieId": [10, 20, 10, 30, 30], "rating": [5, 3, 4, 1, 2.0]}
    )
    ratings = Ratings.from_frame(frame)
    user_bias, item_bias = als_baselines(ratings, reg_user=2.0, reg_item=3.0, n_epochs=1)
    mu = frame["rating"].mean()
    # one epoch from zeros: items first (b_u = 0), then users against those b_i
    expected_items = [(5 + 4 - 2 * mu) / (3 + 2), (3 - mu) / (3 + 1), (1 + 2 - 2 * mu) / (3 + 2)]
    np.testing.assert_allclose(item_bias, expected_items)
    expected_user0 = (5 - mu - expected_items[0] + 3 - mu - expected_items[1]) / (2 + 2)
    assert user_bias[0] == pytest.approx(expected_user0)


def test_neighbourhood_term_uses_the_k_most_similar_rated_movies() -> None:
    # movie 0's neighbours, best first: 3 (0.9), 1 (0.6), 2 (0.3), 4 (0.1)
    nb_indptr = np.array([0, 4, 4, 4, 4, 4], dtype=np.int64)
    nb_items = np.array([3, 1, 2, 4], dtype=np.int32)
    nb_sims = np.array([0.9, 0.6, 0.3, 0.1], dtype=np.float32)
    # the user rated 1, 2, 4 (not 3) with residuals 1.0, -2.0, 0.5
    rated = (np.array([0, 3], np.int64), np.array([1, 2, 4], np.int32),
             np.array([1.0, -2.0, 0.5], np.float32))  # fmt: skip
    targets = (np.array([0, 1], np.int64), np.array([0], np.int32))
    tables = (nb_indptr, nb_items, nb_sims, 5)
    k2 = neighbourhood_offsets(*rated, *targets, *tables, 2, 1)
    assert k2[0] == pytest.approx((0.6 * 1.0 + 0.3 * -2.0) / (0.6 + 0.3))
    k9 = neighbourhood_offsets(*rated, *targets, *tables, 9, 1)
    assert k9[0] == pytest.approx((0.6 - 0.6 + 0.05) / 1.0)
    assert neighbourhood_offsets(*rated, *targets, *tables, 9, 4)[0] == 0.0  # min_k


@pytest.fixture(scope="module")
def fitted(small_split) -> ItemKNN:
    train, _ = small_split
    return ItemKNN().fit(train)


#: Surprise's KNNBaseline defaults (item-based, Pearson-baseline), in our names
SURPRISE_DEFAULTS = {"k": 40, "min_k": 1, "shrinkage": 100.0, "reg_user": 15.0,
                     "reg_item": 10.0, "bias_epochs": 10, "max_neighbors": 10_000}  # fmt: skip


@pytest.mark.slow
def test_matches_surprise_knnbaseline(small_split) -> None:
    surprise = pytest.importorskip("surprise")
    train, test = small_split
    ours = ItemKNN(**SURPRISE_DEFAULTS).fit(train)
    trainset = surprise.Dataset.load_from_df(
        train.to_frame(), surprise.Reader(rating_scale=(0.5, 5))
    ).build_full_trainset()
    algo = surprise.KNNBaseline(
        k=40,
        min_k=1,
        sim_options={"name": "pearson_baseline", "user_based": False, "shrinkage": 100},
        bsl_options={"method": "als", "reg_u": 15, "reg_i": 10, "n_epochs": 10},
        verbose=False,
    ).fit(trainset)
    sample = test.head(500)
    pairs = zip(sample.userId, sample.movieId, strict=True)
    theirs = np.array([algo.predict(u, m).est for u, m in pairs])
    np.testing.assert_allclose(ours.predict(sample.userId, sample.movieId), theirs, atol=1e-4)


def test_fold_in_of_a_training_user_gives_their_scores(fitted: ItemKNN, small_split) -> None:
    train, _ = small_split
    for row in (0, 11, 57):
        items, stars = train.user_row(row)
        trained = fitted.score(fitted.user_state(int(train.user_ids[row])))
        folded = fitted.score(fitted.fold_in(train.movie_ids[items], stars))
        np.testing.assert_allclose(folded, trained, atol=1e-4)
    # and scores equal pairwise predictions
    user = int(train.user_ids[11])
    np.testing.assert_allclose(
        fitted.score(fitted.user_state(user))[:40],
        fitted.predict([user] * 40, train.movie_ids[:40]),
        atol=1e-5,
    )


def test_save_load_round_trip(fitted: ItemKNN, small_split, tmp_path) -> None:
    _, test = small_split
    loaded = models.load(fitted.save(tmp_path / "knn"))
    assert isinstance(loaded, ItemKNN) and loaded.params == fitted.params
    np.testing.assert_array_equal(loaded.nb_sims, fitted.nb_sims)
    np.testing.assert_array_equal(
        loaded.predict(test["userId"], test["movieId"]),
        fitted.predict(test["userId"], test["movieId"]),
    )


def test_scores_pushed_from_rated_movies_equal_the_neighbour_walk(small_split) -> None:
    """One visitor's scores come from the transposed neighbour table (work: the rated
    movies' in-degrees); they equal walking every movie's list (the batch path)."""
    from movierec.models.itemknn import ItemKNN

    train, _ = small_split
    model = ItemKNN(k=5, min_k=2).fit(train)  # small k: many movies need the k best only
    rng = np.random.default_rng(0)
    for n_rated in (1, 3, 15, 60):
        movies = rng.choice(train.movie_ids, n_rated, replace=False)
        state = model.fold_in(movies.tolist(), (rng.integers(1, 11, n_rated) / 2).tolist())
        items = np.asarray(state.items, dtype=np.int32)
        residual = state.stars - (model.global_mean + state.bias + model.item_bias[items])
        walked = model._offsets(
            (np.array([0, items.size]), items, residual.astype(np.float32)),
            (np.array([0, model.n_items]), np.arange(model.n_items, dtype=np.int32)),
        )
        expected = (model.global_mean + state.bias + model.item_bias + walked).astype(np.float32)
        np.testing.assert_allclose(model.score(state), np.clip(expected, 0.5, 5), atol=1e-5)


def test_refuses_a_fit_over_its_memory_budget_before_starting(small_split, monkeypatch) -> None:
    train, _ = small_split
    need = itemknn.fit_bytes(train.n_users, train.n_items, train.nnz, 500, numba.get_num_threads())
    started = []
    monkeypatch.setattr(itemknn, "als_baselines", lambda *a, **k: started.append(1))
    model = ItemKNN(memory_budget_gb=need / 2 / 2**30)
    with pytest.raises(ModelError) as caught:
        model.fit(train)
    message = str(caught.value)
    assert "\n" not in message and not started
    assert f"{need:,} bytes" in message and "memory_budget_gb=" in message
    assert "max_neighbors=500" in message
    monkeypatch.undo()
    ItemKNN(memory_budget_gb=need * 1.01 / 2**30).fit(train)  # just enough: fits


@pytest.mark.parametrize("max_neighbors", [1, 500])
def test_fit_bytes_bounds_what_a_fit_allocates(ml_small, max_neighbors: int) -> None:
    """The estimate is at least the traced peak of ``_fit`` (numpy and numba arrays),
    and not padded: within a factor of 1.5 of it."""
    ratings = ml_small.ratings
    model = ItemKNN(max_neighbors=max_neighbors)
    model._set_ids(ratings.user_ids, ratings.movie_ids)
    model.global_mean = ratings.global_mean
    model._fit(ratings, progress=False)  # compiled and warm
    tracemalloc.start()
    try:
        model._fit(ratings, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    need = itemknn.fit_bytes(
        ratings.n_users, ratings.n_items, ratings.nnz, max_neighbors, numba.get_num_threads()
    )
    assert peak <= need <= 1.5 * peak
