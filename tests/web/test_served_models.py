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
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from movierec import models
from movierec.data import load_dataset
from movierec.recommend import recommend
from movierec.web.testing import ServeProcess, serve_env, serve_process

pytestmark = pytest.mark.slow

DATASET = "ml-latest-small"
START_TIMEOUT = 240.0  # seconds: fetch + train four models on 2 cores
#: a horror fan who hated two romances (movieIds of ml-latest-small)
RATINGS = {"1258": 5.0, "1387": 5.0, "1214": 4.5, "1997": 5.0, "597": 1.0, "539": 1.0}


def post(server: ServeProcess, path: str, body: dict) -> tuple[int, dict]:
    """(status, JSON) of one JSON POST on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        conn.close()


def get_json(server: ServeProcess, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    home = tmp_path_factory.mktemp("fresh-serve-home")
    env = serve_env(
        MOVIEREC_HOME=str(home),
        MOVIEREC_DATASET=DATASET,
        MOVIEREC_WORKERS="2",
        DATABASE_URL=f"sqlite:///{home / 'serve.db'}",
        MOVIEREC_SECRET_KEY="served-models-test-secret-key",
    )
    with serve_process(env, home / "server.log", start_timeout=START_TIMEOUT) as running:
        yield running


def test_every_offered_model_is_trained_before_it_is_served(server: ServeProcess, tmp_path: Path):
    home = server.log.parent
    workers = server.workers()
    assert len(workers) == 2
    offered = get_json(server, "/api/v1/onboarding")["models"]
    assert sorted(offered) == ["ease", "nmf", "popular", "svd"]

    catalog = load_dataset(DATASET, home=home, fetch=False).catalog
    ratings = {int(m): s for m, s in RATINGS.items()}
    for name in offered:
        served_file = home / "models" / f"{DATASET}-{name}.npz"
        assert served_file.is_file(), f"{name} was not saved before serving"
        served = models.load(served_file)
        expected = [r.movie.movie_id for r in recommend(served, catalog, ratings, n=10).items]
        for _ in range(4):  # both workers answer some of these
            status, body = post(
                server, "/api/v1/recommendations", {"ratings": RATINGS, "model": name, "n": 10}
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
            env=serve_env(MOVIEREC_HOME=str(other), MOVIEREC_DATASET=DATASET),
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
