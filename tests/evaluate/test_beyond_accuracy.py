"""Beyond-accuracy maths (popularity, diversity, calibration, personalisation) on lists
small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.evaluate import metrics

# item 0: Action+Comedy, item 1: Action, item 2: Drama, item 3: no genre
GENRES, NAMES = metrics.genre_matrix([("Comedy", "Action"), ("Action",), ("Drama",), ()])


def test_genre_matrix_sorts_names_and_leaves_genreless_rows_empty():
    assert NAMES == ["Action", "Comedy", "Drama"]
    assert GENRES.dtype == bool and GENRES.shape == (4, 3)
    assert GENRES.tolist() == [
        [True, True, False],
        [True, False, False],
        [False, False, True],
        [False, False, False],
    ]
    empty, names = metrics.genre_matrix([None, ("", "Drama")])
    assert names == ["Drama"] and empty.tolist() == [[False], [True]]


def test_popularity_percentiles_most_rated_is_100_and_ties_share():
    pct = metrics.popularity_percentiles(np.array([5, 1, 3, 3]))
    assert pct.dtype == np.float64
    assert pct.tolist() == [100.0, 25.0, 75.0, 75.0]
    top = np.array([[0, 1], [2, -1]])
    assert metrics.mean_popularity_percentile(top, pct) == pytest.approx((100 + 25 + 75) / 3)
    assert math.isnan(metrics.mean_popularity_percentile(np.full((1, 2), -1), pct))


def test_distinct_items_ignores_empty_slots():
    assert metrics.distinct_items(np.array([[0, 1, -1], [1, 2, -1]])) == 3


def test_intra_list_diversity_by_hand():
    # [0, 1, 2]: d(0,1) = 1 - 1/2, d(0,2) = 1, d(1,2) = 1 -> 2.5 / 3
    assert metrics.intra_list_diversity(np.array([[0, 1, 2]]), GENRES) == pytest.approx(2.5 / 3)
    # a list of one item has no pair and is left out; empty slots are skipped
    both = np.array([[0, 1, 2], [0, 1, -1], [2, -1, -1]])
    assert metrics.intra_list_diversity(both, GENRES) == pytest.approx((2.5 / 3 + 0.5) / 2)
    assert metrics.intra_list_diversity(np.array([[1, 1]]), GENRES) == 0.0
    assert metrics.intra_list_diversity(np.array([[3, 3]]), GENRES) == 0.0  # genreless: same
    assert math.isnan(metrics.intra_list_diversity(np.array([[2, -1]]), GENRES))
    # batches of lists give the mean over all lists
    assert metrics.intra_list_diversity(both, GENRES, batch=2) == pytest.approx((2.5 / 3 + 0.5) / 2)


def test_miscalibration_is_zero_for_the_liked_genre_mix():
    liked = [[0], [0, 2]]
    top = np.array([[0, -1], [2, 0]])
    assert metrics.genre_miscalibration(liked, top, GENRES) == pytest.approx(0.0, abs=1e-12)


def test_miscalibration_by_hand():
    # liked Action only; list all Drama: q~ = 0.99 Drama + 0.01 Action -> KL = log(100)
    assert metrics.genre_miscalibration([[1]], np.array([[2]]), GENRES) == pytest.approx(
        math.log(100)
    )
    # liked Action+Comedy (p = 1/2, 1/2); list Action, Drama (q = 1/2, 0, 1/2):
    # q~(Action) = 1/2, q~(Comedy) = 0.005 -> KL = 1/2 log(1) + 1/2 log(0.5 / 0.005)
    got = metrics.genre_miscalibration([[0]], np.array([[1, 2]]), GENRES, alpha=0.01)
    assert got == pytest.approx(0.5 * math.log(100))
    # the mean over users; a user whose liked movies have no genre is left out
    liked = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 4.0]]))
    top = np.array([[2, -1], [1, 2], [0, 1]])
    assert metrics.genre_miscalibration(liked, top, GENRES) == pytest.approx(
        (math.log(100) + 0.5 * math.log(100)) / 2
    )


def test_miscalibration_checks_the_user_count():
    with pytest.raises(ValueError, match="users"):
        metrics.genre_miscalibration([[0]], np.array([[1], [2]]), GENRES)


def test_personalisation_overlap_identical_disjoint_and_partial():
    same = np.array([[1, 2, 3]] * 4)
    assert metrics.personalisation_overlap(same) == 1.0
    assert metrics.personalisation_overlap(np.array([[1, 2], [3, 4], [5, 6]])) == 0.0
    # {1, 2} vs {2, 3}: 1 shared of 3; empty slots are not items
    assert metrics.personalisation_overlap(np.array([[1, 2, -1], [3, 2, -1]])) == 1 / 3
    # only the first k count
    assert metrics.personalisation_overlap(np.array([[1, 2], [1, 3]]), k=1) == 1.0
    assert math.isnan(metrics.personalisation_overlap(np.array([[1, 2]])))


def test_personalisation_overlap_samples_pairs_with_a_seed():
    rng = np.random.default_rng(0)
    top = np.stack([rng.choice(30, size=10, replace=False) for _ in range(400)])  # 79,800 pairs
    a = metrics.personalisation_overlap(top, max_pairs=5000, seed=1)
    assert a == metrics.personalisation_overlap(top, max_pairs=5000, seed=1)
    exact = metrics.personalisation_overlap(top, max_pairs=10**6)
    assert a == pytest.approx(exact, abs=0.01)  # standard error ~0.002 for 5000 pairs
    same = np.tile(np.arange(10), (400, 1))
    assert metrics.personalisation_overlap(same, max_pairs=50) == 1.0
