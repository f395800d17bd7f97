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
            assert because.movie_id in LIKES
    assert any(rec.because for rec in result.items)
    payload = result.to_dict()["recommendations"][0]
    assert {
        "movieId", "title", "year", "genres", "predicted_stars", "like_probability", "because",
        "reason"
    } <= set(payload)  # fmt: skip


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


# -- faithful explanations and the match figure ---------------------------------------
#: a visitor with varied stars: Star Wars IV, Matrix, Toy Story, Godfather, Pulp Fiction,
#: Forrest Gump, Titanic, Shrek, Fargo, Lion King
VARIED = {260: 5.0, 2571: 4.5, 1: 4.0, 858: 5.0, 296: 3.5, 356: 2.0, 1721: 1.5, 4306: 4.0,
          608: 4.5, 364: 3.0}  # fmt: skip


@pytest.fixture(scope="module", params=["ease", "svd", "nmf", "popular"])
def app_model(request, ml_small):
    """Each model the web app offers, fitted quickly on ml-latest-small."""
    params = {"ease": {"n_epochs": 8}, "svd": {"n_epochs": 8}, "nmf": {"n_epochs": 15}}
    model = models.create(request.param, seed=1, **params.get(request.param, {}))
    return RecommendService(model.fit(ml_small.ratings), ml_small.catalog)


def test_because_names_the_movie_whose_removal_lowers_the_pick_most(app_model):
    """Removing the first "because" movie lowers that pick's rank score more than
    removing any other rated movie, for every pick of every model."""
    result = app_model.recommend(VARIED, n=5)
    if app_model.model.name == "popular":  # one bias shifts every movie alike
        assert all(not r.because for r in result.items)
        return
    assert any(r.because for r in result.items)
    for rec in result.items:
        drops = app_model.leave_one_out_drops(VARIED, rec.movie.movie_id)
        if not rec.because:
            assert max(drops.values()) <= 0
            continue
        first = rec.because[0].movie_id
        others = [d for m, d in drops.items() if m != first]
        assert drops[first] > 0
        assert drops[first] >= max(others) - 1e-6, (rec.movie.title, drops)
        listed = [drops[m.movie_id] for m in rec.because]
        assert listed == sorted(listed, reverse=True)


def test_because_is_not_a_similarity_proxy_for_ease(ml_small):
    """EASE picks: the explanation follows EASE's item weights, so the first "because"
    movie is one whose weight towards the pick, times its centred stars, is positive."""
    import numpy as np

    model = models.create("ease", seed=1, n_epochs=8).fit(ml_small.ratings)
    service = RecommendService(model, ml_small.catalog)
    result = service.recommend(VARIED, n=5)
    offset = model.params["like_offset"]
    for rec in result.items:
        if not rec.because:
            continue
        pick = model._position[model.items_of([rec.movie.movie_id])[0]]
        first = model._position[model.items_of([rec.because[0].movie_id])[0]]
        if pick >= 0 and first >= 0:
            weight = float(model.item_item[first, pick])
            assert weight * (VARIED[rec.because[0].movie_id] - offset) > 0
    assert np.isfinite([r.score for r in result.items]).all()


def test_no_figure_without_calibration(app_model):
    """A model fitted without calibration (not through ``train_model``) shows no like
    probability at all rather than an uncalibrated one (tests/models/test_calibration.py
    covers calibrated models)."""
    result = app_model.recommend(VARIED, n=20)
    assert all(r.like_probability is None for r in result.items)
    assert all(r["like_probability"] is None for r in result.to_dict()["recommendations"])


def test_excluded_movies_are_never_picked(service):
    first = service.recommend(LIKES, n=5)
    hidden = [r.movie.movie_id for r in first.items[:2]]
    again = service.recommend(LIKES, n=5, exclude=hidden)
    picked = [r.movie.movie_id for r in again.items]
    assert not set(hidden) & set(picked)
    # the model's own first picks move up; later ones follow the genre mix (rerank.py)
    assert picked[:2] == [r.movie.movie_id for r in first.items[2:4]]
    popular = service.recommend({}, n=5)
    top = popular.items[0].movie.movie_id
    assert top not in [r.movie.movie_id for r in service.recommend({}, n=5, exclude=[top]).items]


def test_rank_at_the_picks_equals_the_models_rank(app_model):
    """The explanations' fast re-ranking at a few items (``Recommender.rank_at``, with
    its own code for ease and the factor models) equals ``rank_users`` there."""
    import numpy as np

    model = app_model.model
    states = [
        model.fold_in(list(VARIED), list(VARIED.values())),
        model.fold_in([260, 1, 364], [5.0, 1.0, 3.5]),
    ]
    items = model.items_of([2959, 4993, 58559, 6377, 32])
    expected = model.rank_users(states)[:, items]
    np.testing.assert_allclose(model.rank_at(states, items), expected, rtol=2e-4, atol=2e-5)


def test_a_genre_narrows_the_picks_and_the_popular_fallback(service):
    horror = service.recommend(LIKES, year="any", n=10, genre="Horror")
    assert len(horror.items) == 10
    assert all("Horror" in r.movie.genres for r in horror.items)
    unrestricted = service.recommend(LIKES, year="any", n=10)
    assert any("Horror" not in r.movie.genres for r in unrestricted.items)
    popular = service.recommend({}, year="any", n=5, genre="Horror")
    assert popular.fallback and all("Horror" in r.movie.genres for r in popular.items)
    assert "Horror" in service.genres and "(no genres listed)" not in service.genres
    with pytest.raises(InvalidInput, match="unknown genre 'Gore'") as info:
        service.recommend(LIKES, genre="Gore")
    assert info.value.field == "genre"


def test_only_ranks_just_the_given_movies_in_the_models_order(service):
    ratings = {260: 5.0, 1196: 5.0, 2571: 4.5, 1: 2.0}
    chosen = [4993, 356, 6, 858, 1210]  # 1210 is rated: never picked
    ratings[1210] = 4.0
    ranked = service.recommend(ratings, n=10, only=chosen, exclude=[6])
    ids = [r.movie.movie_id for r in ranked.items]
    assert sorted(ids) == [356, 858, 4993]  # excluded and rated ones left out
    # the same order and stars as those movies have in the full ranking
    full = service.recommend(ratings, n=100, year="any")
    stars = {r.movie.movie_id: r.predicted_stars for r in full.items}
    for r in ranked.items:
        if r.movie.movie_id in stars:
            assert r.predicted_stars == pytest.approx(stars[r.movie.movie_id])
    assert ranked.items[0].predicted_stars >= ranked.items[-1].predicted_stars
    # the year preference does not apply to movies the visitor chose
    old = service.recommend(ratings, n=10, year="new", only=[858])
    assert [r.movie.movie_id for r in old.items] == [858]
    assert service.recommend(ratings, n=5, only=[]).items == []


@pytest.mark.parametrize("genre", [None, "Comedy"])
def test_keep_gives_the_first_picks_of_the_longer_list_unchanged(service, genre):
    """``keep``: the pages rank 50 (the genre mix is re-ranked within them) and show 5;
    only those 5 are explained and calibrated, and they are exactly the first 5 of 50."""
    full = service.recommend(LIKES, n=50, genre=genre)
    first = service.recommend(LIKES, n=50, genre=genre, keep=5)
    assert len(full.items) == 50 and len(first.items) == 5
    assert first.items == full.items[:5]  # movies, stars, reasons and chances alike
    assert service.recommend({}, n=50, keep=3).items == service.recommend({}, n=50).items[:3]
    assert service.recommend(LIKES, n=4, keep=10).items == service.recommend(LIKES, n=4).items
    with pytest.raises(InvalidInput):
        service.recommend(LIKES, n=50, keep=0)
