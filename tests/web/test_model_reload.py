"""Model versions, swapping a newer file in without a restart, and scheduled retraining.

Each test has a home of its own holding a ``popular`` model fitted without calibration
(well under a second), so files can be replaced freely; the app is made on it with
``MOVIEREC_MODEL=popular``. Real serve processes are in tests/hardening/test_model_swap.py.
"""

from __future__ import annotations

import gc
import logging
import shutil
import sys
import time
import weakref
from pathlib import Path

import pytest
from flask import Flask
from webhelpers import SERVED_DATASET as DATASET
from webhelpers import save_served_popular as save
from webhelpers import served_settings as settings_of

from movierec import cli, models
from movierec.data import load_dataset
from movierec.errors import InvalidInput, ModelError
from movierec.models.files import FileVersion, read_model_meta
from movierec.training import model_path, read_training_record, save_checked, train_model
from movierec.web import retrain
from movierec.web.retrain import Retrainer, parse_every
from movierec.web.services import Recommenders

#: a popular model whose predictions are the global mean: fails the quality check
FLAT = {"damping": 1e6, "user_damping": 1e9}


@pytest.fixture(scope="module")
def dataset(session_home: Path):
    return load_dataset(DATASET, home=session_home)


@pytest.fixture
def model_home(tmp_path: Path, session_home: Path, dataset) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "data").symlink_to(session_home / "data", target_is_directory=True)
    save(home, dataset)
    return home


@pytest.fixture
def served(make_app, model_home: Path) -> tuple[Flask, Recommenders]:
    recommenders = Recommenders(settings_of(model_home))
    app = make_app(
        MOVIEREC_HOME=str(model_home), MOVIEREC_MODEL="popular", RECOMMENDERS=recommenders
    )
    recommenders.get("popular")
    return app, recommenders


def api_model(app: Flask, query: str = "") -> dict:
    answer = app.test_client().get(f"/api/v1/model{query}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


# -- versions -------------------------------------------------------------------------
def test_every_saved_model_file_has_a_version(model_home: Path, dataset):
    path = model_path(DATASET, "popular", settings_of(model_home))
    loaded = models.load(path)
    version = loaded.version
    assert version is not None and len(version.content_hash) == 64
    assert time.strptime(version.trained_at, "%Y-%m-%dT%H:%M:%SZ")
    assert version.version.endswith(version.content_hash[:12])
    assert FileVersion.of(read_model_meta(path)) == version

    same = save(home=model_home, dataset=dataset)  # equal content, saved later
    assert models.load(same).version.content_hash == version.content_hash
    save(model_home, dataset, damping=20.0)
    assert models.load(path).version.content_hash != version.content_hash


# -- swapping a newer file in -----------------------------------------------------------
def test_a_newer_file_is_swapped_in_and_the_old_model_released(served, model_home, dataset):
    app, recommenders = served
    client = app.test_client()
    before = api_model(app)
    assert client.get("/api/v1/movies/1/similar").status_code == 200  # built from it
    in_flight = recommenders.get("popular")  # a request holding the model in use
    old = weakref.ref(in_flight.model)

    path = save(model_home, dataset, damping=20.0)
    assert recommenders.refresh("popular") is True
    after = api_model(app)
    assert after["version"] != before["version"]
    assert after["version"] == models.load(path).version.version
    assert after["trained_at"] and after["name"] == "popular" and after["dataset"] == DATASET

    # the request that held the old model finishes on it
    picks = in_flight.recommend({1: 5.0, 260: 4.0}, year="any", n=5)
    assert len(picks.items) == 5 and old() is in_flight.model
    assert client.get("/api/v1/movies/1/similar").status_code == 200  # rebuilt for the new
    del in_flight, picks
    gc.collect()
    assert old() is None, "something still holds the old model"
    # the new model's arrays are views of the file, memory-mapped
    assert str(path) in Path("/proc/self/maps").read_text()


def test_a_file_of_the_version_in_use_is_not_loaded_again(served, model_home, dataset):
    app, recommenders = served
    service = recommenders.get("popular")
    path = model_path(DATASET, "popular", settings_of(model_home))
    shutil.copyfile(path, path.with_name("copy.npz"))
    path.with_name("copy.npz").replace(path)  # a new file, the same version
    assert recommenders.refresh("popular") is False
    assert recommenders.get("popular") is service


def test_a_damaged_newer_file_is_never_swapped_in(served, model_home, dataset, caplog):
    app, recommenders = served
    before = api_model(app)["version"]
    path = save(model_home.parent / "elsewhere", dataset, damping=20.0)
    cut = path.with_name("cut.npz")
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    served_path = model_path(DATASET, "popular", settings_of(model_home))
    cut.replace(served_path)
    with caplog.at_level(logging.INFO, logger="movierec"):
        assert recommenders.refresh("popular") is False
        assert recommenders.refresh("popular") is False  # said once, not on every look
    said = [r.getMessage() for r in caplog.records if "newer file not used" in r.getMessage()]
    assert len(said) == 1 and "damaged" in said[0] and "\n" not in said[0]
    assert api_model(app)["version"] == before
    # a good file after it goes live
    shutil.copyfile(path, served_path.with_name("good.npz"))
    served_path.with_name("good.npz").replace(served_path)
    assert recommenders.refresh("popular") is True
    assert api_model(app)["version"] != before


def test_a_file_that_fails_the_quality_check_is_never_swapped_in(
    served, model_home, dataset, caplog
):
    app, recommenders = served
    before = api_model(app)["version"]
    save(model_home, dataset, **FLAT)  # as if copied into place by hand
    with caplog.at_level(logging.WARNING, logger="movierec"):
        assert recommenders.refresh("popular") is False
    assert any("failed its check" in r.getMessage() for r in caplog.records)
    assert api_model(app)["version"] == before


def test_the_api_refuses_an_unknown_model_or_parameter(served):
    app, _ = served
    client = app.test_client()
    answer = client.get("/api/v1/model?model=nope")
    assert answer.status_code == 400 and answer.get_json()["field"] == "model"
    answer = client.get("/api/v1/model?versoin=1")
    assert answer.status_code == 400 and answer.get_json()["field"] == "versoin"


# -- training never replaces a good file with a bad one --------------------------------------
def test_a_failing_training_keeps_the_good_file_and_records_why(model_home, dataset):
    settings = settings_of(model_home)
    path = model_path(DATASET, "popular", settings)
    good = path.read_bytes()
    bad = models.create("popular", **FLAT).fit(dataset.ratings)
    with pytest.raises(ModelError, match="not replacing"):
        save_checked(bad, dataset, path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp left

    with pytest.raises(ModelError, match="failed its check"):
        train_model(dataset, "popular", settings, progress=False, **FLAT)
    assert path.read_bytes() == good
    record = read_training_record(path)
    assert record["outcome"] == "failed" and "failed its check" in record["reason"]

    train_model(dataset, "popular", settings, progress=False, damping=20.0)
    record = read_training_record(path)
    assert record["outcome"] == "saved" and record["version"] == models.load(path).version.version
    assert record["ratings"] == dataset.ratings.nnz and record["rmse"] < record["mean_rmse"]


# -- the schedule ---------------------------------------------------------------------------
@pytest.mark.parametrize("text,seconds", [("30m", 1800), ("6h", 21600), ("1d", 86400), ("90s", 90)])
def test_retrain_every_takes_a_number_and_a_unit(text: str, seconds: float):
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["6", "6x", "h", "-1h", "1 h 2m", "0m", "5s", ""])
def test_a_bad_retrain_every_is_one_line_and_exit_2(text: str, capsys):
    with pytest.raises(InvalidInput):
        parse_every(text)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["serve", "--retrain-every", text])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--retrain-every" in err


def test_a_failed_scheduled_training_keeps_the_model_and_says_why(model_home, monkeypatch):
    settings = settings_of(model_home)
    path = model_path(DATASET, "popular", settings)
    good = path.read_bytes()
    failing = [sys.executable, "-c", "import sys; print('no database here'); sys.exit(3)"]
    monkeypatch.setattr(retrain, "train_command", lambda dataset, model: failing)
    lines: list[str] = []
    trained: list[str] = []
    schedule = Retrainer(60, settings, ["popular"], on_trained=trained.append, log=lines.append)
    schedule.poll(schedule.due)  # due: starts the training
    assert schedule.child is not None
    schedule.child.wait(timeout=30)
    schedule.poll(time.monotonic())  # reaps it
    assert schedule.child is None and trained == []
    assert lines[-1].startswith("retraining popular on ml-latest-small failed")
    assert "exited with code 3: no database here" in lines[-1]
    assert lines[-1].endswith("the model in use stays")
    assert path.read_bytes() == good
    assert read_training_record(path)["outcome"] == "failed"
    assert schedule.due > time.monotonic() + 50  # the next round in `every` seconds


def test_a_scheduled_training_that_cannot_start_is_one_line(model_home, monkeypatch):
    settings = settings_of(model_home)
    missing = [str(model_home / "no-such-python"), "-m", "movierec.cli", "train"]
    monkeypatch.setattr(retrain, "train_command", lambda dataset, model: missing)
    lines: list[str] = []
    schedule = Retrainer(60, settings, ["popular", "svd"], log=lines.append)
    schedule.poll(schedule.due)
    assert schedule.child is None and schedule.queue == []
    assert lines[-1].startswith("retraining popular could not start (")
    assert lines[-1].endswith("the model in use stays")
    assert schedule.due > time.monotonic() + 50
