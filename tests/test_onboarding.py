"""The onboarding strategies: no repeats, filters, year mix, end of catalogue, seeds,
and ``adaptive`` reacting to answers (issue 11; issue 8 part 2)."""

from __future__ import annotations

import numpy as np
import pytest

from movierec import models
from movierec.errors import InvalidInput
from movierec.onboarding import (
    STRATEGIES,
    Onboarding,
    choose_items,
    decode_positions,
    encode_positions,
    seen_probability,
)
from movierec.onboarding.index import rating_entropy

NEW = 2010


@pytest.fixture(scope="module")
def onboarding(ml_small) -> Onboarding:
    """ml-latest-small with a quickly fitted SVD (item factors for ``adaptive``)."""
    model = models.create("svd", n_factors=20, n_epochs=5).fit(ml_small.ratings)
    return Onboarding.build(ml_small.ratings, model, ml_small.catalog)


def page_through(onboarding: Onboarding, strategy: str, pages: int, **filters) -> list[list]:
    """A visitor who rates every third card asked, ``pages`` batches of 15."""
    ratings: dict[int, float] = {}
    shown: list[int] = []
    batches = []
    for page in range(pages):
        batch = onboarding.batch(ratings, shown, 15, strategy, seed=page, **filters)
        batches.append(batch)
        ids = [m.movie_id for m in batch.movies]
        ratings.update({m: 4.0 for m in ids[::3]})
        shown += ids
    return batches


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_strategy_never_asks_a_shown_or_rated_movie_again(onboarding, strategy):
    batches = page_through(onboarding, strategy, 6, min_new=5)
    ids = [m.movie_id for b in batches for m in b.movies]
    assert len(ids) == 90 and len(set(ids)) == 90
    rated_before = {356: 5.0, 318: 4.5}  # Forrest Gump, Shawshank
    batch = onboarding.batch(rated_before, [296], 15, strategy)
    assert not {m.movie_id for m in batch.movies} & {356, 318, 296}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_at_least_5_of_15_are_from_2010_on_and_older_ones_too(onboarding, strategy):
    for batch in page_through(onboarding, strategy, 3, min_new=5):
        years = [m.year for m in batch.movies]
        assert sum(y is not None and y >= NEW for y in years) >= 5
        assert sum(y is not None and y < NEW for y in years) >= 5


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_genre_and_year_preference_narrow_the_cards(onboarding, strategy):
    for batch in page_through(onboarding, strategy, 2, genre="Comedy", min_new=5):
        assert batch.movies and all("Comedy" in m.genres for m in batch.movies)
    old = onboarding.batch({}, [], 15, strategy, year="old")
    assert len(old.movies) == 15 and all(m.year < NEW for m in old.movies)
    new = onboarding.batch({}, [], 15, strategy, year="new")
    assert len(new.movies) == 15 and all(m.year >= NEW for m in new.movies)


def test_unknown_genre_strategy_or_year_is_refused_naming_the_field(onboarding):
    for kwargs, field in (
        ({"genre": "Comedyy"}, "genre"),
        ({"strategy": "smart"}, "strategy"),
        ({"year": "recent"}, "year"),
    ):
        strategy = kwargs.pop("strategy", "popular")
        with pytest.raises(InvalidInput) as err:
            onboarding.batch({}, [], 15, strategy, **kwargs)
        assert err.value.field == field


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_paging_a_genre_runs_out_and_says_so(onboarding, ml_small, strategy):
    genre = "Film-Noir"
    wanted = {m for m, g in ml_small.catalog.frame["genres"].items() if genre in g}
    assert 15 < len(wanted) < 200
    ratings: dict[int, float] = {}
    shown: list[int] = []
    seen: list[int] = []
    for _ in range(len(wanted) // 15 + 1):
        batch = onboarding.batch(ratings, shown, 15, strategy, genre=genre, min_new=5)
        seen += [m.movie_id for m in batch.movies]
        shown += [m.movie_id for m in batch.movies]
        if batch.exhausted:
            break
    assert batch.exhausted and len(seen) == len(set(seen)) and set(seen) == wanted
    after = onboarding.batch(ratings, shown, 15, strategy, genre=genre)
    assert after.movies == [] and after.exhausted


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_strategy_is_deterministic_for_a_seed(onboarding, strategy):
    answers = {356: 4.0, 2571: 5.0}
    one = onboarding.next_movies(answers, [1, 2], 15, strategy, seed=7, min_new=5)
    two = onboarding.next_movies(answers, [1, 2], 15, strategy, seed=7, min_new=5)
    assert one == two
    if strategy == "random-top":
        draws = {tuple(m.movie_id for m in onboarding.next_movies({}, [], 15, strategy, seed=s))
                 for s in range(4)}  # fmt: skip
        assert len(draws) > 1


def test_adaptive_reacts_to_the_answers(onboarding):
    first = [m.movie_id for m in onboarding.next_movies({}, [], 15, "adaptive")]
    half = len(first) // 2
    likes_first_half = {m: 5.0 for m in first[:half]}  # and has not seen the rest
    likes_second_half = {m: 5.0 for m in first[half:]}
    a = onboarding.next_movies(likes_first_half, first, 15, "adaptive")
    b = onboarding.next_movies(likes_second_half, first, 15, "adaptive")
    assert a != b
    assert not {m.movie_id for m in a + b} & set(first)


def test_seen_probability_is_popularity_without_answers_and_follows_them(onboarding):
    index = onboarding.index
    share = index.counts / index.n_users
    assert np.allclose(seen_probability(index, {}), share)
    # people who saw Toy Story (1) more often saw Toy Story 2 (3114) than people who did not
    toy, toy2 = index.position[1], index.position[3114]
    assert seen_probability(index, {toy: 4.0})[toy2] > share[toy2]
    assert seen_probability(index, {toy: None})[toy2] < share[toy2]


def test_choose_items_returns_fewer_only_when_candidates_run_out(onboarding):
    index = onboarding.index
    order = index.popularity_order
    shown = order[: index.n_items - 3]
    picks = choose_items(index, {}, shown.tolist(), 15, "popular")
    assert sorted(picks.tolist()) == sorted(order[index.n_items - 3 :].tolist())


def test_catalogue_pages_are_disjoint_mixed_and_end(onboarding):
    pages = []
    movies, n_pages = onboarding.catalogue_page(1, 15, min_new=5)
    top = onboarding.index.movie_ids[onboarding.index.popularity_order[0]]
    assert top in [m.movie_id for m in movies]  # page 1 holds the most-rated movie
    for page in range(1, 6):
        movies, _ = onboarding.catalogue_page(page, 15, min_new=5)
        assert sum(m.year >= NEW for m in movies) >= 5
        pages += [m.movie_id for m in movies]
    assert len(pages) == len(set(pages)) == 75
    comedy, comedy_pages = onboarding.catalogue_page(1, 15, genre="Comedy")
    assert all("Comedy" in m.genres for m in comedy) and comedy_pages < n_pages
    last, _ = onboarding.catalogue_page(n_pages, 15, min_new=5)
    assert 1 <= len(last) <= 15
    assert onboarding.catalogue_page(n_pages + 1, 15) == ([], n_pages)
    with pytest.raises(InvalidInput) as err:
        onboarding.catalogue_page(0, 15)
    assert err.value.field == "page"


def test_every_catalogue_page_together_is_the_whole_catalogue(onboarding, ml_small):
    _, n_pages = onboarding.catalogue_page(1, 100, min_new=34)
    ids = [m.movie_id for p in range(1, n_pages + 1)
           for m in onboarding.catalogue_page(p, 100, min_new=34)[0]]  # fmt: skip
    assert len(ids) == len(set(ids)) == len(ml_small.catalog)


def test_the_shown_set_round_trips_compactly(onboarding):
    ids = [356, 318, 296, 1, 2571, 79132]
    text = onboarding.encode_shown(ids)
    assert sorted(onboarding.decode_shown(text)) == sorted(ids)
    many = onboarding.index.movie_ids[onboarding.index.popularity_order[:600]].tolist()
    assert len(onboarding.encode_shown(many)) < 1000
    assert onboarding.decode_shown("not base64 !!") == []
    assert onboarding.decode_shown(12) == []
    assert decode_positions(encode_positions([0, 5, 7], 8), 8) == [0, 5, 7]


def test_rating_entropy_in_bits():
    hist = np.zeros((3, 10))
    hist[0, [2, 7]] = 5  # two values, equally often
    hist[1, :] = 1  # every value once
    got = rating_entropy(hist)
    assert got == pytest.approx([1.0, np.log2(10), 0.0])
