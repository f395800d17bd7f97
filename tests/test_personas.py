"""Picks as a movie fan sees them, with the default model as ``movierec train`` fits it
(default parameters, full epochs), on real ml-latest-small. tests/test_personal_picks.py
checks every served model on quick fits; this adds what a visitor sees of the default.

The personas come from the data (:func:`movierec.evaluate.personas.genre_personas`: for
each pair of the 10 most-rated genres, 8 well-known movies of one loved at 5 stars and 6
of the other hated at 1), not from hand-picked titles. Through the library
(``movierec.recommend.recommend``, which is what the web page calls):

- over all personas, the top 10 holds far more of the loved genre than of the hated one,
  and so it does persona by persona (all but a tenth at most);
- a visitor who liked nothing is told so, sees no high like-probability and no pick
  explained by a movie they disliked;

tests/web/test_library_is_the_app.py checks that the web page shows exactly these picks.
"""

from __future__ import annotations

import pytest

from movierec import models
from movierec.data import Dataset
from movierec.evaluate.personas import Persona, genre_personas, taste_shares
from movierec.recommend import RecommendationList, recommend

pytestmark = pytest.mark.slow

N = 10


@pytest.fixture(scope="module")
def default_model(ml_small: Dataset) -> models.Recommender:
    """The default model with its default parameters, as ``movierec train`` fits it."""
    return models.create("ease").fit(ml_small.ratings, catalog=ml_small.catalog)


@pytest.fixture(scope="module")
def personas(ml_small: Dataset) -> list[Persona]:
    return genre_personas(ml_small.ratings, ml_small.catalog, seed=0)


@pytest.fixture(scope="module")
def picks(default_model, ml_small: Dataset, personas) -> list[RecommendationList]:
    return [recommend(default_model, ml_small.catalog, p.ratings, n=N) for p in personas]


def test_the_loved_genre_outweighs_the_hated_one(personas, picks, ml_small: Dataset):
    lists = [[pick.movie.movie_id for pick in result.items] for result in picks]
    loved, hated = taste_shares(lists, personas, ml_small.catalog, k=N)
    assert hated < loved
    assert hated < 0.05
    one_by_one = [
        taste_shares([ids], [p], ml_small.catalog, k=N)
        for ids, p in zip(lists, personas, strict=True)
    ]
    worse = sum(h >= lv for lv, h in one_by_one)
    assert worse <= len(personas) // 10, f"{worse} personas get as much hated as loved genre"


def test_a_visitor_who_liked_nothing_is_told_so(default_model, ml_small: Dataset, personas):
    hated_only = {m: 1.0 for m in personas[0].hated} | {m: 2.0 for m in personas[1].hated}
    result = recommend(default_model, ml_small.catalog, hated_only, n=N)
    assert result.liked_nothing
    assert result.message and "liked" in result.message
    for pick in result.items:
        assert pick.like_probability is None or pick.like_probability < 0.9
        assert not set(m.movie_id for m in pick.because) & set(hated_only)
