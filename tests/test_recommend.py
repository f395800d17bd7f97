"""The recommend service on real ml-latest-small data."""

from __future__ import annotations

import pytest

from movierec import models
from movierec.errors import InvalidInput
from movierec.recommend import RecommendService, recommend

# Star Wars IV, Matrix, Toy Story, Godfather, Pulp Fiction, Forrest Gump
LIKES = {260: 5.0, 2571: 4.5, 1: 4.0, 858: 5.0, 296: 4.5, 356: 2.0}


@pytest.fixture(scope="module")
def svd(ml_small):
    return models.create("svd", n_epochs=10, seed=1).fit(ml_small.ratings)


@pytest.fixture(scope="module")
def service(svd, ml_small):
    return RecommendService(svd, ml_small.catalog)


def test_five_picks_with_fields_and_reasons(service):
    result = service.recommend(LIKES, year="any", n=5)
    assert len(result.items) == 5
    assert not result.fallback and result.model == "svd"
    stars = [r.predicted_stars for r in result.items]
    assert stars == sorted(stars, reverse=True)
    assert all(0.5 <= s <= 5 for s in stars)
    for rec in result.items:
        assert rec.movie.movie_id not in LIKES
        assert rec.movie.n_ratings >= service.min_ratings
        for because in rec.because:
            assert LIKES[because.movie_id] >= 3.0
    assert any(rec.because for rec in result.items)
    payload = result.to_dict()["recommendations"][0]
    assert {"movieId", "title", "year", "genres", "predicted_stars", "because", "reason"} <= set(
        payload
    )


@pytest.mark.parametrize(
    ("year", "check"), [("old", lambda y: y < 2010), ("new", lambda y: y >= 2010)]
)
def test_year_preference_is_respected(service, year, check):
    result = service.recommend(LIKES, year=year, n=10)
    assert len(result.items) == 10
    assert all(r.movie.year is not None and check(r.movie.year) for r in result.items)


def test_split_year_and_min_support_are_configurable(svd, ml_small):
    result = recommend(
        svd, ml_small.catalog, LIKES, year="old", n=5, split_year=1980, min_ratings=100
    )
    assert all(r.movie.year < 1980 and r.movie.n_ratings >= 100 for r in result.items)


def test_no_ratings_falls_back_to_popular(service):
    result = service.recommend({}, year="new", n=5)
    assert result.fallback and result.model == "popular"
    assert "popular" in result.message
    assert len(result.items) == 5
    assert all(r.movie.year >= 2010 for r in result.items)


def test_different_tastes_get_different_picks(service):
    action = service.recommend({260: 5, 1196: 5, 2571: 5, 1: 1, 2081: 1}, n=5)
    family = service.recommend({1: 5, 2081: 5, 588: 5, 260: 1, 1196: 1}, n=5)
    assert [r.movie.movie_id for r in action.items] != [r.movie.movie_id for r in family.items]


@pytest.mark.parametrize(
    ("ratings", "year", "n", "named"),
    [
        ({999999999: 4}, "any", 5, "999999999"),
        ({260: 6}, "any", 5, "6"),
        ({260: 0}, "any", 5, "0"),
        ({260: 3.3}, "any", 5, "3.3"),
        ({"abc": 3}, "any", 5, "abc"),
        ({260: 4}, "recent", 5, "recent"),
        ({260: 4}, "any", 0, "0"),
        ({260: 4}, "any", 101, "101"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_value(service, ratings, year, n, named):
    with pytest.raises(ValueError, match=named) as info:
        service.recommend(ratings, year=year, n=n)
    assert isinstance(info.value, InvalidInput)


def test_string_movie_ids_from_json_are_accepted(service):
    assert service.recommend({"260": 5, "1": "4.5"}, n=3).items


def test_ranking_uses_unclipped_estimates(svd):
    """Stars shown are clipped to 0.5-5; the order is not decided by ties at 5 stars."""
    import numpy as np

    state = svd.fold_in(list(LIKES), list(LIKES.values()))
    rank, stars = svd.rank(state), svd.score(state)
    np.testing.assert_allclose(stars, np.clip(rank, 0.5, 5.0), rtol=1e-6)
    assert stars.min() >= 0.5 and stars.max() <= 5.0
