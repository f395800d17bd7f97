"""Similar movies: the model's collaborative similarity blended with genres and tags."""

from __future__ import annotations

import numpy as np
import pytest

from movierec import models
from movierec.similar import SIMILAR_MIN_RATINGS, SimilarMovies


@pytest.fixture(scope="module")
def finder(ml_small) -> SimilarMovies:
    """Similar movies of the app's default model (``ease``) on all of ml-latest-small."""
    model = models.create("ease", seed=0).fit(ml_small.ratings)
    return SimilarMovies(model, ml_small.catalog)


def genres_of(finder: SimilarMovies, movie_id: int) -> set[str]:
    return set(finder.catalog.frame.at[movie_id, "genres"]) - {"(no genres listed)"}


def test_rarely_rated_movies_get_movies_of_their_genres(finder) -> None:
    frame = finder.catalog.frame
    rare = frame[frame["n_ratings"].between(5, 29) & frame["genres"].map(len).gt(0)]
    picked = rare.index[:: max(1, len(rare) // 40)][:40]  # 40 spread over the rare ones
    shares = []
    for movie_id in picked:
        similar = finder.similar(int(movie_id), 10)
        assert len(similar) == 10
        genres = genres_of(finder, int(movie_id))
        shares.append(np.mean([bool(genres & genres_of(finder, m)) for m in similar]))
    # content carries them: nearly every listed movie shares a genre (noise shared ~half)
    assert np.mean(shares) >= 0.9 and min(shares) >= 0.5


def test_a_movie_the_model_does_not_know_is_matched_on_content(finder) -> None:
    frame = finder.catalog.frame
    unknown = [
        int(m)
        for m in frame.index[frame["genres"].map(len).gt(0)]
        if not finder.model.has_movie(int(m))
    ]
    movie_id = unknown[0]
    similar = finder.similar(movie_id, 5)
    assert len(similar) == 5
    assert all(genres_of(finder, movie_id) & genres_of(finder, m) for m in similar)
    assert finder.similar(10**9, 5) == []  # not in the catalogue at all


def test_never_itself_or_excluded_and_only_movies_people_rated(finder) -> None:
    toy_story = 1
    first = finder.similar(toy_story, 10)
    assert len(first) == 10 and toy_story not in first
    counts = finder.catalog.frame["n_ratings"]
    assert all(counts[m] >= SIMILAR_MIN_RATINGS for m in first)
    again = finder.similar(toy_story, 10, exclude={first[0], first[3], 10**9})
    assert first[0] not in again and first[3] not in again
    assert [m for m in first if m not in (first[0], first[3])] == again[:8]
    assert finder.similar(toy_story, 0) == []


def test_well_rated_movies_lean_on_the_model(finder) -> None:
    """With many ratings on both sides the model's similarity weighs most: the movie the
    model finds most similar is in the list even where content disagrees."""
    toy_story = 1
    model_first = finder.model.similar_items([toy_story], n=1)[0]
    assert model_first in finder.similar(toy_story, 10)
    scores = finder.scores(toy_story)
    assert scores.shape == (len(finder.catalog),)


@pytest.mark.parametrize("year", ["old", "new"])
def test_a_year_preference_keeps_only_movies_of_those_years(finder, year) -> None:
    years = finder.catalog.frame["year"]
    for movie_id in (1, 2571, 122904):  # Toy Story, The Matrix, Deadpool (2016)
        every = finder.similar(movie_id, 10)
        chosen = finder.similar(movie_id, 10, year=year, split_year=2010)
        assert len(chosen) == 10 and movie_id not in chosen
        assert all((years[m] < 2010) == (year == "old") for m in chosen)
        # the same order as without the preference, those of other years left out
        kept = [m for m in every if (years[m] < 2010) == (year == "old")]
        assert chosen[: len(kept)] == kept
    assert finder.similar(1, 10, year="any") == finder.similar(1, 10)


def test_movies_without_a_year_are_neither_old_nor_new(finder) -> None:
    frame = finder.catalog.frame
    no_year = {int(m) for m in frame.index[frame["year"].isna()]}
    assert no_year  # ml-latest-small has a few
    for year in ("old", "new"):
        found = {m for movie_id in no_year for m in finder.similar(movie_id, 20, year=year)}
        assert found and not found & no_year


def test_an_unknown_year_preference_is_invalid_input(finder) -> None:
    from movierec.errors import InvalidInput

    with pytest.raises(InvalidInput, match="unknown year preference 'recent'"):
        finder.similar(1, 10, year="recent")


def test_the_default_split_year_is_the_recommend_services() -> None:
    from movierec.recommend import DEFAULT_SPLIT_YEAR
    from movierec.similar import SPLIT_YEAR

    assert SPLIT_YEAR == DEFAULT_SPLIT_YEAR
