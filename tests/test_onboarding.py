"""The onboarding strategies: no repeats, filters, year mix, end of catalogue, seeds,
and ``adaptive`` reacting to answers (issue 11; issue 8 part 2)."""

from __future__ import annotations

import numpy as np
import pytest

from movierec import models
from movierec.errors import InvalidInput
from movierec.onboarding import (
    FIRST_PAGES,
    STRATEGIES,
    Onboarding,
    choose_items,
    decode_positions,
    encode_positions,
    seen_probability,
)
from movierec.onboarding.index import rating_entropy
from movierec.onboarding.simulate import KEPT_PLACES, TOP_K, Simulator, _answer, _gains, _ndcg_of

NEW = 2010


@pytest.fixture(scope="module", params=["ease", "svd"])
def onboarding(request, ml_small) -> Onboarding:
    """ml-latest-small with the app's ``ease`` (``adaptive`` simulates visitors through
    its item-item matrix) or a quickly fitted SVD (``adaptive`` on item factors)."""
    params = {"n_factors": 20, "n_epochs": 5} if request.param == "svd" else {}
    model = models.create(request.param, **params).fit(ml_small.ratings)
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


def test_adaptive_first_batches_vary_with_the_seed_and_repeat_for_one(onboarding):
    def first(seed: int) -> list[int]:
        return [m.movie_id for m in onboarding.next_movies({}, [], 15, "adaptive", seed=seed)]

    batches = [first(seed) for seed in range(6)]
    assert first(3) == batches[3]
    if onboarding.index.simulator is None:  # the factor version has no variety
        assert all(b == batches[0] for b in batches)
        return
    assert len({tuple(b) for b in batches}) > 1
    common = set.intersection(*(set(b) for b in batches))
    assert len(common) < 15  # not one fixed set in another order


def test_a_first_page_is_one_of_first_pages_draws_chosen_once(onboarding):
    """Nothing answered or shown: the page for ``seed`` is the draw of ``seed % FIRST_PAGES``,
    the same movies a fresh choice with that seed gives; answers bypass the cache."""
    index = onboarding.index
    fresh = choose_items(index, {}, [], 15, "adaptive", seed=11, min_new=5)
    expected = [int(index.movie_ids[i]) for i in fresh]
    for seed in (11 + FIRST_PAGES, 11, 11 + 7 * FIRST_PAGES):  # the first one fills it
        page = onboarding.batch({}, [], 15, "adaptive", seed=seed, min_new=5)
        assert [m.movie_id for m in page.movies] == expected
        page.movies.clear()  # a caller's copy: the remembered page is untouched
    answered = {expected[0]: 4.5}
    after = onboarding.batch(answered, expected, 15, "adaptive", seed=11 + FIRST_PAGES)
    fresh_after = choose_items(
        index,
        {**{i: None for i in index.items_of(expected)}, int(fresh[0]): 4.5},
        index.items_of(expected),
        15,
        "adaptive",
        seed=11 + FIRST_PAGES,
    )
    assert [m.movie_id for m in after.movies] == [int(index.movie_ids[i]) for i in fresh_after]
    with pytest.raises(InvalidInput):
        onboarding.batch({}, [], 15, "no-such-strategy", seed=3)


def test_first_pages_prepared_before_serving_are_the_draws_a_visitor_would_get(
    ml_small, monkeypatch
):
    """``serve`` draws every first page before forking; afterwards a new visitor's page
    is a look-up (no choice made in a request) and the same page a lazy draw gives."""
    model = models.create("svd", n_factors=20, n_epochs=5).fit(ml_small.ratings)
    prepared = Onboarding.build(ml_small.ratings, model, ml_small.catalog)
    lazy = Onboarding.build(ml_small.ratings, model, ml_small.catalog)
    assert prepared.prepare_first_pages(15) == FIRST_PAGES
    assert prepared.prepare_first_pages(15) == 0  # all there already

    import movierec.onboarding as onboarding_module

    def no_choice(*args, **kwargs):
        raise AssertionError("a prepared first page was drawn again")

    for seed in (0, 5, FIRST_PAGES - 1, FIRST_PAGES + 3, 2**31 + 17):
        with monkeypatch.context() as patched:
            patched.setattr(onboarding_module, "choose_items", no_choice)
            page = prepared.batch({}, [], 15, "adaptive", seed=seed, min_new=5)
        expected = lazy.batch({}, [], 15, "adaptive", seed=seed, min_new=5)
        assert [m.movie_id for m in page.movies] == [m.movie_id for m in expected.movies]


def test_adaptive_simulates_visitors_with_ease_and_not_without(onboarding, request):
    simulator = onboarding.index.simulator
    assert (simulator is not None) == (request.node.callspec.params["onboarding"] == "ease")
    if simulator is not None:
        # what the greedy asks first is among the movies most visitors can answer
        first = onboarding.index.items_of(
            [m.movie_id for m in onboarding.next_movies({}, [], 15, "adaptive")]
        )
        share = onboarding.index.counts / onboarding.index.n_users
        assert share[first].mean() > np.sort(share)[-300:].mean() / 2


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


def toy_simulator() -> Simulator:
    """4 users who all rated both candidates 5 stars and like ranked movies 0 and 10.

    12 movies ranked by a falling base relevance. Candidate 0 is ranked movie 0 (already
    first: asking it only takes a hit away); candidate 1 is movie 11, whose ``B`` row lifts
    movie 10 to the top.
    """
    n_users, n_ranked = 4, 12
    liked = np.zeros((n_users, n_ranked), dtype=bool)
    liked[:, [0, 10]] = True
    b = np.zeros((2, n_ranked), dtype=np.float32)
    b[1, 10] = 1.0
    return Simulator(
        cand_pos=np.array([100, 111]),
        cand_col=np.array([0, 11]),
        stars=np.full((n_users, 2), 5.0, dtype=np.float32),
        pulls=np.full((n_users, 2), 3.5, dtype=np.float32),  # 5 stars - like_offset 1.5
        liked=liked,
        n_liked=np.full(n_users, 2),
        b=b,
        base=np.linspace(0.12, 0.01, n_ranked).astype(np.float32),
        gain=np.ones(n_ranked, dtype=np.float32),
        user_rows=np.arange(n_users),
        cand_of=np.full(200, -1),
    )


def test_the_greedy_asks_what_lifts_hits_not_a_sure_hit():
    simulator = toy_simulator()
    everyone = np.ones(4)
    both = np.ones(2, dtype=bool)
    assert simulator.greedy(1, everyone, both, np.zeros(0, np.int64)).tolist() == [111]
    assert simulator.greedy(2, everyone, both, np.zeros(0, np.int64)).tolist() == [111, 100]
    only_first = np.array([True, False])
    assert simulator.greedy(2, everyone, only_first, np.zeros(0, np.int64)).tolist() == [100]
    # asked before: not asked again
    assert simulator.greedy(2, everyone, both, np.array([1])).tolist() == [100]


def test_simulated_ndcg_by_hand():
    simulator = toy_simulator()
    now = np.zeros(4)
    rel = np.repeat(simulator.base[None, :], 4, axis=0)
    n_left = simulator.n_liked.copy()
    top = np.full((4, KEPT_PLACES), -1)
    _ndcg_of(rel, n_left, simulator.liked, simulator.gain, np.ones(4, np.float32), now, top)
    ideal = 1 + 1 / np.log2(3)
    assert now == pytest.approx(np.full(4, 1 / ideal))  # movie 0 first, movie 10 eleventh
    assert top[:, :KEPT_PLACES].tolist() == [list(range(KEPT_PLACES))] * 4


def reference_ndcg(scores: np.ndarray, liked: np.ndarray, n_left: int) -> float:
    """NDCG@TOP_K of one user by a full sort (ties: lower place first), in NumPy."""
    if n_left <= 0:
        return 0.0
    order = np.lexsort((np.arange(scores.size), -scores))[:TOP_K]
    order = order[np.isfinite(scores[order])]
    discount = 1 / np.log2(np.arange(TOP_K) + 2)
    return float(discount[: order.size][liked[order]].sum() / discount[: min(n_left, TOP_K)].sum())


def test_simulated_gains_match_a_full_sort():
    """The kernel sorts only the movies above a floor from each user's best places so
    far: its gains must equal a plain full sort's, after answers have moved the ranking."""
    rng = np.random.default_rng(3)
    n_users, n_ranked, n_cands, offset = 40, 80, 25, 1.5
    stars = np.where(
        rng.random((n_users, n_cands)) < 0.4, rng.integers(1, 6, (n_users, n_cands)), 0
    )
    stars = stars.astype(np.float32)
    pulls = np.where(stars > 0, stars - offset, 0).astype(np.float32)
    liked = rng.random((n_users, n_ranked)) < 0.2
    b = rng.normal(0, 0.1, (n_cands, n_ranked)).astype(np.float32)
    cand_col = np.where(np.arange(n_cands) % 3 == 0, -1, rng.permutation(n_ranked)[:n_cands])
    gain = rng.random(n_ranked).astype(np.float32)
    rel = np.repeat(rng.normal(0, 0.2, n_ranked).astype(np.float32)[None, :], n_users, axis=0)
    n_left = liked.sum(axis=1) + 2
    top = np.full((n_users, KEPT_PLACES), -1)
    now = np.empty(n_users)
    gone = np.zeros((n_users, n_ranked), dtype=bool)  # the reference's answered movies
    _ndcg_of(rel, n_left, liked, gain, np.ones(n_users, np.float32), now, top)
    for asked in (4, 7, 11):  # answers move relevance and take movies out
        raw = rel.copy()
        _answer(rel, n_left, liked, stars[:, asked], pulls[:, asked], b[asked], cand_col[asked])
        _ndcg_of(rel, n_left, liked, gain, stars[:, asked], now, top)
        if cand_col[asked] >= 0:
            gone[stars[:, asked] > 0, cand_col[asked]] = True
        assert not np.array_equal(raw, rel)
    candidates = np.array([c for c in range(n_cands) if c not in (4, 7, 11)])
    got = np.empty(candidates.size)
    weights = rng.random(n_users)
    _gains(rel, n_left, liked, now, top, weights, stars, pulls, b, cand_col, candidates, gain, got)
    for j, k in enumerate(candidates):
        expected = 0.0
        for u in np.flatnonzero(stars[:, k] > 0):
            col = cand_col[k]
            scores = rel[u] + (stars[u, k] - offset) * b[k]
            scores = np.where(scores > 0, scores * gain, scores).astype(np.float64)
            scores[gone[u]] = -np.inf
            left = n_left[u]
            if col >= 0:
                scores[col] = -np.inf
                left -= int(liked[u, col])
            before = rel[u].astype(np.float64)
            before = np.where(before > 0, before * gain, before)
            before[gone[u]] = -np.inf
            hits_now = reference_ndcg(before, liked[u], n_left[u])
            assert now[u] == pytest.approx(hits_now)
            expected += weights[u] * (reference_ndcg(scores, liked[u], left) - hits_now)
        assert got[j] == pytest.approx(expected, abs=1e-9)


def test_rating_entropy_in_bits():
    hist = np.zeros((3, 10))
    hist[0, [2, 7]] = 5  # two values, equally often
    hist[1, :] = 1  # every value once
    got = rating_entropy(hist)
    assert got == pytest.approx([1.0, np.log2(10), 0.0])
