"""``item_similarity`` / ``similar_items``: the same contract for every registered model,
and EASE's shrunk co-rating cosine by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from movierec import models
from movierec.data import Ratings
from movierec.errors import InvalidInput
from movierec.models import Recommender
from movierec.models.ease import co_rating_cosine

from .test_contract import UNKNOWN_MOVIE, quick


@pytest.fixture(scope="module", params=models.available())
def fitted(request, small_split, ml_small) -> Recommender:
    train, _ = small_split
    return quick(request.param, catalog=ml_small.catalog, seed=1).fit(train)


def most_rated(train: Ratings, rank: int = 0) -> int:
    return int(train.movie_ids[np.argsort(-train.item_counts(), kind="stable")[rank]])


def test_item_similarity_scores_every_movie_minus_one_to_one(fitted, small_split) -> None:
    train, _ = small_split
    similarity = fitted.item_similarity(most_rated(train))
    assert similarity.shape == (fitted.n_items,) and similarity.dtype == np.float32
    assert np.all(np.isfinite(similarity))
    assert similarity.min() >= -1.0 - 1e-5 and similarity.max() <= 1.0 + 1e-5
    with pytest.raises(InvalidInput, match=f"unknown movieId {UNKNOWN_MOVIE}"):
        fitted.item_similarity(UNKNOWN_MOVIE)


def test_similar_items_are_the_most_similar_other_movies(fitted, small_split) -> None:
    train, _ = small_split
    movie = most_rated(train)
    similarity = fitted.item_similarity(movie).astype(np.float64)
    similarity[fitted.items_of([movie])] = -np.inf
    picks = fitted.similar_items([movie], n=5)
    assert len(picks) == min(5, int((similarity > 0).sum()))
    assert movie not in picks and len(set(picks)) == len(picks)
    scores = similarity[fitted.items_of(picks)]
    assert np.all(scores > 0) and np.all(np.diff(scores) <= 0)
    rest = np.delete(similarity, fitted.items_of(picks))
    assert not picks or rest.max() <= scores[-1]
    if fitted.item_vectors() is not None or fitted.name == "ease":
        assert len(picks) == 5  # a model with any notion of similarity finds some


def test_similar_items_leave_out_exclude_and_every_asked_movie(fitted, small_split) -> None:
    train, _ = small_split
    movie, other = most_rated(train), most_rated(train, 1)
    picks = fitted.similar_items([movie], n=5)
    fewer = fitted.similar_items([movie], n=5, exclude=[*picks[:2], UNKNOWN_MOVIE])
    assert not set(picks[:2]) & set(fewer)
    assert fewer[: len(picks) - 2] == picks[2:]
    both = fitted.similar_items([movie, other, UNKNOWN_MOVIE], n=5)
    assert movie not in both and other not in both
    assert fitted.similar_items([UNKNOWN_MOVIE], n=5) == []
    assert fitted.similar_items([movie], n=0) == []


def test_similar_items_survive_save_and_load(fitted, small_split, tmp_path: Path) -> None:
    train, _ = small_split
    movie = most_rated(train, 2)
    loaded = models.load(fitted.save(tmp_path / "model.npz"))
    assert loaded.similar_items([movie], n=5) == fitted.similar_items([movie], n=5)
    np.testing.assert_array_equal(loaded.item_similarity(movie), fitted.item_similarity(movie))


def test_co_rating_cosine_by_hand() -> None:
    # users x items, "has rated": item 0 by users 0-3, item 1 by 0-2, item 2 by 3, item 3 by none
    rated = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]], dtype=np.int8)
    by_item = [np.flatnonzero(rated[:, j]) for j in range(4)]
    by_user = [np.flatnonzero(rated[u]) for u in range(4)]
    item_indptr = np.r_[0, np.cumsum([len(u) for u in by_item])]
    user_indptr = np.r_[0, np.cumsum([len(i) for i in by_user])]
    args = (item_indptr, np.concatenate(by_item), user_indptr, np.concatenate(by_user))
    out = co_rating_cosine(*args, item=0, shrink=1.0)
    # cosine c / sqrt(n_0 n_j), shrunk by c / (c + 1)
    assert out == pytest.approx([4 / 4 * 4 / 5, 3 / np.sqrt(12) * 3 / 4, 1 / 2 * 1 / 2, 0.0])
    assert co_rating_cosine(*args, item=3, shrink=1.0) == pytest.approx([0.0] * 4)
