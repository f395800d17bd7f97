"""Every model the app offers is trained before it is served, never in a web worker.

The real ``movierec serve --workers 2`` starts on a fresh, empty home (it fetches the
data set and trains every offered model, each in its own spawned process, before the
workers fork). Then each offered model is asked over HTTP, and:

- the model file the server saved holds the same fitted parameters as
  ``movierec train --model NAME`` gives on the same data (training is deterministic);
- the served picks are the library's picks from that file (``movierec.recommend``);
- no worker exited or was restarted, and the supervisor never started numba's
  OpenMP thread pool (forking after that aborts the children).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from webhelpers import free_port

from movierec import models
from movierec.data import load_dataset
from movierec.recommend import recommend

pytestmark = pytest.mark.slow

DATASET = "ml-latest-small"
START_TIMEOUT = 240.0  # seconds: fetch + train four models on 2 cores
#: a horror fan who hated two romances (movieIds of ml-latest-small)
RATINGS = {"1258": 5.0, "1387": 5.0, "1214": 4.5, "1997": 5.0, "597": 1.0, "539": 1.0}


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=data, headers=headers)
            answer = conn.getresponse()
            return answer.status, json.loads(answer.read() or b"{}")
        finally:
            conn.close()

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return sorted(int(p) for p in path.read_text().split())


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TMDB_API_KEY", "TMDB_READ_TOKEN", "DATABASE_URL", "REDIS_URL")
    }
    env.update(MOVIEREC_HOME=str(home), MOVIEREC_DATASET=DATASET, **extra)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("fresh-serve-home")
    port = free_port()
    log = home / "server.log"
    env = clean_env(
        home,
        MOVIEREC_WORKERS="2",
        DATABASE_URL=f"sqlite:///{home / 'serve.db'}",
        MOVIEREC_SECRET_KEY="served-models-test-secret-key",
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "movierec.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Server(process, port, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, f"serve exited early:\n{log.read_text()}"
            try:
                if running.request("GET", "/api/v1/onboarding")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"serve never answered:\n{log.read_text()}"
            time.sleep(0.3)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_every_offered_model_is_trained_before_it_is_served(server: Server, tmp_path: Path):
    home = server.log.parent
    workers = server.workers()
    assert len(workers) == 2
    status, onboarding = server.request("GET", "/api/v1/onboarding")
    offered = onboarding["models"]
    assert sorted(offered) == ["ease", "nmf", "popular", "svd"]

    catalog = load_dataset(DATASET, home=home, fetch=False).catalog
    ratings = {int(m): s for m, s in RATINGS.items()}
    for name in offered:
        served_file = home / "models" / f"{DATASET}-{name}.npz"
        assert served_file.is_file(), f"{name} was not saved before serving"
        served = models.load(served_file)
        expected = [r.movie.movie_id for r in recommend(served, catalog, ratings, n=10).items]
        for _ in range(4):  # both workers answer some of these
            status, body = server.request(
                "POST", "/api/v1/recommendations", {"ratings": RATINGS, "model": name, "n": 10}
            )
            assert status == 200, body
            assert body["model"] == name
            assert [r["movieId"] for r in body["recommendations"]] == expected, name

    # the same fitted parameters as `movierec train` gives in a home of its own
    other = tmp_path / "train-home"
    other.mkdir()
    (other / "data").symlink_to(home / "data", target_is_directory=True)
    for name in offered:
        subprocess.run(
            [sys.executable, "-m", "movierec.cli", "train", "--model", name],
            env=clean_env(other),
            check=True,
            capture_output=True,
        )
        trained = models.load(other / "models" / f"{DATASET}-{name}.npz")
        served = models.load(home / "models" / f"{DATASET}-{name}.npz")
        ours, theirs = served._arrays(), trained._arrays()  # noqa: SLF001 - file contents
        assert sorted(ours) == sorted(theirs)
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=f"{name}: {key}")

    assert server.workers() == workers, "a worker died and was restarted"
    log = server.log.read_text()
    for sign in ("exited with code", "was killed", "Terminating", "Traceback", "restarting"):
        assert sign not in log, f"{sign!r} in the server log:\n{log}"
    # numba's parallel kernels (training) start an OpenMP pool, loaded as a library of
    # numba's own; the supervisor must never have loaded one before forking
    maps = Path(f"/proc/{server.process.pid}/maps").read_text()
    assert "omppool" not in maps and "tbbpool" not in maps
