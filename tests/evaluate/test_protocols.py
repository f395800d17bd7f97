"""The protocols' plumbing: candidates, exclusions and relevance, checked with oracles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from movierec.data import Ratings
from movierec.evaluate.adapters import Method
from movierec.evaluate.protocols import (
    _Ranking,
    onboarding_fold,
    onboarding_visitors,
    popular_items,
    rating_fold,
)
from movierec.evaluate.splits import holdout, parse_split, user_folds


class Oracle(Method):
    """Knows the answers: scores each user's relevant test movies highest."""

    kind = "peer"

    def __init__(self, answers: pd.DataFrame, threshold: float = 4.0) -> None:
        super().__init__("oracle")
        liked = answers[answers["rating"] >= threshold]
        self.liked = liked.groupby("userId")["movieId"].apply(set).to_dict()

    def _fit(self, train: Ratings) -> None:
        pass

    def predict(self, user_ids, movie_ids):
        return np.full(len(user_ids), 3.0)

    def score_users(self, users):
        out = np.zeros((len(users), self.n_items))
        for row, user in enumerate(users):
            wanted = self.liked.get(int(self.train.user_ids[user]), set())
            out[row] = np.isin(self.train.movie_ids, list(wanted))
        return out

    def score_visitor(self, items, stars):
        raise AssertionError("not used")


def test_an_oracle_scores_perfectly_in_the_rating_protocol(small_frame):
    train, test = holdout(small_frame, 0.3, seed=0)
    outcome = rating_fold([Oracle(test)], train, test, (5, 10), scale=(0.5, 5.0))
    got = outcome.metrics["oracle"]
    assert got["ndcg@5"] == pytest.approx(1.0)
    assert got["ndcg@10"] == pytest.approx(1.0)
    assert got["map"] == pytest.approx(1.0)
    assert got["hit_rate@5"] == 1.0
    # precision@k = mean of min(n_relevant, k) / k over ranked users
    trained = set(train["movieId"])
    liked = test[(test["rating"] >= 4) & test["movieId"].isin(trained)]
    n_rel = liked.groupby("userId").size()
    assert got["precision@5"] == pytest.approx(np.mean(np.minimum(n_rel, 5) / 5))
    assert got["recall@10"] == pytest.approx(np.mean(np.minimum(n_rel, 10) / n_rel))
    assert outcome.info["users_ranked"] == n_rel.size


def test_banned_columns_are_never_candidates():
    scores = np.array([[9.0, 8.0, 1.0, 2.0, 3.0]])
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]], dtype=np.float32))
    relevant = sp.csr_matrix(np.array([[0, 0, 1, 0, 0]], dtype=np.float32))
    ranking = _Ranking((3,))
    ranking.add(scores, exclude, relevant, banned=np.array([True, True, False, False, False]))
    assert ranking.top_lists[0].tolist() == [[4, 3, 2]]
    assert ranking.per_user["ap"][0].tolist() == [1 / 3]


def test_ranking_never_recommends_excluded_items():
    scores = np.array([[9.0, 8.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    exclude = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    relevant = sp.csr_matrix(np.array([[0, 0, 0, 0, 1], [1, 0, 0, 0, 0]], dtype=np.float32))
    ranking = _Ranking((1, 4))
    ranking.add(scores, exclude, relevant)
    top = ranking.top_lists[0]
    assert top[0].tolist() == [4, 3, 2, -1]  # only 3 candidates: the 4th slot is empty
    assert top[1].tolist() == [4, 3, 2, 1]
    assert ranking.per_user["hit_rate@1"][0].tolist() == [1.0, 0.0]
    assert ranking.per_user["ap"][0].tolist() == [1.0, 1 / 5]


def test_the_form_shows_popular_movies_and_reveals_only_rated_ones(small_frame):
    ((train_frame, held),) = user_folds(small_frame, parse_split("holdout:0.3"), seed=0)
    train = Ratings.from_frame(train_frame)
    popular = popular_items(train, 50)
    counts = train.item_counts()
    assert counts[popular].min() >= np.delete(counts, popular).max()
    visitors, counts_ = onboarding_visitors(train, held, seed=1, n_popular=50, n_shown=15)
    assert counts_["heldout_users"] == held["userId"].nunique()
    assert len(visitors) + counts_["skipped_no_reveal"] == counts_["heldout_users"]
    for v in visitors:
        assert v.shown.size == 15 and set(v.shown) <= set(popular)
        assert set(v.revealed) <= set(v.shown) and v.revealed.size >= 1
        assert not set(v.revealed) & set(v.target)
        rated = held[held["userId"] == v.user_id]
        known = train.items_of(rated["movieId"])
        assert v.revealed.size + v.target.size == (known >= 0).sum()
    again, _ = onboarding_visitors(train, held, seed=1)
    assert [v.revealed.tolist() for v in again] == [v.revealed.tolist() for v in visitors]


def test_onboarding_excludes_revealed_and_rare_movies():
    from movierec.evaluate.protocols import _Visitor, _visitor_patterns

    v = _Visitor(
        user_id=1,
        shown=np.array([0, 1, 2]),
        revealed=np.array([0, 2]),
        revealed_stars=np.array([5.0, 4.0]),
        target=np.array([3, 4, 5, 6]),
        target_stars=np.array([5.0, 4.0, 3.0, 4.5]),
    )
    exclude, relevant = _visitor_patterns([v], too_rare=np.array([6]), n_items=8, threshold=4)
    assert exclude.indices.tolist() == [0, 2]  # revealed
    assert relevant.indices.tolist() == [3, 4]  # liked, neither revealed nor too rare


class Echo(Method):
    """Scores a visitor's revealed movies highest: they must never be picked."""

    kind = "ours"

    def _fit(self, train):
        pass

    def predict(self, user_ids, movie_ids):
        return np.full(len(user_ids), 3.0)

    def score_users(self, users):
        raise AssertionError("not used")

    def score_visitor(self, items, stars):
        out = np.zeros(self.n_items)
        out[items] = 10.0
        return out, np.full(self.n_items, 3.0)


def test_onboarding_runs_a_method_that_only_echoes(small_frame):
    ((train, held),) = user_folds(small_frame, parse_split("holdout:0.3"), seed=0)
    outcome = onboarding_fold([Echo("echo")], train, held, (5,), scale=(0.5, 5.0), seed=1)
    got = outcome.metrics["echo"]
    # revealed movies excluded, the rest tie at 0: every list is decided by the tie-break
    assert got["ties@5"] == 1.0
    assert 0.0 <= got["hit_rate@5"] <= 1.0
    assert outcome.info["users_ranked"] > 0


def test_onboarding_ranks_a_seeded_sample_when_there_are_many_visitors(small_frame):
    ((train, held),) = user_folds(small_frame, parse_split("holdout:0.3"), seed=0)
    whole = onboarding_fold([Echo("echo")], train, held, (5,), scale=(0.5, 5.0), seed=1)
    rankable = whole.info["users_ranked"]
    assert rankable > 6 and "visitors_sampled" not in whole.info
    runs = [
        onboarding_fold([Echo("echo")], train, held, (5,), (0.5, 5.0), seed=1, max_visitors=5)
        for _ in range(2)
    ]
    for outcome in runs:
        assert outcome.info["users_ranked"] == outcome.info["visitors_sampled"] == 5
        assert outcome.info["visitors_rankable"] == rankable
    timed = ("fit_s", "rank_s", "fold_in_ms")
    first, second = ({k: v for k, v in r.metrics["echo"].items() if k not in timed} for r in runs)
    assert first == second  # the same sample for the same seed


def test_our_models_rank_by_rank_and_predict_stars_by_score(small_frame):
    from movierec.evaluate.adapters import OurModel

    method = OurModel("popular")
    method.fit(Ratings.from_frame(small_frame))
    model = method.model
    model.rank = lambda state: -model.score(state)  # a model whose top-N order differs
    model.rank_users = lambda states: np.stack([model.rank(s) for s in states])
    user_row = method.score_users(np.array([0]))[0]
    state = model.user_state(int(method.train.user_ids[0]))
    np.testing.assert_array_equal(user_row, -model.score(state))
    ranking, stars = method.score_visitor(np.array([0, 1]), np.array([4.0, 5.0]))
    np.testing.assert_array_equal(ranking, -stars)
    rankings, many_stars = method.score_visitors([(np.array([0, 1]), np.array([4.0, 5.0]))] * 2)
    np.testing.assert_array_equal(rankings, [ranking, ranking])
    np.testing.assert_array_equal(many_stars, [stars, stars])


def test_our_models_rank_many_visitors_as_one_at_a_time(small_frame):
    from movierec.evaluate.adapters import OurModel

    for name in ("popular", "svd", "ease"):
        method = OurModel(name, params={"n_epochs": 3} if name != "popular" else {})
        method.fit(Ratings.from_frame(small_frame))
        visitors = [(np.array([0, 1]), np.array([4.0, 5.0])), (np.array([2]), np.array([1.0]))]
        rankings, stars = method.score_visitors(visitors)
        assert rankings.shape == stars.shape == (2, method.n_items)
        for row, (items, given) in enumerate(visitors):
            ranking, star_row = method.score_visitor(items, given)
            np.testing.assert_allclose(rankings[row], ranking, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(stars[row], star_row, rtol=1e-5, atol=1e-6)


# -- onboarding in rounds (strategy_fold) ------------------------------------------------------


class Recorder(Method):
    """Folds nothing in: records what each visitor revealed, ranks movie 1 first."""

    kind = "peer"

    def __init__(self) -> None:
        super().__init__("recorder")
        self.calls: list[tuple[list[int], list[float]]] = []

    def _fit(self, train: Ratings) -> None:
        pass

    def predict(self, user_ids, movie_ids):
        return np.full(len(user_ids), 3.0)

    def score_users(self, users):
        raise AssertionError("not used")

    def score_visitor(self, items, stars):
        movie_ids = self.train.movie_ids[np.asarray(items)]
        self.calls.append((sorted(movie_ids.tolist()), [float(s) for s in stars]))
        ranking = -np.arange(self.n_items, dtype=np.float64)  # movieId order
        return ranking, np.full(self.n_items, 3.0)


def test_the_simulated_visitor_answers_only_what_the_data_says_they_rated():
    from movierec.evaluate.protocols import strategy_fold

    # training: movie 10 rated by 5 users, 20 by 4, 30 by 3, 40 by 2, 50 by 1
    rows = [(u, m, 4.0) for m, k in ((10, 5), (20, 4), (30, 3), (40, 2), (50, 1))
            for u in range(1, k + 1)]  # fmt: skip
    train = pd.DataFrame(rows, columns=["userId", "movieId", "rating"])
    # the held-out visitor rated 20 and 40 (and liked 50, never asked in 2 x 2)
    heldout = pd.DataFrame(
        [(99, 20, 3.5), (99, 40, 5.0), (99, 50, 4.5)], columns=["userId", "movieId", "rating"]
    )
    method = Recorder()
    outcome = strategy_fold([method], train, heldout, ["popular"], rounds=2, per_round=2, seed=0)
    # round 1 asks 10, 20 -> reveals 20; round 2 asks 30, 40 -> reveals 20 and 40
    assert method.calls == [([20], [3.5]), ([20, 40], [3.5, 5.0])]
    got = outcome.metrics["popular"]
    assert got["rated/2"] == 1 and got["rated/4"] == 2
    assert got["rated_share/2"] == 0.5 and got["rated_share/4"] == 0.5
    # movie 50 is the only relevant one left; the recorder ranks by movieId: 10..50 -> rank 5
    # of the candidates not revealed (10, 30, 50 after round 2: 50 is third)
    assert got["recall@20/4"] == 1.0 and got["hit_rate@5/4"] == 1.0
    assert got["ndcg@10/4"] == pytest.approx(1 / np.log2(4))
    assert got["users/2"] == got["users/4"] == 1


def test_strategies_need_the_onboarding_protocol_and_sane_rounds(small_frame):
    from movierec.errors import InvalidInput
    from movierec.evaluate import evaluate_frame

    cases = (
        ({"protocol": "rating", "strategies": ["popular"]}, "strategy"),
        ({"protocol": "onboarding", "strategies": ["smart"]}, "strategy"),
        ({"protocol": "onboarding", "strategies": ["popular"], "rounds": 0}, "rounds"),
        ({"protocol": "onboarding", "strategies": ["popular"], "per_round": 51}, "per_round"),
    )
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as err:
            evaluate_frame(small_frame, "kfold:2", ["popular"], progress=False, **kwargs)
        assert err.value.field == field
