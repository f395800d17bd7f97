"""Beyond-accuracy measures in the protocols and the report, for ours and the peers."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.ratings import Ratings
from movierec.evaluate import evaluate_frame
from movierec.evaluate.adapters import Method
from movierec.evaluate.protocols import FoldData, taste_metrics

BEYOND = ("distinct@10", "coverage@10", "popularity@10", "novelty@10", "overlap@10")
GENRES = ("diversity@10", "miscalibration@10")
TASTE = ("taste_loved@10", "taste_hated@10")


class GenreEcho(Method):
    """Scores a movie by the visitor's stars (minus 3) on the movies sharing a genre with it."""

    def __init__(self, genres: np.ndarray, sign: float = 1.0) -> None:
        super().__init__("genre-echo")
        self.genres, self.sign = genres.astype(np.float64), sign

    def _fit(self, train):
        pass

    def predict(self, user_ids, movie_ids):
        return np.full(len(user_ids), 3.0)

    def score_users(self, users):
        raise AssertionError("not used")

    def score_visitor(self, items, stars):
        shares = (self.genres @ self.genres[items].T) > 0  # (n_items, len(items))
        scores = self.sign * shares @ (np.asarray(stars) - 3.0)
        return scores, np.full(self.n_items, 3.0)


@pytest.fixture(scope="module")
def fold(ml_small) -> tuple[Ratings, FoldData]:
    train = Ratings.from_frame(ml_small.frame)
    return train, FoldData.build(train, ml_small.catalog)


def test_taste_share_follows_a_method_that_follows_the_visitor(fold):
    train, data = fold
    assert len(data.personas) == 90 and data.genres.shape[0] == train.n_items
    listening = GenreEcho(data.genres)
    listening.fit(train)
    got = taste_metrics(listening, train, data)
    assert got["taste_loved@10"] > 0.9 and got["taste_hated@10"] < 0.05
    contrary = GenreEcho(data.genres, sign=-1.0)
    contrary.fit(train)
    flipped = taste_metrics(contrary, train, data)
    assert flipped["taste_hated@10"] > flipped["taste_loved@10"]


def test_no_taste_share_without_fold_in_or_catalogue(fold):
    train, data = fold

    class Trained(GenreEcho):
        can_fold_in = False

    method = Trained(data.genres)
    method.fit(train)
    assert taste_metrics(method, train, data) == {}
    bare = FoldData.build(train)
    assert bare.genres is None and bare.personas == []
    assert taste_metrics(GenreEcho(data.genres), train, bare) == {}


def test_rating_protocol_measures_ours_and_a_surprise_peer(small_frame, ml_small):
    pytest.importorskip("surprise")
    result = evaluate_frame(
        small_frame,
        "holdout:0.2",
        ["popular"],
        peers=True,
        peer_names=["surprise-svd"],
        model_params={"surprise-svd": {"n_epochs": 5, "n_factors": 10}},
        catalog=ml_small.catalog,
        progress=False,
    )
    for name in ("popular", "surprise-svd"):
        for metric in (*BEYOND, *GENRES):
            assert not np.isnan(result.mean(name, metric)), (name, metric)
        assert 0 < result.mean(name, "popularity@10") <= 100
        assert 0 <= result.mean(name, "overlap@10") <= 1
    assert result.mean("popular", "popularity@10") > 80  # far above the median movie (50)
    assert 0 <= result.mean("popular", "taste_loved@10") <= 1
    assert np.isnan(result.mean("surprise-svd", "taste_loved@10"))  # cannot fold in
    without = evaluate_frame(small_frame, "holdout:0.2", ["popular"], progress=False)
    assert "overlap@10" in without.metric_names()
    assert "diversity@10" not in without.metric_names()
