"""New model files go live in a real ``movierec serve`` (2 workers): by the workers' own
look within its bound, without a restart or a failed request; on SIGHUP, in the workers
that replace the old; and from ``--retrain-every``, trained at low priority in a process
of its own.

The home holds the web tests' quick models (copied, as files here are replaced) and
serves ``popular`` (``--no-train``), whose new versions fit in well under a second.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from movierec import models
from movierec.config import DEFAULT_MODEL_CHECK_EVERY, load_settings
from movierec.data import load_dataset
from movierec.training import model_path
from movierec.web.testing import (
    BackgroundLoad,
    ServeProcess,
    request_json,
    serve_env,
    serve_process,
)

DATASET = "ml-latest-small"
START_TIMEOUT = 300.0
#: the bound documented in web/serve.py: a check every 10 s (+ a fifth) plus the load
SWAP_WITHIN = DEFAULT_MODEL_CHECK_EVERY * 1.2 + 10.0
RELOAD_WITHIN = 60.0
RETRAIN_WITHIN = 300.0
ASKS = 10  # fresh connections asked for the version: both workers answer some
#: what the background load asks, again and again, while a new model goes live
RECOMMEND = ("POST", "/api/v1/recommendations", {"ratings": {"1": 5, "260": 4.5, "2571": 2}})


def copy_home(web_home: Path, home: Path) -> Path:
    home.mkdir()
    (home / "data").symlink_to((web_home / "data").resolve(), target_is_directory=True)
    shutil.copytree(web_home / "models", home / "models")
    return home


def versions(port: int) -> set[str]:
    return {request_json(port, "GET", "/api/v1/model")["version"] for _ in range(ASKS)}


def wait_for_version(server: ServeProcess, version: str, within: float) -> float:
    started = time.monotonic()
    while versions(server.port) != {version}:
        assert time.monotonic() - started < within, server.log.read_text()[-3000:]
        time.sleep(0.5)
    return time.monotonic() - started


def new_popular(home: Path, damping: float) -> str:
    """A new version of the served popular model saved over its file; its version."""
    settings = load_settings({"MOVIEREC_HOME": str(home)})
    ratings = load_dataset(DATASET, home=home).ratings
    path = (
        models.create("popular", damping=damping)
        .fit(ratings)
        .save(model_path(DATASET, "popular", settings))
    )
    return models.load(path).version.version


def command(*extra: str):
    return lambda port: [
        sys.executable, "-m", "movierec.cli", "serve", "--port", str(port), "--no-train", *extra
    ]  # fmt: skip


@pytest.fixture(scope="module")
def swap_home(web_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_home(web_home, tmp_path_factory.mktemp("swap") / "home")


def env_for(home: Path, tmp: Path) -> dict[str, str]:
    return serve_env(
        MOVIEREC_HOME=str(home),
        MOVIEREC_MODEL="popular",
        MOVIEREC_WORKERS="2",
        DATABASE_URL=f"sqlite:///{tmp / 'serve.db'}",
        MOVIEREC_SECRET_KEY="model-swap-test-secret-key",
        MOVIEREC_RATE_LIMIT="100000/minute",
    )


@pytest.fixture(scope="module")
def server(swap_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("swap-server")
    with serve_process(env_for(swap_home, tmp), tmp / "serve.log", command(), START_TIMEOUT) as s:
        yield s
    assert s.process.returncode == 0, s.log.read_text()
    assert "Traceback" not in s.log.read_text()


@pytest.mark.slow
def test_workers_swap_a_new_file_in_by_themselves_without_a_restart(server, swap_home):
    workers = server.workers()
    before = versions(server.port)
    assert len(before) == 1
    with BackgroundLoad(server.port, [RECOMMEND]) as load:
        version = new_popular(swap_home, damping=20.0)
        wait_for_version(server, version, SWAP_WITHIN)
        time.sleep(1.0)
    assert load.failed == [] and load.done > 0
    assert server.workers() == workers  # the same processes: no restart
    assert server.log.read_text().count(f"now serving version {version}") == 2


@pytest.mark.slow
def test_sighup_serves_the_newest_file_from_the_replaced_workers(server, swap_home):
    workers = set(server.workers())
    version = new_popular(swap_home, damping=30.0)
    server.process.send_signal(signal.SIGHUP)
    started = time.monotonic()
    while set(server.workers()) & workers or len(server.workers()) != 2:
        assert time.monotonic() - started < RELOAD_WITHIN, server.log.read_text()[-3000:]
        time.sleep(0.2)
    assert versions(server.port) == {version}


@pytest.mark.slow
def test_retrain_every_retrains_at_low_priority_and_the_workers_take_it(
    web_home: Path, tmp_path: Path
):
    home = copy_home(web_home, tmp_path / "home")
    env = env_for(home, tmp_path)
    with serve_process(env, tmp_path / "serve.log", command("--retrain-every", "10s")) as server:
        before = request_json(server.port, "GET", "/api/v1/model")
        # relative to serve's own (a suite run under ``nice`` starts serve at 10)
        expected_niceness = min(19, os.getpriority(os.PRIO_PROCESS, server.process.pid) + 10)
        niceness = None
        started = time.monotonic()
        while True:
            assert time.monotonic() - started < RETRAIN_WITHIN, server.log.read_text()[-3000:]
            niceness = niceness or training_niceness(server.process.pid)
            answer = request_json(server.port, "GET", "/api/v1/model")
            if answer["version"] != before["version"] and len(versions(server.port)) == 1:
                break
            time.sleep(0.2)
        training = training_niceness(server.process.pid)  # the next model's, by now
    # stopping serve ended the training in progress; the model files are whole
    log = server.log.read_text()
    if training is not None:
        assert models.load(model_path(DATASET, "svd", load_settings({"MOVIEREC_HOME": str(home)})))
    assert niceness == expected_niceness
    assert answer["last_training"]["outcome"] == "saved"
    assert answer["last_training"]["version"] == answer["version"]
    assert answer["trained_on"] == {"ratings": 100836, "dataset_users": 610, "visitors": 0}
    assert "retrained popular on ml-latest-small in" in log and "0 visitors" in log
    assert server.process.returncode == 0 and "Traceback" not in log


def training_niceness(root: int) -> int | None:
    """The nice value of a ``movierec ... train`` process under ``root``, if one runs."""
    for task in Path(f"/proc/{root}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                stat = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if b"train" in cmdline:
                return int(stat[16])  # field 19 of /proc/<pid>/stat: nice
    return None
