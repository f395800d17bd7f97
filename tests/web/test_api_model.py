"""``GET /api/v1/model`` while ``movierec train`` rewrites the files it reads.

The answer repeats the served model's version and figures (read once, at load) and the
last-training record beside its file (read on every request). A record half written,
of the wrong shape or with values of the wrong types, and a model file replaced or cut
while the server looks at it, must each be a 200 with what is known, never a 500.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
from flask import Flask
from webhelpers import SERVED_DATASET as DATASET
from webhelpers import save_served_popular as save
from webhelpers import served_settings as settings_of

from movierec.data import load_dataset
from movierec.training import model_path, training_record_path
from movierec.web.api_model import ModelInfo
from movierec.web.services import Recommenders


@pytest.fixture(scope="module")
def dataset(session_home: Path):
    return load_dataset(DATASET, home=session_home)


@pytest.fixture
def home(tmp_path: Path, session_home: Path, dataset) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "data").symlink_to(session_home / "data", target_is_directory=True)
    save(home, dataset)
    return home


@pytest.fixture
def served(make_app, home: Path) -> tuple[Flask, Recommenders]:
    recommenders = Recommenders(settings_of(home))
    app = make_app(
        MOVIEREC_HOME=str(home),
        MOVIEREC_MODEL="popular",
        RECOMMENDERS=recommenders,
        RATE_LIMIT="100000/minute",  # the hammering test asks hundreds of times
    )
    recommenders.get("popular")
    return app, recommenders


def strict_json(text: str) -> dict:
    """The body as JSON proper: ``NaN`` / ``Infinity`` are not JSON."""

    def refuse(constant: str) -> float:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def model_info(app: Flask) -> dict:
    """The answer, checked: a 200 whose body is JSON and matches the documented schema."""
    answer = app.test_client().get("/api/v1/model")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200, text
    body = strict_json(text)
    ModelInfo.model_validate(body)
    return body


RECORDS: dict[str, bytes] = {
    "half written": b'{"outcome": "saved", "started_at": "2026-12-07T09:0',
    "empty": b"",
    "a list": b'["saved"]',
    "a string": b'"saved"',
    "null": b"null",
    "no outcome": b'{"seconds": 3.5}',
    "outcome of another type": b'{"outcome": ["saved"]}',
    "outcome unknown": b'{"outcome": "crashed"}',
    "figures of wrong types": json.dumps(
        {
            "outcome": "saved",
            "seconds": "fast",
            "ratings": [1],
            "visitors": {"n": 1},
            "rmse": True,
            "dataset_users": None,
            "version": 7,
            "reason": {"why": 1},
            "started_at": 20261207,
            "finished_at": ["now"],
        }
    ).encode(),  # fmt: skip
    "negative figures": b'{"outcome": "failed", "seconds": -1, "ratings": -5}',
    "NaN and Infinity": b'{"outcome": "saved", "rmse": NaN, "seconds": Infinity}',
    "overflowing number": b'{"outcome": "saved", "seconds": 1e999, "mean_rmse": -1e999}',
    "big integer": b'{"outcome": "saved", "ratings": 1'
    + b"0" * 400
    + b', "seconds": 1'
    + b"0" * 400
    + b"}",
    "huge integer": b'{"outcome": "saved", "ratings": 1' + b"0" * 5000 + b"}",
    "nested deeply": b'{"outcome": "saved", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "not UTF-8": b'{"outcome": "saved", "reason": "\xff\xfe"}',
    "lone surrogate": b'{"outcome": "failed", "reason": "\\ud800"}',
    "NUL bytes": b"\x00" * 64,
}


@pytest.mark.parametrize("content", RECORDS.values(), ids=RECORDS.keys())
def test_a_damaged_training_record_is_a_200_with_what_is_known(served, home, content):
    app, _ = served
    record = training_record_path(DATASET, "popular", settings_of(home))
    record.write_bytes(content)
    body = model_info(app)
    assert body["name"] == "popular" and body["version"]
    last = body["last_training"]
    if last is not None:
        for key, value in last.items():
            if isinstance(value, float):
                assert math.isfinite(value) and value >= 0, (key, value)


def test_a_record_that_is_a_directory_or_unreadable_is_left_out(served, home):
    app, _ = served
    record = training_record_path(DATASET, "popular", settings_of(home))
    record.mkdir()
    assert model_info(app)["last_training"] is None
    record.rmdir()
    record.write_text('{"outcome": "saved", "seconds": 2.5}')
    record.chmod(0)
    try:
        body = model_info(app)
    finally:
        record.chmod(0o600)
    assert body["last_training"] in (None, {"outcome": "saved", "seconds": 2.5})  # root reads


def test_a_good_record_is_repeated(served, home):
    app, _ = served
    record = training_record_path(DATASET, "popular", settings_of(home))
    good = {"outcome": "saved", "seconds": 2.5, "ratings": 100_836, "version": "v1",
            "started_at": "2026-12-07T09:00:00Z", "extra": "not documented"}  # fmt: skip
    record.write_text(json.dumps(good))
    assert model_info(app)["last_training"] == {k: v for k, v in good.items() if k != "extra"}


def test_hammering_while_training_rewrites_the_record_and_swaps_model_files(served, home, dataset):
    """A writer saves new model files (some cut short), swaps them in as serve's checker
    does, and rewrites the record in place (readers see it half written) while the API
    is asked over and over: every answer a good 200."""
    app, recommenders = served
    settings = settings_of(home)
    record = training_record_path(DATASET, "popular", settings)
    served_path = model_path(DATASET, "popular", settings)
    spare = save(home.parent / "spare", dataset, damping=7.0)
    cut = spare.read_bytes()[: spare.stat().st_size // 2]
    done = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(12):
                text = json.dumps({"outcome": "saved", "seconds": i + 0.5, "ratings": 100 * i})
                with record.open("w") as out:  # not atomic: a reader may see half
                    out.write(text[: len(text) // 2])
                    out.flush()
                    out.write(text[len(text) // 2 :])
                if i % 3 == 2:
                    temp = served_path.with_name("cut.npz")
                    temp.write_bytes(cut)
                    temp.replace(served_path)
                else:
                    save(home, dataset, damping=10.0 + i)
                recommenders.refresh("popular")
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    versions, asked = set(), 0
    while (not done.is_set() or asked < 20) and asked < 5000:
        versions.add(model_info(app)["version"])
        asked += 1
    writer.join()
    assert not failures, failures
    assert len(versions) >= 2  # new files were swapped in while asking


def test_figures_of_a_model_file_of_the_wrong_types_are_left_out(served):
    app, recommenders = served
    model = recommenders.get("popular").model
    kept = model.training
    model.training = {"ratings": True, "dataset_users": -3, "visitors": 2.5}
    try:
        trained_on = model_info(app)["trained_on"]
    finally:
        model.training = kept
    assert trained_on == {"ratings": None, "dataset_users": None, "visitors": None}


def test_the_answer_does_not_wait_for_or_depend_on_the_onboarding_index(served, monkeypatch):
    """Right after a new default model is swapped in, the first requests that need the
    onboarding index rebuild it (seconds for ease); the model's own endpoint needs only
    the served model names, so a failing or slow rebuild is not its failure."""
    app, _ = served
    services = app.extensions["movierec"]

    def broken() -> None:
        raise RuntimeError("onboarding index being rebuilt")

    monkeypatch.setattr(services, "onboarding", broken)
    assert model_info(app)["name"] == "popular"
    answer = app.test_client().get("/api/v1/model?model=nope")
    assert answer.status_code == 400 and answer.get_json()["field"] == "model"
