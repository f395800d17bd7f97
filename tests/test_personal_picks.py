"""Dislikes count and picks are personal, for every model the web app offers.

On real ml-latest-small, with visitors built from the data (the genre personas of
:mod:`movierec.evaluate.personas`), through the library the web page calls; plus the
re-ranking step (:mod:`movierec.rerank`) on small hand-made genre mixes.
"""

from __future__ import annotations

import numpy as np
import pytest

from movierec import models
from movierec.data import Dataset
from movierec.evaluate.personas import Persona, genre_personas, taste_shares
from movierec.recommend import LIKED_NOTHING, RecommendService
from movierec.rerank import Calibration, GenreMix, personal_order

SERVED = ("ease", "svd", "nmf", "popular")
#: quick fits: enough to rank sensibly, not the served epochs
QUICK = {"ease": {"n_epochs": 8}, "svd": {"n_epochs": 8}, "nmf": {"n_epochs": 15}}


@pytest.fixture(scope="module", params=SERVED)
def service(request, ml_small: Dataset) -> RecommendService:
    model = models.create(request.param, seed=1, **QUICK.get(request.param, {}))
    return RecommendService(model.fit(ml_small.ratings), ml_small.catalog)


@pytest.fixture(scope="module")
def personas(ml_small: Dataset) -> list[Persona]:
    return genre_personas(ml_small.ratings, ml_small.catalog, seed=0)


def test_a_hated_movie_is_never_a_reason_in_any_model(service, personas):
    named = []
    for persona in personas[::3]:
        for pick in service.recommend(persona.ratings, n=10).items:
            named += [m.title for m in pick.because if m.movie_id in persona.hated]
    assert named == [], service.model.name


def test_the_hated_genre_stays_below_the_loved_one_in_every_model(service, personas, ml_small):
    """Over the 90 personas (before dislikes counted, with these quick fits: hated 14 % /
    18 % / 24 % / 22 % of the top 10 for ease / svd / nmf / popular; now 5 / 9 / 11 / 1)."""
    lists = [[p.movie.movie_id for p in service.recommend(q.ratings, n=10).items] for q in personas]
    loved, hated = taste_shares(lists, personas, ml_small.catalog)
    assert hated < loved / 3, (service.model.name, loved, hated)
    assert hated < 0.13, (service.model.name, hated)


def test_a_visitor_who_liked_nothing_is_told_so(service, personas):
    disliked = {m: 1.0 for m in personas[0].hated[:3]} | {personas[1].hated[0]: 2.5}
    result = service.recommend(disliked, n=10)
    assert result.liked_nothing and result.message == LIKED_NOTHING
    assert result.to_dict()["liked_nothing"] is True
    assert result.items and all(not pick.because for pick in result.items)
    liked = service.recommend({**disliked, personas[2].loved[0]: 4.0}, n=10)
    assert not liked.liked_nothing and liked.message is None


def test_two_tastes_get_different_2010_and_later_lists(service, personas):
    """The "2010 and later" picks follow the visitor too: no two of four very different
    tastes get the same list, and on average they share at most a third of it."""
    pairs = {(p.loved_genre, p.hated_genre): p for p in personas}
    tastes = [pairs[key] for key in [("Drama", "Action"), ("Action", "Drama"),
                                     ("Children", "Thriller"), ("Sci-Fi", "Romance")]]  # fmt: skip
    lists = [
        {p.movie.movie_id for p in service.recommend(t.ratings, year="new", n=10).items}
        for t in tastes
    ]
    assert all(len(picks) == 10 for picks in lists)
    overlaps = [len(a & b) / len(a | b) for i, a in enumerate(lists) for b in lists[i + 1 :]]
    assert max(overlaps) < 1.0, service.model.name
    assert np.mean(overlaps) <= 1 / 3, (service.model.name, overlaps)


def test_show_more_adds_below_and_never_reshuffles(service, personas):
    five = [p.movie.movie_id for p in service.recommend(personas[5].ratings, n=5).items]
    ten = [p.movie.movie_id for p in service.recommend(personas[5].ratings, n=10).items]
    assert ten[:5] == five


# -- the re-ranking step on hand-made genres ------------------------------------------------
#: 8 movies, genres A, B, C as p(g|i): 0-3 pure A, 4-5 pure B, 6 A+B, 7 pure C
GENRES = np.array(
    [[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0.5, 0.5, 0], [0, 0, 1]],
    dtype=np.float64,
)


def test_weight_zero_is_the_models_order():
    scores = np.arange(8, 0, -1, dtype=np.float32)
    mix = GenreMix(GENRES)
    others = np.array([0, 1, 2, 3, 5, 6, 7])
    picks = personal_order(
        scores, others, np.array([4]), np.array([5.0]), 6, mix, Calibration.off()
    )
    assert picks.tolist() == [0, 1, 2, 3, 5, 6]


def test_the_first_picks_keep_the_models_order_and_the_rest_follow_the_liked_genre():
    scores = np.arange(8, 0, -1, dtype=np.float32)  # the model prefers genre A
    mix = GenreMix(GENRES)
    settings = Calibration(weight=0.9, keep=2, pool=8, hate_weight=0.0)
    others = np.array([0, 1, 2, 3, 5, 6, 7])  # 4 is rated
    liked_b = personal_order(scores, others, np.array([4]), np.array([5.0]), 4, mix, settings)
    assert liked_b[:2].tolist() == [0, 1]
    assert set(liked_b[2:].tolist()) <= {5, 6}  # genre B joins the list


def test_a_disliked_genre_is_pushed_out():
    scores = np.array([8, 7, 6, 5, 4, 3, 2, 1], dtype=np.float32)
    mix = GenreMix(GENRES)
    settings = Calibration(weight=0.5, keep=0, pool=8, hate_weight=5.0)
    # liked a C movie, hated an A movie: A movies leave the top 3
    others = np.array([0, 1, 2, 4, 5, 6])  # 3 and 7 are rated
    picks = personal_order(scores, others, np.array([7, 3]), np.array([5.0, 1.0]), 3, mix, settings)
    assert not set(picks.tolist()) & {0, 1, 2}


@pytest.mark.parametrize("seed", range(5))
def test_the_first_k_picks_are_the_first_k_of_n(seed):
    """``first=k``: the greedy re-ranking stops after k picks, which are exactly the first
    k of the n (the pages rank 50 and show 5)."""
    rng = np.random.default_rng(seed)
    n_items, n_genres = 300, 6
    genres = rng.random((n_items, n_genres)) < 0.3
    mix = GenreMix(genres / np.maximum(genres.sum(axis=1, keepdims=True), 1))
    scores = rng.normal(size=n_items).astype(np.float32)
    rated = rng.choice(n_items, 8, replace=False)
    stars = rng.choice([1.0, 2.0, 4.0, 5.0], 8)
    others = np.setdiff1d(np.arange(n_items), rated)
    settings = Calibration(weight=0.6, keep=2, pool=40, hate_weight=1.0)
    full = personal_order(scores, others, rated, stars, 50, mix, settings)
    assert len(full) == 50
    for k in (1, 2, 5, 17, 50, 80):
        first = personal_order(scores, others, rated, stars, 50, mix, settings, first=k)
        assert first.tolist() == full[:k].tolist()
