"""Top-k: ``top_indices``'s tie rule, and ``top_k`` equal to ranking everything, for every
model and for EASE's kept-movies-only path."""

from __future__ import annotations

import numpy as np
import pytest

from movierec import models
from movierec.models.base import top_indices
from movierec.models.ease import EASE


def straightforward_top(values: np.ndarray, k: int, allowed: np.ndarray | None = None):
    """The ``k`` best of ``values`` among ``allowed`` by a full sort: value descending,
    then index ascending."""
    candidates = np.arange(values.size) if allowed is None else np.flatnonzero(allowed)
    order = np.lexsort((candidates, -values[candidates].astype(np.float64)))
    return candidates[order[:k]]


@pytest.mark.parametrize("k", [1, 3, 7, 20, 50])
def test_top_indices_keeps_the_lower_index_among_ties_at_the_cut(k: int) -> None:
    rng = np.random.default_rng(k)
    for _ in range(50):
        values = rng.integers(0, 6, 40).astype(np.float32)  # many ties everywhere
        np.testing.assert_array_equal(top_indices(values, k), straightforward_top(values, k))


def test_top_indices_of_fewer_values_than_k_sorts_them_all() -> None:
    values = np.array([1.0, 3.0, 3.0, 2.0], dtype=np.float32)
    assert top_indices(values, 10).tolist() == [1, 2, 3, 0]
    assert top_indices(values, 0).tolist() == []


def visitor_states(model, train, n: int = 12) -> list:
    """Fold-ins of ``n`` visitors who rated 15 of the 50 most-rated movies."""
    rng = np.random.default_rng(7)
    pool = train.movie_ids[np.argsort(-train.item_counts(), kind="stable")[:50]]
    return [
        model.fold_in(rng.choice(pool, 15, replace=False), rng.integers(1, 11, 15) / 2)
        for _ in range(n)
    ]


@pytest.fixture(scope="module", params=models.available())
def fitted(request, small_split, ml_small):
    train, _ = small_split
    klass = models.model_class(request.param)
    quick = {"n_epochs": 10} if "n_epochs" in klass.defaults else {}
    model = models.create(request.param, seed=2, **quick).with_catalog(ml_small.catalog)
    return model.fit(train)


def test_top_k_equals_sorting_the_whole_ranking(fitted, small_split) -> None:
    train, _ = small_split
    rng = np.random.default_rng(3)
    for state in visitor_states(fitted, train):
        ranking = fitted.rank(state)
        allowed = rng.random(fitted.n_items) < 0.7
        allowed[state.items] = False
        for k in (1, 5, 40):
            np.testing.assert_array_equal(
                fitted.top_k(state, k, allowed), straightforward_top(ranking, k, allowed)
            )
        np.testing.assert_array_equal(fitted.top_k(state, 5), straightforward_top(ranking, 5))
        got_rank, got_score = fitted.rank_and_score(state)
        np.testing.assert_array_equal(got_rank, ranking)
        np.testing.assert_array_equal(got_score, fitted.score(state))


@pytest.fixture(scope="module")
def ease_with_outsiders(small_split) -> EASE:
    """EASE whose kept movies are a small part of the catalogue (as at 25 M ratings)."""
    train, _ = small_split
    model = EASE(min_count=10, n_epochs=10, seed=4).fit(train)
    assert 0 < model.kept.size < model.n_items / 3
    return model


def test_ease_kept_stars_are_the_members_bit_for_bit(ease_with_outsiders, small_split) -> None:
    model = ease_with_outsiders
    for state in visitor_states(model, small_split[0]):
        np.testing.assert_array_equal(
            model._kept_stars(state), model.member.score(state)[model.kept]
        )


def test_ease_fast_top_k_equals_the_straightforward_ranking(
    ease_with_outsiders, small_split
) -> None:
    """From the kept movies alone when enough are allowed, from everything when not
    (few kept movies allowed, or k beyond them): always the full ranking's top k."""
    model = ease_with_outsiders
    kept = np.zeros(model.n_items, dtype=bool)
    kept[model.kept] = True
    rng = np.random.default_rng(5)
    for state in visitor_states(model, small_split[0]):
        ranking = model.rank(state)
        few_kept = ~kept | (rng.random(model.n_items) < 0.01)  # about 1% of kept allowed
        masks = [None, rng.random(model.n_items) < 0.5, few_kept]
        for allowed, k in [(m, k) for m in masks for k in (1, 5, 25)] + [
            (None, model.kept.size + 3)
        ]:
            np.testing.assert_array_equal(
                model.top_k(state, k, allowed), straightforward_top(ranking, k, allowed)
            )


def test_ease_top_k_scores_only_the_kept_movies(ease_with_outsiders, small_split, monkeypatch):
    model = ease_with_outsiders
    state = visitor_states(model, small_split[0], n=1)[0]
    expected = straightforward_top(model.rank(state), 5)

    def whole_catalogue(*args, **kwargs):
        raise AssertionError("top_k scored every movie")

    monkeypatch.setattr(model.member, "score", whole_catalogue)
    monkeypatch.setattr(model.member, "_score", whole_catalogue)
    np.testing.assert_array_equal(model.top_k(state, 5), expected)
