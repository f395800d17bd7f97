"""Metric maths checked against values worked out by hand on tiny rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.evaluate import metrics

LOG3 = math.log2(3)


def test_ranking_metrics_by_hand():
    # ranked best first; 20 at rank 1, 50 at rank 4, 70 never ranked: 3 relevant in all
    got = metrics.ranking_metrics([10, 20, 30, 40, 50, 60], {20, 50, 70}, k_values=(1, 3, 5))
    ideal3 = 1 + 1 / LOG3 + 1 / 2  # three hits at ranks 0, 1, 2
    expected = {
        "precision@1": 0.0,
        "precision@3": 1 / 3,
        "precision@5": 2 / 5,
        "recall@1": 0.0,
        "recall@3": 1 / 3,
        "recall@5": 2 / 3,
        "hit_rate@1": 0.0,
        "hit_rate@3": 1.0,
        "hit_rate@5": 1.0,
        "ndcg@1": 0.0,
        "ndcg@3": (1 / LOG3) / ideal3,
        "ndcg@5": (1 / LOG3 + 1 / math.log2(6)) / ideal3,
        "ap": (1 / 2 + 2 / 5 + 0) / 3,
    }
    assert got == pytest.approx(expected, abs=1e-12)


def test_perfect_and_hopeless_rankings():
    perfect = metrics.ranking_metrics([1, 2, 3, 4], [2, 1], k_values=(2, 4))
    assert perfect["precision@2"] == 1.0
    assert perfect["recall@2"] == 1.0
    assert perfect["ndcg@2"] == pytest.approx(1.0)
    assert perfect["ndcg@4"] == pytest.approx(1.0)
    assert perfect["ap"] == pytest.approx(1.0)
    assert perfect["precision@4"] == 0.5
    last = metrics.ranking_metrics([1, 2, 3, 4], [4], k_values=(1, 4))
    assert last["hit_rate@1"] == 0.0 and last["hit_rate@4"] == 1.0
    assert last["ndcg@4"] == pytest.approx(1 / math.log2(5))
    assert last["ap"] == pytest.approx(1 / 4)


def test_ndcg_ideal_is_capped_at_k():
    # 5 relevant, k = 2, both top slots hit: NDCG@2 = 1 although recall is 2/5
    got = metrics.ranking_metrics([1, 2, 9, 8], [1, 2, 3, 4, 5], k_values=(2,))
    assert got["ndcg@2"] == pytest.approx(1.0)
    assert got["recall@2"] == pytest.approx(0.4)


def test_batched_metrics_match_one_user_at_a_time():
    rng = np.random.default_rng(3)
    n_users, n_items, ks = 7, 30, (1, 5, 10)
    scores = rng.normal(size=(n_users, n_items))
    relevant = [rng.choice(n_items, size=rng.integers(1, 6), replace=False) for _ in range(n_users)]
    order, ranks = metrics.rank_rows(scores)
    users = np.concatenate([np.full(r.size, u) for u, r in enumerate(relevant)])
    items = np.concatenate(relevant)
    batched = metrics.user_ranking_metrics(
        users, ranks[users, items], np.array([r.size for r in relevant]), ks
    )
    for u in range(n_users):
        one = metrics.ranking_metrics(order[u], relevant[u], ks)
        for name, value in one.items():
            assert batched[name][u] == pytest.approx(value), (u, name)


def test_rank_rows_ties_go_to_the_lower_index_and_excluded_last():
    order, ranks = metrics.rank_rows(np.array([[1.0, 3.0, 3.0, -np.inf, 2.0]]))
    assert order.tolist() == [[1, 2, 4, 0, 3]]
    assert ranks.tolist() == [[3, 0, 1, 4, 2]]


def test_rmse_and_mae():
    assert metrics.rmse([3, 4, 5], [3, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert metrics.mae([3, 4, 5], [3, 2, 5]) == pytest.approx(2 / 3)


def test_coverage_and_novelty():
    lists = np.array([[0, 1], [1, 2], [2, -1]])  # -1: an empty slot
    assert metrics.catalogue_coverage(lists, 10) == pytest.approx(0.3)
    info = metrics.self_information(np.array([4, 2, 1, 0]), n_users=4)
    assert info[:3].tolist() == [0.0, 1.0, 2.0] and np.isnan(info[3])
    assert metrics.novelty(lists, info) == pytest.approx((0 + 1 + 1 + 2 + 2) / 5)


def test_mean_std_over_folds():
    assert metrics.mean_std([1.0, 3.0]) == (2.0, 1.0)  # population std, as Surprise
    mean, std = metrics.mean_std([])
    assert math.isnan(mean) and math.isnan(std)


def test_a_user_without_relevant_items_is_an_error():
    with pytest.raises(ValueError, match="relevant"):
        metrics.ranking_metrics([1, 2], [])


def test_top_and_ranks_is_rank_rows_without_the_sort():
    """Best-first lists and ranks of chosen items equal a full stable sort's, ties and
    -inf included."""
    rng = np.random.default_rng(4)
    for trial in range(25):
        n_users, n_items = int(rng.integers(1, 30)), int(rng.integers(1, 200))
        scores = np.round(rng.normal(size=(n_users, n_items)), 1)  # many ties
        scores[rng.random(scores.shape) < 0.1] = -np.inf
        wanted = sp.random(n_users, n_items, density=0.1, format="csr", random_state=trial)
        order, ranks = metrics.rank_rows(scores)
        n_top = int(rng.integers(1, n_items + 3))
        top, wanted_ranks = metrics.top_and_ranks(scores, n_top, wanted.indptr, wanted.indices)
        rows = np.repeat(np.arange(n_users), np.diff(wanted.indptr))
        np.testing.assert_array_equal(top, order[:, : min(n_top, n_items)])
        np.testing.assert_array_equal(wanted_ranks, ranks[rows, wanted.indices])
