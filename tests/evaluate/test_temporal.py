"""The temporal protocol (issue 18 item 6): visitors, leakage, the loop's training sets,
results.json and the CLI's one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from movierec.cli import main
from movierec.data.ratings import Ratings
from movierec.errors import InvalidInput
from movierec.evaluate.temporal import (
    arrivals,
    loop_train,
    parse_cutoff,
    step_edges,
    step_visitors,
    temporal_frame,
    visitors_of,
)

CUTOFF = "0.8"
FIRST_K = 5


@pytest.fixture(scope="module")
def frame(ml_small) -> pd.DataFrame:
    return ml_small.frame


@pytest.fixture(scope="module")
def cut(frame) -> int:
    return parse_cutoff(CUTOFF, frame["timestamp"].to_numpy())


def test_visitors_are_exactly_the_users_arriving_after_the_cutoff(frame, cut):
    first = frame.groupby("userId")["timestamp"].min()
    expected = set(first.index[first >= cut])
    edges = step_edges(frame, cut, 3)
    seen: set[int] = set()
    for t in range(3):
        users = set(step_visitors(frame, int(edges[t]), int(edges[t + 1]))["userId"])
        assert not users & seen  # each visitor arrives in one step only
        seen |= users
    assert seen == expected
    assert 50 < len(expected) < 300  # ml-latest-small: 147 at 0.8 of the timeline


def test_a_visitors_later_ratings_never_train_the_model_that_scores_them(frame, cut):
    edges = step_edges(frame, cut, 3)
    for t in range(3):
        start, end = int(edges[t]), int(edges[t + 1])
        arriving = step_visitors(frame, start, end)
        train = loop_train(frame, cut, start)
        # nothing of theirs at all is in training, so nothing after their first k
        assert not set(train["userId"]) & set(arriving["userId"])
        visitors, _ = visitors_of(Ratings.from_frame(train), arriving, FIRST_K)
        assert visitors
        for v in visitors:
            rows = arriving[arriving["userId"] == v.user_id].sort_values(
                ["timestamp", "movieId"], kind="stable"
            )
            model = Ratings.from_frame(train)
            later = model.items_of(rows["movieId"].to_numpy()[FIRST_K:])
            early = model.items_of(rows["movieId"].to_numpy()[:FIRST_K])
            assert set(v.revealed.tolist()) <= set(early[early >= 0].tolist())
            assert set(v.target.tolist()) == set(later[later >= 0].tolist())
            assert v.revealed.size <= FIRST_K


def test_the_loop_retrains_on_earlier_arrivals_and_not_later_ones(frame, cut):
    first = frame["userId"].map(arrivals(frame))
    edges = step_edges(frame, cut, 3)
    base = loop_train(frame, cut, cut)
    assert (base["timestamp"] < cut).all()
    assert len(base) == int((frame["timestamp"] < cut).sum())
    start = int(edges[2])
    train = loop_train(frame, cut, start)
    visitors = train[first.loc[train.index] >= cut]
    assert len(visitors) > 0
    assert (visitors["timestamp"] < start).all()  # earlier arrivals, up to the step only
    earlier = frame[(first >= cut) & (first < start) & (frame["timestamp"] < start)]
    assert len(visitors) == len(earlier)
    later = frame[first >= start]
    assert not set(train["userId"]) & set(later["userId"])
    # users from before the cutoff add nothing after it (the data set is fixed)
    old = train[first.loc[train.index] < cut]
    assert (old["timestamp"] < cut).all()


def test_results_json_has_both_arms_per_step(frame, tmp_path):
    result = temporal_frame(
        frame, ["popular"], cutoff=CUTOFF, first_k=FIRST_K, steps=2, out=tmp_path
    )
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["protocol"] == "temporal"
    assert len(data["steps"]) == 2
    for step in data["steps"]:
        for name in ("popular", "popular+loop"):
            assert 0 < step["metrics"][name]["ndcg@10"] <= 1
            assert step["metrics"][name]["distinct@10"] >= 1
            assert "popularity@10" in step["metrics"][name]
        assert step["info"]["a"]["users_ranked"] > 0
        assert step["info"]["b"]["n_train"] > step["info"]["a"]["n_train"] or step["step"] == 1
    ratio = data["ndcg_ratio_loop_to_cutoff"]["popular"]
    assert ratio["step 1"] == pytest.approx(1.0)  # no earlier arrivals yet: the same model
    assert ratio["overall"] == pytest.approx(result.ratios()["popular"]["overall"])
    assert (tmp_path / "report.md").read_text().startswith("# Temporal evaluation")


def test_a_frame_without_timestamps_is_refused(frame):
    with pytest.raises(InvalidInput, match="timestamps"):
        temporal_frame(frame.drop(columns="timestamp"), ["popular"])


@pytest.mark.parametrize(
    ("cutoff", "said"),
    [
        ("1990-01-01", "outside the ratings' timeline"),
        ("2030-01-01", "outside the ratings' timeline"),
        ("2015-13-45", "neither a date"),
        ("yesterday", "neither a date"),
        ("1.5", "between 0 and 1"),
        ("0", "between 0 and 1"),
    ],
)
def test_bad_cutoffs_exit_2_with_one_line(home, capsys, cutoff, said):
    args = ["evaluate", "--protocol", "temporal", "--dataset", "ml-latest-small"]
    code = main([*args, "--models", "popular", "--cutoff", cutoff])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert repr(cutoff) in err and said in err


def test_the_cli_writes_the_report(home, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["evaluate", "--protocol", "temporal", "--dataset", "ml-latest-small"]
    assert main([*args, "--models", "popular", "--steps", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "NDCG@10 ratio popular+loop / popular" in text
    assert {"report.md", "results.json"} <= {p.name for p in out.iterdir()}


def test_the_cli_refuses_a_split_with_the_temporal_protocol(home, capsys):
    args = ["evaluate", "--protocol", "temporal", "--split", "kfold:5", "--models", "popular"]
    assert main(args) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_parse_cutoff_takes_a_date_or_a_fraction():
    stamps = np.array([0, 1_000_000_000])
    assert parse_cutoff("0.5", stamps) == 500_000_000
    assert parse_cutoff("2001-09-09", stamps) == 999_993_600
