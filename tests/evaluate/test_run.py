"""End to end: evaluate real (small) data, write the report, check the numbers' ranges."""

from __future__ import annotations

import json
import math

import pytest

from movierec.errors import InvalidInput
from movierec.evaluate import evaluate_frame, format_table, run_evaluation

RANKING = ("precision", "recall", "ndcg", "hit_rate", "coverage")


def _assert_fractions(result, names):
    for fold in result.folds:
        for name in names:
            for metric, value in fold[name].items():
                if metric.startswith(RANKING) or metric in ("map",) or metric.startswith("ties"):
                    assert 0.0 <= value <= 1.0, (name, metric, value)


def test_rating_protocol_writes_report_json_and_plots(small_frame, fast_models, tmp_path):
    names, params = fast_models
    out = tmp_path / "report"
    result = evaluate_frame(
        small_frame,
        "kfold:2",
        names,
        out=out,
        progress=False,
        model_params=params,
        dataset_name="ml-latest-small[:100 users]",
    )
    assert result.method_names == names
    assert len(result.folds) == 2
    for name in names:
        assert 0.5 < result.mean(name, "rmse") < 1.5
        assert 0.0 < result.mean(name, "mae") < result.mean(name, "rmse")
        assert result.mean(name, "fit_s") >= 0
        assert result.mean(name, "novelty@10") > 0
    _assert_fractions(result, names)
    for info in result.fold_info:
        assert info["users_ranked"] > 50
        assert info["n_train"] + info["n_test"] == len(small_frame)

    for filename in (
        "report.md",
        "results.json",
        "rmse.png",
        "recall_at_k.png",
        "fit_time_vs_rmse.png",
    ):
        assert (out / filename).stat().st_size > 0, filename
    assert (out / "rmse.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((out / "results.json").read_text())
    assert [f["fold"] for f in saved["folds"]] == [1, 2]
    assert saved["folds"][0]["metrics"][names[0]]["rmse"] == pytest.approx(
        result.folds[0][names[0]]["rmse"]
    )
    assert saved["summary"][names[0]]["rmse"]["mean"] == pytest.approx(
        result.mean(names[0], "rmse")
    )
    report = (out / "report.md").read_text()
    assert "![rmse.png](rmse.png)" in report
    assert "| method | RMSE | MAE |" in report
    table = format_table(result)
    assert all(name in table for name in names) and "RMSE" in table


def test_same_seed_same_numbers(small_frame):
    a = evaluate_frame(small_frame, "holdout:0.2", ["popular"], progress=False, seed=3)
    b = evaluate_frame(small_frame, "holdout:0.2", ["popular"], progress=False, seed=3)
    assert a.mean("popular", "rmse") == b.mean("popular", "rmse")
    assert a.mean("popular", "ndcg@10") == b.mean("popular", "ndcg@10")


def test_onboarding_protocol_on_ml_latest_small(session_home, fast_models, tmp_path):
    names, params = fast_models
    result = run_evaluation(
        "ml-latest-small",
        "holdout:0.2",
        names,
        peers=True,
        protocol="onboarding",
        out=tmp_path,
        progress=False,
        home=session_home,
        model_params={**params, "original": {"n_components": 5, "max_iter": 30}},
        peer_names=["original"],
    )
    assert result.method_names == [*names, "original"]
    info = result.fold_info[0]
    assert info["heldout_users"] == round(0.2 * 610)
    assert (
        info["users_ranked"] + info["skipped_no_reveal"] + info["skipped_no_relevant"]
        == (info["heldout_users"])
    )
    assert info["users_ranked"] > 0 and 0 < info["mean_revealed"] <= 15
    for name in result.method_names:
        for metric in ("hit_rate@5", "ndcg@10", "recall@20"):
            assert 0.0 <= result.mean(name, metric) <= 1.0
        assert 0.3 < result.mean(name, "rmse") < 2.0
    _assert_fractions(result, result.method_names)
    if "popular" in names:  # the form's movies are popular: some hits are certain
        assert result.mean("popular", "hit_rate@20") > 0.2
    assert (tmp_path / "onboarding.png").exists()
    report = (tmp_path / "report.md").read_text()
    assert "skipped" in report and "revealed" in report
    assert "held-out users" in format_table(result)
    _assert_beyond_accuracy(result, tmp_path)


BEYOND = ("distinct", "coverage", "popularity", "novelty", "overlap", "diversity")
BEYOND = (*[f"{m}@10" for m in (*BEYOND, "miscalibration")], "taste_loved@10", "taste_hated@10")


def _assert_beyond_accuracy(result, out):
    """Every method, ours and the peer alike, has every beyond-accuracy measure in the
    table, the report, the plot and results.json."""
    for name in result.method_names:
        for metric in BEYOND:
            assert not math.isnan(result.mean(name, metric)), (name, metric)
    table = format_table(result)
    for column in ("distinct@10", "pop%@10", "overlap@10", "ILD@10", "miscal@10", "loved@10"):
        assert column in table
    genre_table = table[table.index("ILD@10") :]
    assert all(name in genre_table for name in result.method_names)
    report = (out / "report.md").read_text()
    assert "## Beyond accuracy at k=10" in report and "miscalibration" in report
    assert "![beyond_accuracy.png](beyond_accuracy.png)" in report
    assert (out / "beyond_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((out / "results.json").read_text())["summary"]
    for name in result.method_names:
        assert set(BEYOND) <= set(saved[name]), name


def test_onboarding_support_filter_is_off_unless_asked(small_frame):
    on = evaluate_frame(
        small_frame,
        "kfold:2",
        ["popular"],
        protocol="onboarding",
        progress=False,
        min_ratings=10_000,  # no movie has that many: nobody can be scored
    )
    assert all(info["users_ranked"] == 0 for info in on.fold_info)
    off = evaluate_frame(small_frame, "kfold:2", ["popular"], protocol="onboarding", progress=False)
    assert all(info["users_ranked"] > 0 for info in off.fold_info)
    assert all(info["min_ratings"] == 0 for info in off.fold_info)


def test_rating_protocol_support_filter(small_frame):
    counts = small_frame["movieId"].value_counts()
    result = evaluate_frame(
        small_frame, None, ["popular"], progress=False, min_ratings=30, k_values=(10,)
    )
    assert result.split == "kfold:5"  # the default for a frame
    unfiltered = evaluate_frame(small_frame, None, ["popular"], progress=False, k_values=(10,))
    # fewer candidates: coverage is over the movies with 30+ ratings only
    assert result.mean("popular", "coverage@10") > unfiltered.mean("popular", "coverage@10")
    assert (counts >= 30).sum() < counts.size


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"split": "kfold:1"}, "split"),
        ({"split": "holdout:2"}, "split"),
        ({"split": "bogus"}, "split"),
        ({"protocol": "ranking"}, "protocol"),
        ({"protocol": "onboarding", "split": "official"}, "split"),
        ({"dataset": "ml-latest-small", "split": "official"}, "split"),
        ({"models": ["no-such-model"]}, "model"),
        ({"models": []}, "models"),
        ({"k_values": (0, 5)}, "k_values"),
    ],
)
def test_bad_arguments_fail_before_any_work(kwargs, field, tmp_path):
    args = {"dataset": "ml-100k", "split": "official", "models": ["popular"], "peers": False}
    args.update(kwargs)
    with pytest.raises(InvalidInput) as caught:
        # home is empty: reaching the data loader would mean fetching, so this must fail first
        run_evaluation(**args, home=tmp_path / "nothing", progress=False)
    assert caught.value.field == field
    assert not (tmp_path / "nothing").exists()


def test_missing_surprise_says_how_to_install(monkeypatch, small_frame):
    import sys

    monkeypatch.setitem(sys.modules, "surprise", None)  # import now raises ImportError
    with pytest.raises(InvalidInput, match="pip install") as caught:
        evaluate_frame(small_frame, "holdout:0.2", ["popular"], peers=True, progress=False)
    assert caught.value.field == "peers"


def test_single_fold_table_has_no_std(small_frame):
    result = evaluate_frame(small_frame, "holdout:0.2", ["popular"], progress=False)
    assert "±" not in format_table(result)
    assert not math.isnan(result.mean("popular", "map"))
