"""The like probability's reliability in ``movierec evaluate``: the metrics on hand-made
figures, and the table, report and plot of a real onboarding run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from movierec.data import Ratings
from movierec.evaluate import format_table, run_evaluation
from movierec.evaluate.calibration import group_names, rating_people, reliability_metrics


def test_group_names_follow_the_calibration_groups() -> None:
    assert group_names() == ["1-2", "3-5", "6-15", "16-50", "51+"]


def test_reliability_metrics_on_hand_made_figures() -> None:
    figures = np.array([0.05, 0.05, 0.95, 0.95, 0.55, 0.55])
    liked = np.array([0, 0, 1, 1, 1, 0], bool)
    n = np.array([1, 2, 20, 60, 4, 4])
    out = reliability_metrics(figures, liked, n, min_pairs=1)
    assert "ece/1-2" not in reliability_metrics(figures, liked, n)  # 2 pairs: too few
    assert out["ece"] == pytest.approx((4 * 0.05 + 2 * 0.05) / 6)
    assert out["ece/1-2"] == pytest.approx(0.05) and out["ece/3-5"] == pytest.approx(0.05)
    assert "ece/6-15" not in out  # nobody in that group
    assert out["reliability_pairs/5"] == 2 and out["reliability_liked/5"] == 0.5
    assert math.isnan(out["reliability_liked/3"])


def test_rating_people_are_training_history_to_test_ratings() -> None:
    train = Ratings.from_arrays([1, 1, 2, 2, 2], [10, 20, 10, 30, 40], [4, 3, 5, 2, 1])
    rows = np.array([0, 1, 1, -1])
    cols = np.array([2, 1, -1, 0])  # user 2's second test movie is unknown to training
    stars = np.array([5.0, 1.0, 4.0, 3.0])
    people = rating_people(train, rows, cols, stars)
    assert len(people) == 2
    items, given, target, target_stars = people[1]
    assert sorted(train.movie_ids[items].tolist()) == [10, 30, 40]
    assert target.tolist() == [1] and target_stars.tolist() == [1.0]


def test_onboarding_run_reports_ece_and_writes_reliability_png(session_home, tmp_path) -> None:
    result = run_evaluation(
        "ml-latest-small",
        "holdout:0.2",
        ["svd"],
        peers=True,
        protocol="onboarding",
        out=tmp_path,
        progress=False,
        home=session_home,
        model_params={"svd": {"n_epochs": 10}, "original": {"n_components": 5, "max_iter": 30}},
        peer_names=["original"],
    )
    ece = result.mean("svd", "ece")
    assert 0.0 <= ece < 0.06  # measured 0.026 (per group 0.026-0.051: ~120 visitors)
    for group in ("1-2", "3-5", "6-15"):  # the form reveals at most 15 ratings
        assert not math.isnan(result.mean("svd", f"ece/{group}")), group
    assert math.isnan(result.mean("original", "ece"))  # a peer has no calibrated figure
    assert "ECE" in format_table(result)
    report = (tmp_path / "report.md").read_text()
    assert "## Like probability" in report and "![reliability.png](reliability.png)" in report
    assert (tmp_path / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "results.json").read_text())["summary"]["svd"]
    assert saved["ece"]["mean"] == pytest.approx(ece)
