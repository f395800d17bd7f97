"""Peers: vectorised top-N scores equal Surprise's own estimates; the original app's NMF."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data import Ratings
from movierec.evaluate import evaluate_frame
from movierec.evaluate.peers import create_peer


@pytest.fixture(scope="module")
def train(small_frame) -> Ratings:
    return Ratings.from_frame(small_frame)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("surprise-svd", {"n_epochs": 3}),
        ("surprise-svdpp", {"n_epochs": 1}),
        ("surprise-nmf", {"n_epochs": 5}),
        ("surprise-knnbaseline", {}),
    ],
)
def test_surprise_scores_equal_its_estimate(name, params, train):
    pytest.importorskip("surprise")
    peer = create_peer(name, scale=(0.5, 5.0), seed=0, params=params)
    peer.fit(train)
    users = np.arange(0, train.n_users, 7)
    scores = peer.score_users(users)
    assert scores.shape == (users.size, train.n_items)
    rng = np.random.default_rng(0)
    for row, user in enumerate(users):
        for item in rng.choice(train.n_items, size=5, replace=False):
            est = peer.algo.predict(
                int(train.user_ids[user]), int(train.movie_ids[item]), clip=False
            ).est
            assert scores[row, item] == pytest.approx(est, abs=1e-9), (name, user, item)
    # rating predictions: Surprise's predict (clipped, fallbacks for unknown ids) exactly
    user_ids = np.r_[train.user_ids[users], 10**9, train.user_ids[0]]
    movie_ids = np.r_[train.movie_ids[users % train.n_items], train.movie_ids[0], 10**9]
    expected = [
        peer.algo.predict(int(u), int(m)).est for u, m in zip(user_ids, movie_ids, strict=True)
    ]
    np.testing.assert_allclose(peer.predict(user_ids, movie_ids), expected, atol=1e-9)


def test_original_app_method(train):
    peer = create_peer("original", scale=(0.5, 5.0), seed=0, params={"n_components": 5})
    peer.fit(train)
    scores = peer.score_users(np.array([0, 1]))
    predicted = peer.predict(np.repeat(train.user_ids[:2], 3), np.tile(train.movie_ids[:3], 2))
    np.testing.assert_allclose(predicted, scores[:, :3].ravel())
    # a visitor is folded in by transform(); rating like user 0 scores like user 0
    items, stars = train.user_row(0)
    visitor, visitor_stars = peer.score_visitor(items, stars)
    np.testing.assert_array_equal(visitor, visitor_stars)
    assert np.corrcoef(visitor, scores[0])[0, 1] > 0.9
    # unknown movie -> training mean; unknown user -> the all-blank row's transform
    assert peer.predict(np.array([1]), np.array([10**9]))[0] == pytest.approx(train.global_mean)
    assert np.isfinite(peer.predict(np.array([10**9]), train.movie_ids[:1])[0])


def test_peers_and_ours_share_one_run(small_frame):
    pytest.importorskip("surprise")
    result = evaluate_frame(
        small_frame,
        "holdout:0.2",
        ["popular"],
        peers=True,
        progress=False,
        peer_names=["surprise-svd", "original"],
        model_params={"surprise-svd": {"n_epochs": 3}, "original": {"n_components": 5}},
    )
    assert result.method_names == ["popular", "surprise-svd", "original"]
    assert [m["kind"] for m in result.methods] == ["ours", "peer", "peer"]
    for name in result.method_names:
        assert 0.5 < result.mean(name, "rmse") < 1.6
        assert 0.0 <= result.mean(name, "ndcg@10") <= 1.0
