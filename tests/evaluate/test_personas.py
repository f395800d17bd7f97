"""Genre personas built from real ml-latest-small: who they are and what they rated."""

from __future__ import annotations

import math

import numpy as np
import pytest

from movierec.data.ratings import Ratings
from movierec.evaluate.personas import (
    HATED_STARS,
    LOVED_STARS,
    Persona,
    genre_personas,
    movie_genres,
    taste_shares,
)


@pytest.fixture(scope="module")
def train(ml_small) -> Ratings:
    return Ratings.from_frame(ml_small.frame)


@pytest.fixture(scope="module")
def personas(train, ml_small) -> list[Persona]:
    return genre_personas(train, ml_small.catalog)


def test_ninety_ordered_pairs_of_the_ten_most_rated_genres(personas, train, ml_small):
    assert len(personas) == 90
    pairs = {(p.loved_genre, p.hated_genre) for p in personas}
    assert len(pairs) == 90 and all(a != b for a, b in pairs)
    genres = {p.loved_genre for p in personas}
    assert genres == {p.hated_genre for p in personas} and len(genres) == 10
    # the ten genres with most ratings: every other genre has fewer
    item_genres = movie_genres(ml_small.catalog, train.movie_ids)
    counts = train.item_counts()
    per_genre: dict[str, int] = {}
    for g_set, n in zip(item_genres, counts, strict=True):
        for g in g_set:
            per_genre[g] = per_genre.get(g, 0) + int(n)
    assert min(per_genre[g] for g in genres) > max(
        n for g, n in per_genre.items() if g not in genres
    )


def test_loved_movies_are_in_the_loved_genre_only_and_well_known(personas, train, ml_small):
    counts = train.item_counts()
    well_known = set(train.movie_ids[np.argsort(-counts, kind="stable")[:300]].tolist())
    for p in personas:
        assert len(p.loved) == 8 and len(p.hated) == 6
        assert set(p.ratings.values()) == {LOVED_STARS, HATED_STARS}
        for movie in p.loved:
            genres = ml_small.catalog.get(movie).genres
            assert p.loved_genre in genres and p.hated_genre not in genres
        for movie in p.hated:
            genres = ml_small.catalog.get(movie).genres
            assert p.hated_genre in genres and p.loved_genre not in genres
        assert set(p.ratings) <= well_known


def test_personas_are_deterministic_by_seed(personas, train, ml_small):
    again = genre_personas(train, ml_small.catalog)
    assert again == personas
    other = genre_personas(train, ml_small.catalog, seed=1)
    assert [(p.loved_genre, p.hated_genre) for p in other] == [
        (p.loved_genre, p.hated_genre) for p in personas
    ]
    assert other != personas
    # a persona depends on its genres' positions and the seed, not on the other personas
    first, second = personas[0].loved_genre, personas[0].hated_genre
    two = genre_personas(train, ml_small.catalog, genres=[first, second])
    assert two[0] == personas[0] and len(two) == 2


def test_genres_from_a_mapping_give_the_same_personas(personas, train, ml_small):
    mapping = {int(m): g for m, g in ml_small.catalog.frame["genres"].items()}
    assert genre_personas(train, mapping) == personas
    assert genre_personas(train, mapping.get) == personas


def test_taste_shares_of_the_personas_own_movies(personas, ml_small):
    assert taste_shares([p.loved for p in personas], personas, ml_small.catalog) == (1.0, 0.0)
    assert taste_shares([p.hated for p in personas], personas, ml_small.catalog) == (0.0, 1.0)
    # half loved, half hated; only the first k count; empty lists are left out
    first = personas[0]
    mixed = [first.loved[:2] + first.hated[:2] + first.loved[2:]]
    assert taste_shares(mixed, [first], ml_small.catalog, k=4) == (0.5, 0.5)
    loved, hated = taste_shares([[], first.loved], [first, first], ml_small.catalog)
    assert (loved, hated) == (1.0, 0.0)
    assert all(math.isnan(v) for v in taste_shares([[]], [first], ml_small.catalog))
    with pytest.raises(ValueError, match="personas"):
        taste_shares([], [first], ml_small.catalog)
