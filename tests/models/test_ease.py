"""EASE: the closed form by hand, its ranking rule, fold-in, round trip and onboarding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec import models
from movierec.data import Ratings
from movierec.errors import InvalidInput, ModelError
from movierec.evaluate import metrics
from movierec.evaluate.protocols import onboarding_visitors
from movierec.evaluate.splits import parse_split, user_folds
from movierec.models.ease import EASE, ease_weights, fit_bytes, kept_items, weighted_rows

# 5 users x 4 movies: who rated what
SEEN = np.array(
    [
        [1, 1, 0, 0],
        [1, 1, 1, 0],
        [0, 1, 1, 1],
        [1, 0, 0, 1],
        [1, 1, 0, 1],
    ],
    dtype=np.float64,
)


def test_ease_weights_are_the_closed_form() -> None:
    gram = SEEN.T @ SEEN
    weights = ease_weights(gram, l2=2.0)
    precision = np.linalg.inv(gram + 2.0 * np.eye(4))
    expected = np.eye(4) - precision @ np.diag(1.0 / np.diag(precision))
    np.testing.assert_allclose(weights, expected, atol=1e-12)
    np.testing.assert_array_equal(np.diag(weights), 0.0)


def test_each_column_is_a_ridge_regression_on_the_other_movies() -> None:
    """EASE's zero-diagonal constraint = regress movie j on the others with penalty l2."""
    weights = ease_weights(SEEN.T @ SEEN, l2=2.0)
    for j in range(4):
        others = np.delete(np.arange(4), j)
        x = SEEN[:, others]
        ridge = np.linalg.solve(x.T @ x + 2.0 * np.eye(3), x.T @ SEEN[:, j])
        np.testing.assert_allclose(weights[others, j], ridge, atol=1e-12)


def test_no_movie_kept_gives_empty_weights() -> None:
    assert ease_weights(np.zeros((0, 0)), 1.0).shape == (0, 0)


def test_kept_items_by_count_then_cap() -> None:
    counts = np.array([5, 1, 9, 5, 3, 9])
    np.testing.assert_array_equal(kept_items(counts, 3, 10), [0, 2, 3, 4, 5])
    # the 3 most counted; ties (5, 5) go to the lower index
    np.testing.assert_array_equal(kept_items(counts, 3, 3), [0, 2, 5])
    assert kept_items(counts, 10, 3).size == 0


def test_weighted_rows_equals_numpys_row_by_row_sum_bit_for_bit() -> None:
    """The kernel adds float32 products in float64 exactly as ``out += w * row`` does."""
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(30, 500)).astype(np.float32)
    rows, weights = rng.choice(30, 15, replace=False), rng.integers(1, 11, 15) / 2 - 1.5
    expected = np.zeros(500)
    for row, weight in zip(rows.tolist(), weights.tolist(), strict=True):
        expected += weight * matrix[row]
    np.testing.assert_array_equal(weighted_rows(matrix, rows, weights), expected)


def test_weighted_rows_is_a_vector_matrix_product() -> None:
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = weighted_rows(matrix, np.array([2, 0]), np.array([0.5, -2.0]))
    np.testing.assert_allclose(out, np.array([0.5, -2.0]) @ matrix[[2, 0]])
    np.testing.assert_array_equal(weighted_rows(matrix, np.zeros(0, int), np.zeros(0)), 0.0)


def _tiny_ratings() -> Ratings:
    users, movies = np.nonzero(SEEN)
    stars = np.array([5, 4, 3, 4, 2, 1, 4, 5, 4.5, 5, 3, 2, 0.5])
    frame = pd.DataFrame({"userId": users + 1, "movieId": (movies + 1) * 10, "rating": stars})
    return Ratings.from_frame(frame)


@pytest.fixture(scope="module")
def tiny() -> EASE:
    """The SEEN pattern with stars, movies 10..40; every movie kept (min_count 1)."""
    return EASE(l2=2.0, min_count=1, n_epochs=5).fit(_tiny_ratings())


def test_fit_builds_the_closed_form_on_who_rated_what(tiny: EASE) -> None:
    np.testing.assert_array_equal(tiny.kept, np.arange(4))
    np.testing.assert_allclose(tiny.item_item, ease_weights(SEEN.T @ SEEN, 2.0), atol=1e-6)


def test_rank_is_relevance_times_star_gain(tiny: EASE) -> None:
    """A 5-star rating pulls by ``5 - like_offset``; a 1-star one is a dislike, pushing by
    ``dislike_weight * (1 - 3)``; the pull on ``j`` is divided by ``(1 + n_j) **
    popularity_debias``; positive relevance is multiplied by ``(stars / 5) ** star_power``."""
    state = tiny.fold_in([10, 30], [5.0, 1.0])
    p = tiny.params
    w = np.array([5.0 - p["like_offset"], p["dislike_weight"] * (1.0 - 3.0)])
    counts = SEEN.sum(axis=0)
    s = w @ ease_weights(SEEN.T @ SEEN, 2.0)[[0, 2]] / (1.0 + counts) ** p["popularity_debias"]
    s += p["popularity"] * np.log1p(counts) / np.log1p(counts.max())
    np.testing.assert_allclose(tiny.relevance(state), s, atol=1e-5)
    stars = tiny.score(state).astype(np.float64)
    expected = np.where(s > 0, s * (stars / 5.0) ** p["star_power"], s)
    np.testing.assert_allclose(tiny.rank(state), expected, rtol=1e-5, atol=1e-6)


def test_the_ranking_before_dislikes_counted_is_a_parameter_setting(tiny: EASE) -> None:
    """``dislike_weight=None, popularity_debias=0, star_power=3, min_count=50``: every
    rating weighs ``stars - like_offset`` and only the star gain multiplies, as before."""
    old = EASE(l2=2.0, min_count=1, n_epochs=5, dislike_weight=None, popularity_debias=0.0,
               star_power=3.0).fit(_tiny_ratings())  # fmt: skip
    state = old.fold_in([10, 30], [5.0, 1.0])
    w = np.array([5.0, 1.0]) - old.params["like_offset"]
    counts = SEEN.sum(axis=0)
    s = w @ ease_weights(SEEN.T @ SEEN, 2.0)[[0, 2]]
    s += old.params["popularity"] * np.log1p(counts) / np.log1p(counts.max())
    stars = old.score(state).astype(np.float64)
    expected = np.where(s > 0, s * (stars / 5.0) ** 3.0, s)
    np.testing.assert_allclose(old.rank(state), expected, rtol=1e-5, atol=1e-6)


def test_a_dislike_pushes_harder_the_fewer_stars(tiny: EASE) -> None:
    weights = tiny.rating_weights(np.array([0.5, 1.0, 2.5, 3.0, 5.0]))
    assert weights[0] < weights[1] < weights[2] < 0 < weights[3] < weights[4]


def test_low_stars_push_companions_down(tiny: EASE) -> None:
    loved = tiny.relevance(tiny.fold_in([10], [5.0]))
    hated = tiny.relevance(tiny.fold_in([10], [0.5]))
    companion = int(np.argmax(loved))
    assert hated[companion] < 0 < loved[companion]


def test_movies_outside_the_item_item_matrix_rank_last(small_split) -> None:
    train, _ = small_split
    model = EASE(min_count=5, n_epochs=5).fit(train)
    assert 0 < model.kept.size < train.n_items
    rank = model.rank(model.user_state(int(train.user_ids[0])))
    rest = np.setdiff1d(np.arange(train.n_items), model.kept)
    assert rank[rest].max() < rank[model.kept].min()
    stars = model.score(model.user_state(int(train.user_ids[0])))
    order = rest[np.argsort(-rank[rest], kind="stable")]
    assert np.all(np.diff(stars[order]) <= 1e-6)  # among themselves: by predicted stars


def test_stars_and_predictions_are_the_members(small_split) -> None:
    train, test = small_split
    model = EASE(n_epochs=5).fit(train)
    state = model.fold_in(train.movie_ids[[0, 3, 8]].tolist(), [4.0, 2.5, 5.0])
    np.testing.assert_array_equal(model.score(state), model.member.score(state))
    np.testing.assert_array_equal(
        model.predict(test["userId"], test["movieId"]),
        model.member.predict(test["userId"], test["movieId"]),
    )


@pytest.mark.parametrize("bad", [{"l2": 0.0}, {"min_count": 2.5}, {"star_power": -1.0}])
def test_rejects_bad_parameters(bad: dict) -> None:
    with pytest.raises(InvalidInput) as caught:
        EASE(**bad)
    assert caught.value.field == next(iter(bad))


@pytest.fixture(scope="module")
def small_model(small_split) -> EASE:
    train, _ = small_split
    return EASE(min_count=5, seed=3).fit(train)


def test_fold_in_of_a_training_user_ranks_as_trained(small_model: EASE, small_split) -> None:
    train, _ = small_split
    overlaps = []
    for row in range(0, 120, 12):
        user = int(train.user_ids[row])
        trained = small_model.user_state(user)
        folded = small_model.fold_in(train.movie_ids[trained.items].tolist(), trained.stars)
        a, b = small_model.rank(trained), small_model.rank(folded)
        a[trained.items] = b[trained.items] = -np.inf
        top_a, top_b = np.argsort(-a)[:20], np.argsort(-b)[:20]
        overlaps.append(np.intersect1d(top_a, top_b).size / 20)
    assert np.mean(overlaps) >= 0.8


def test_save_load_reproduces_ranks(small_model: EASE, small_split, tmp_path: Path) -> None:
    train, _ = small_split
    loaded = models.load(small_model.save(tmp_path / "ease.npz"))
    assert isinstance(loaded, EASE)
    np.testing.assert_array_equal(loaded.item_item, small_model.item_item)
    for state_of in (
        lambda m: m.fold_in(train.movie_ids[[1, 2, 30]].tolist(), [4.5, 1.0, 5.0]),
        lambda m: m.user_state(int(train.user_ids[5])),
        lambda m: m.fold_in([], []),
    ):
        a, b = state_of(small_model), state_of(loaded)
        np.testing.assert_array_equal(small_model.rank(a), loaded.rank(b))
        np.testing.assert_array_equal(small_model.score(a), loaded.score(b))


def test_same_seed_same_ranks(small_model: EASE, small_split) -> None:
    train, _ = small_split
    again = EASE(min_count=5, seed=3).fit(train)
    state = train.movie_ids[[4, 9]].tolist(), [5.0, 3.0]
    np.testing.assert_array_equal(
        again.rank(again.fold_in(*state)), small_model.rank(small_model.fold_in(*state))
    )


def test_visitor_who_rated_nothing_gets_popular_well_rated_movies(small_model: EASE) -> None:
    rank = small_model.rank(small_model.fold_in([], []))
    assert np.unique(rank).size > rank.size // 2  # no mass of ties
    top = np.argsort(-rank)[:10]
    popularity = small_model.popularity  # increases with the rating count
    assert np.median(popularity[top]) > np.median(popularity[small_model.kept])


def test_onboarding_ranking_beats_popularity(ml_small) -> None:
    """The onboarding protocol in small: held-out users reveal their ratings of 15 of the
    50 most-rated movies and are scored on their other ratings >= 4."""
    train_frame, held_out = user_folds(ml_small.frame, parse_split("holdout:0.2"), seed=7)[0]
    train = Ratings.from_frame(train_frame)
    visitors, _ = onboarding_visitors(train, held_out, seed=7)
    visitors = [v for v in visitors if (v.target_stars >= 4).any()]
    assert len(visitors) > 80

    def ndcg(model: models.Recommender) -> float:
        scores = np.empty((len(visitors), train.n_items))
        rows, cols, n_relevant = [], [], []
        for row, v in enumerate(visitors):
            state = model.fold_in(train.movie_ids[v.revealed], v.revealed_stars)
            scores[row] = model.rank(state)
            scores[row, v.revealed] = -np.inf
            liked = v.target[v.target_stars >= 4]
            rows.append(np.full(liked.size, row))
            cols.append(liked)
            n_relevant.append(liked.size)
        ranks = metrics.rank_rows(scores)[1]
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        per_user = metrics.user_ranking_metrics(rows, ranks[rows, cols], np.array(n_relevant), [10])
        return float(per_user["ndcg@10"].mean())

    ease = ndcg(EASE(n_epochs=20).fit(train))
    popular = ndcg(models.create("popular").fit(train))
    assert ease > 1.3 * popular


# -- scale: sized before allocating, in place, float32 ------------------------------------
def test_fit_matches_the_float64_closed_form(small_split) -> None:
    """The numba Gram + in-place float32 Cholesky inverse = the float64 reference."""
    train, _ = small_split
    model = EASE(min_count=5, n_epochs=1).fit(train)
    seen = train.matrix[:, model.kept].astype(bool).astype(np.float64)
    expected = ease_weights((seen.T @ seen).toarray(), float(model.params["l2"]))
    np.testing.assert_allclose(model.item_item, expected, atol=1e-5)


def test_fit_bytes_counts_the_dense_matrix_and_the_kept_ratings() -> None:
    assert fit_bytes(1000, 0) == 4 * 1000 * 1000 + 4 * 1000 * 1000
    assert fit_bytes(20_000, 10) == 4 * 20_000**2 + 4 * 1024 * 20_000 + 200
    assert fit_bytes(59_000, 0) / 2**30 > 12  # why the whole catalogue is not kept


def test_over_budget_without_shrinking_refuses_before_allocating(small_split) -> None:
    train, _ = small_split
    model = EASE(min_count=1, memory_budget_gb=0.001, fit_to_budget=False, n_epochs=1)
    with pytest.raises(ModelError) as caught:
        model.fit(train)
    message = str(caught.value)
    assert "\n" not in message
    assert "GB" in message and "memory_budget_gb=0.001" in message
    need = fit_bytes(int((train.item_counts() >= 1).sum()), train.nnz) / 2**30
    assert f"{need:.2f} GB" in message


def test_over_budget_shrinks_to_the_most_rated_movies(small_split) -> None:
    train, _ = small_split
    budget_gb = 0.001
    model = EASE(min_count=1, memory_budget_gb=budget_gb, n_epochs=1).fit(train)
    counts = train.item_counts()
    assert 0 < model.kept.size < (counts >= 1).sum()
    assert fit_bytes(model.kept.size, int(counts[model.kept].sum())) <= budget_gb * 2**30
    more = kept_items(counts, 1, model.kept.size + 1)
    assert fit_bytes(more.size, int(counts[more].sum())) > budget_gb * 2**30
    rest = np.setdiff1d(np.arange(train.n_items), model.kept)
    assert counts[model.kept].min() >= counts[rest].max()  # the most rated ones


@pytest.mark.parametrize("bad", [{"memory_budget_gb": 0}, {"fit_to_budget": "yes"}])
def test_rejects_bad_budget_parameters(bad: dict) -> None:
    with pytest.raises(InvalidInput) as caught:
        EASE(**bad)
    assert caught.value.field == next(iter(bad))


def test_rank_users_is_rank_for_many_states(small_model: EASE, small_split) -> None:
    train, _ = small_split
    states = [small_model.user_state(int(u)) for u in train.user_ids[:7]]
    states.append(small_model.fold_in(train.movie_ids[[1, 2, 30]].tolist(), [4.5, 1.0, 5.0]))
    states.append(small_model.fold_in([], []))
    batched = small_model.rank_users(states)
    assert batched.dtype == np.float32 and batched.shape == (9, train.n_items)
    for row, state in enumerate(states):
        np.testing.assert_allclose(batched[row], small_model.rank(state), rtol=1e-5, atol=1e-6)
    assert small_model.rank_users([]).shape == (0, train.n_items)


def test_score_users_is_score_for_many_states(small_model: EASE, small_split) -> None:
    train, _ = small_split
    states = [small_model.user_state(int(u)) for u in train.user_ids[:5]]
    batched = small_model.score_users(states)
    assert batched.dtype == np.float32
    for row, state in enumerate(states):
        np.testing.assert_allclose(batched[row], small_model.score(state), rtol=1e-5, atol=1e-5)


def test_loaded_item_item_is_mapped_from_the_file(small_model: EASE, tmp_path: Path) -> None:
    """Arrays are read straight from a memory map of the file (checksums verified), not
    copied: the item-item matrix is a read-only view."""
    loaded = models.load(small_model.save(tmp_path / "ease.npz"))
    assert not loaded.item_item.flags.writeable and not loaded.item_item.flags.owndata
    np.testing.assert_array_equal(loaded.item_item, small_model.item_item)
