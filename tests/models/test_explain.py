"""``Recommender.explain``: per pick, the rated movies whose leaving-out lowers its rank
score most, for every registered model."""

from __future__ import annotations

import numpy as np
import pytest

from movierec import models
from movierec.models import Recommender

from .test_contract import quick


@pytest.fixture(scope="module", params=models.available())
def fitted(request, small_split, ml_small) -> Recommender:
    train, _ = small_split
    return quick(request.param, catalog=ml_small.catalog, seed=1).fit(train)


def visitor(model: Recommender, small_split) -> tuple[list[int], list[float]]:
    """Eight of the most-rated training movies, four loved and four hated."""
    train, _ = small_split
    counts = np.bincount(train.matrix.indices, minlength=train.n_items)
    popular = [int(train.movie_ids[i]) for i in np.argsort(-counts)]
    chosen = [m for m in popular if model.has_movie(m)][:8]
    return chosen, [5.0, 4.5, 5.0, 4.0, 1.0, 1.5, 1.0, 2.0]


def test_explain_names_only_allowed_rated_movies_by_their_real_drop(fitted, small_split):
    movie_ids, stars = visitor(fitted, small_split)
    state = fitted.fold_in(movie_ids, stars)
    ranking = fitted.rank(state)
    ranking[state.items] = -np.inf
    picks = np.argsort(-ranking)[:5]
    liked = movie_ids[:4]
    named = fitted.explain(state, picks, liked, n=2)
    assert len(named) == picks.size
    everyone = fitted.rank_at([state], picks)[0]
    for k, reasons in enumerate(named):
        assert len(reasons) <= 2 and set(reasons) <= set(liked)
        drops = []
        for m in reasons:  # each named movie really lowers the pick when left out
            i = movie_ids.index(m)
            without = fitted.fold_in(movie_ids[:i] + movie_ids[i + 1 :], stars[:i] + stars[i + 1 :])
            drops.append(everyone[k] - fitted.rank_at([without], picks[k : k + 1])[0, 0])
        assert all(d > 0 for d in drops)
        assert drops == sorted(drops, reverse=True)
    if fitted.ranks_alike:  # every movie moves alike: nothing explains one pick
        assert named == [[] for _ in range(picks.size)]
    elif fitted.name in {"svd", "ease", "itemknn"}:
        assert any(named), "a personal model names at least one reason"


def test_explain_with_no_allowed_reason_names_nothing(fitted, small_split):
    movie_ids, stars = visitor(fitted, small_split)
    state = fitted.fold_in(movie_ids, stars)
    assert fitted.explain(state, np.array([0, 1]), reasons=[]) == [[], []]
    assert fitted.explain(state, np.array([], dtype=np.int64)) == []
