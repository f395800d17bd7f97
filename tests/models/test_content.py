"""Content model: TF-IDF documents, leave-one-out scale, fold-in, catalogue handling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec import models
from movierec.data import Catalog, Ratings
from movierec.models.content import ContentModel, movie_tokens, tfidf_rows


def tiny_catalog() -> Catalog:
    frame = pd.DataFrame(
        {
            "title": ["A", "B", "C", "D"],
            "year": [2001, 2002, 2003, 2004],
            "genres": [("Comedy",), ("Comedy", "Drama"), ("Drama",), ("Horror",)],
            "tmdb_id": [1, 2, 3, 4],
            "n_ratings": [3, 3, 2, 1],
            "mean_rating": [4.0, 3.0, 2.5, 1.0],
        },
        index=pd.Index([10, 20, 30, 40], name="movieId"),
    )
    return Catalog(frame, tags={10: ["Funny ", "quirky"], 20: ["funny"]})


TINY = pd.DataFrame(
    {
        "userId": [1, 1, 1, 2, 2, 2, 3, 3, 3],
        "movieId": [10, 20, 30, 10, 20, 40, 20, 30, 40],
        "rating": [5.0, 4.0, 1.0, 4.0, 5.0, 2.0, 2.0, 5.0, 4.0],
    }
)


def test_documents_hold_genres_and_tags() -> None:
    docs = movie_tokens(tiny_catalog(), np.array([10, 20, 99]))
    assert docs[0] == ["genre:comedy", "tag:funny", "tag:quirky"]
    assert docs[1] == ["genre:comedy", "genre:drama", "tag:funny"]
    assert docs[2] == []  # not in the catalogue


def test_tfidf_rows_are_unit_length_and_weight_tags() -> None:
    docs = movie_tokens(tiny_catalog(), np.array([10, 20, 30, 40]))
    rows, vocab = tfidf_rows(docs, min_df=1, tag_weight=1.0)
    assert list(vocab) == ["genre:comedy", "genre:drama", "genre:horror", "tag:funny", "tag:quirky"]
    np.testing.assert_allclose(np.linalg.norm(rows.toarray(), axis=1), 1.0, rtol=1e-6)
    # min_df=2 drops "genre:horror" and "tag:quirky": movie 40 has no text left
    rows2, vocab2 = tfidf_rows(docs, min_df=2, tag_weight=1.0)
    assert "tag:quirky" not in vocab2 and rows2[3].nnz == 0
    heavy, _ = tfidf_rows(docs, min_df=1, tag_weight=3.0)
    funny = list(vocab).index("tag:funny")
    assert heavy[1, funny] > rows[1, funny]


def test_scale_is_least_squares_on_leave_one_out_similarities() -> None:
    ratings = Ratings.from_frame(TINY)
    model = ContentModel(min_df=1, profile_reg=1.0).fit(ratings, catalog=tiny_catalog())
    x = model.item_text.toarray().astype(np.float64)
    mu = ratings.global_mean
    features, residuals = [], []
    for user, rows in TINY.groupby("userId"):
        u = ratings.user_of(user)
        items = model.items_of(rows["movieId"])
        w = rows["rating"].to_numpy() - (mu + model.user_bias[u] + model.item_bias[items])
        for t, i in enumerate(items):
            others = np.delete(np.arange(items.size), t)
            profile = (w[others, None] * x[items[others]]).sum(0) / (items.size - 1 + 1.0)
            features.append(x[i] @ profile)
            residuals.append(w[t])
    features, residuals = np.array(features), np.array(residuals)
    assert model.scale == pytest.approx(features @ residuals / (features @ features), rel=1e-4)
    # a score is the baseline plus scale times the profile similarity
    state = model.user_state(1)
    w = state.stars - (mu + state.bias + model.item_bias[state.items])
    profile = (w[:, None] * x[state.items]).sum(0) / (state.items.size + 1.0)
    expected = mu + state.bias + model.item_bias + model.scale * (x @ profile)
    np.testing.assert_allclose(model.score(state), np.clip(expected, 0.5, 5), atol=1e-5)


def test_without_a_catalogue_it_warns_and_predicts_baselines() -> None:
    with pytest.warns(UserWarning, match="catalog"):
        model = ContentModel().fit(Ratings.from_frame(TINY))
    assert model.scale == 0.0 and model.item_vectors() is None
    state = model.fold_in([10, 40], [5.0, 1.0])
    np.testing.assert_allclose(
        model.score(state), model.global_mean + state.bias + model.item_bias, atol=1e-5
    )


@pytest.fixture(scope="module")
def fitted(small_split, ml_small) -> ContentModel:
    train, _ = small_split
    return ContentModel().with_catalog(ml_small.catalog).fit(train)


def test_fold_in_of_a_training_user_gives_their_scores(fitted: ContentModel, small_split) -> None:
    train, _ = small_split
    assert fitted.scale > 0 and fitted.vocabulary.size > 20  # genres and tags
    for row in (0, 11, 57):
        items, stars = train.user_row(row)
        trained = fitted.score(fitted.user_state(int(train.user_ids[row])))
        folded = fitted.score(fitted.fold_in(train.movie_ids[items], stars))
        np.testing.assert_allclose(folded, trained, atol=1e-4)


def test_beats_baselines_alone(fitted: ContentModel, small_split) -> None:
    train, test = small_split
    plain = ContentModel(min_df=10**6).with_catalog(fitted.catalog).fit(train)  # no text left
    assert plain.scale == 0.0

    def rmse(model: ContentModel) -> float:
        stars = model.predict(test["userId"], test["movieId"])
        return float(np.sqrt(np.mean((stars - test["rating"]) ** 2)))

    assert rmse(fitted) < rmse(plain)


def test_save_load_round_trip(fitted: ContentModel, small_split, tmp_path) -> None:
    train, test = small_split
    loaded = models.load(fitted.save(tmp_path / "content"))
    assert isinstance(loaded, ContentModel) and loaded.catalog is None
    np.testing.assert_array_equal(loaded.vocabulary, fitted.vocabulary)
    np.testing.assert_array_equal(
        loaded.predict(test["userId"], test["movieId"]),
        fitted.predict(test["userId"], test["movieId"]),
    )
    movies = train.movie_ids[[3, 8]].tolist()
    np.testing.assert_array_equal(
        loaded.score(loaded.fold_in(movies, [5.0, 2.5])),
        fitted.score(fitted.fold_in(movies, [5.0, 2.5])),
    )


def test_blocks_of_users_give_the_same_model(small_split, ml_small, monkeypatch) -> None:
    """At 25 M ratings the dense (users x vocabulary) sums are built a block of users at a
    time; a block of a few users gives the same scale and predictions as one block."""
    from movierec.models import content

    train, test = small_split
    whole = ContentModel().fit(train, catalog=ml_small.catalog)
    monkeypatch.setattr(content, "PROFILE_BLOCK_CELLS", 7 * whole.item_text.shape[1])
    blocked = ContentModel().fit(train, catalog=ml_small.catalog)
    assert blocked.scale == pytest.approx(whole.scale, rel=1e-9)
    np.testing.assert_allclose(
        blocked.predict(test["userId"], test["movieId"]),
        whole.predict(test["userId"], test["movieId"]),
        rtol=1e-9,
    )
