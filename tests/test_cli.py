"""The movierec command line, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from movierec.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "movierec.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_fetch_train_recommend(home, capsys):
    assert main(["data", "fetch", "ml-latest-small"]) == 0
    assert (home / "data" / "ml-latest-small" / "ratings.csv").exists()
    assert main(["train", "--model", "svd", "-p", "n_epochs=5"]) == 0
    assert (home / "models" / "ml-latest-small-svd.npz").exists()
    capsys.readouterr()
    assert main(["recommend", "--rate", "260=5", "--rate", "1=4.5", "--year", "old", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    picks = out["recommendations"]
    assert len(picks) == 5 and all(p["year"] < 2010 for p in picks)
    assert main(["recommend", "-r", "260=5", "-n", "3"]) == 0
    text = capsys.readouterr().out
    reasons = [line for line in text.splitlines() if line.startswith("    ")]
    assert len(reasons) == 3
    assert all(r.strip().startswith(("Because you rated", "Predicted from")) for r in reasons)


def test_recommend_trains_on_first_use(home, capsys):
    assert main(["recommend", "--model", "popular", "--rate", "260=5", "--json"]) == 0
    assert (home / "models" / "ml-latest-small-popular.npz").exists()
    assert len(json.loads(capsys.readouterr().out)["recommendations"]) == 5


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["recommend", "--rate", "260=9"], "9"),
        (["recommend", "--rate", "12x"], "12x"),
        (["recommend", "--rate", "99999999=4"], "99999999"),
        (["recommend", "--year", "future", "--rate", "260=4"], "future"),
        (["recommend", "--model", "bogus", "--rate", "260=4"], "bogus"),
        (["recommend", "-n", "-3"], "-3"),
        (["data", "fetch", "ml-nope"], "ml-nope"),
        (["serve", "--port", "99999"], "99999"),
        (["evaluate", "--split", "kfold:x"], "kfold:x"),
    ],
)
def test_bad_arguments_are_one_line_errors(home, args, named):
    if args[0] == "recommend" and "--model" not in args:
        args = [*args, "--model", "popular"]
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr


def test_content_model_is_trained_with_the_catalogue(home, capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fitting without movie text warns
        assert main(["train", "--model", "content"]) == 0
    assert (home / "models" / "ml-latest-small-content.npz").exists()


def test_store_prune(home, monkeypatch, capsys):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select

    from movierec.store import Rating, ShownRecommendation, Store, Visitor, repo

    monkeypatch.setenv("MOVIEREC_RETENTION_DAYS", "30")
    monkeypatch.setenv("MOVIEREC_SHOWN_PER_VISITOR", "4")
    store = Store(f"sqlite:///{home / 'movierec.db'}")
    store.create_schema()
    now = datetime.now(UTC)
    with store.session() as db:
        repo.upsert_ratings(db, "idle", {1: 4.0, 2: 3.0}, when=now - timedelta(days=40))
        repo.upsert_ratings(db, "active", {1: 5.0}, when=now - timedelta(days=1))
        repo.add_to_watchlist(db, "idle", [7, 8, 9], when=now - timedelta(days=40))
        repo.hide_movie(db, "idle", 5, when=now - timedelta(days=40))
        picks = [(10 + i, 4.0) for i in range(6)]
        repo.record_shown(db, "active", picks, "svd", "any", keep=10, when=now)

    def counts():
        with store.session() as db:
            return [
                db.scalar(select(func.count()).select_from(table))
                for table in (Visitor, Rating, ShownRecommendation)
            ]

    assert counts() == [2, 3, 6]
    capsys.readouterr()
    assert main(["store", "prune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "would remove 1 visitors idle for 30 days with 2 ratings, 3 watchlist entries, "
        "1 hidden movies and 0 import reports, and 2 shown picks"
    )
    assert "keeping 4 per visitor" in out and str(home / "movierec.db") in out
    assert counts() == [2, 3, 6]
    assert main(["store", "prune"]) == 0
    assert capsys.readouterr().out.startswith(
        "removed 1 visitors idle for 30 days with 2 ratings, 3 watchlist entries, 1 hidden"
    )
    assert counts() == [1, 1, 4]
    assert main(["store", "prune"]) == 0
    assert capsys.readouterr().out.startswith("removed 0 visitors")
    store.dispose()


def test_serve_options_reach_serve(home, monkeypatch):
    import movierec.web.serve

    calls = []
    monkeypatch.setattr(movierec.web.serve, "serve", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("MOVIEREC_WORKERS", "3")
    assert main(["serve"]) == 0
    argv = ["serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "1", "--no-train"]
    assert main(argv) == 0
    assert main(["serve", "--retrain-every", "6h"]) == 0
    first, second, third = ({k: v for k, v in c.items() if k != "settings"} for c in calls)
    assert first == {
        "host": "127.0.0.1", "port": 5000, "train": True, "workers": 3, "retrain_every": None
    }  # fmt: skip
    assert second == {
        "host": "0.0.0.0", "port": 8080, "train": False, "workers": 1, "retrain_every": None
    }  # fmt: skip
    assert third["retrain_every"] == 6 * 3600
    assert calls[0]["settings"].workers == 3
