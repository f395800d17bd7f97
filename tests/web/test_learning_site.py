"""Issue 18's "done when", against a real ``movierec serve`` from a fresh home:

1. ``movierec serve`` is running (2 workers; it fetches the data and trains its models);
2. 40 visitors with cookies rate an obscure movie and a mid-popular movie 5 stars through
   the pages, each with a few varied ratings of other movies, as people do;
3. ``movierec train --with-visitors`` runs, with load on the API;
4. the served ``/api/v1/model`` version changes without a restart (same worker pids) and
   with 0 failed requests;
5. the mid-popular movie's similar list now contains the obscure one.

The visitors come from one address, so the per-address limits (new visitors an hour,
requests a minute) are raised for this server, as an operator testing their site would.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from movierec.data import load_dataset
from movierec.web.testing import (
    BackgroundLoad,
    ServeProcess,
    request_json,
    serve_env,
    serve_process,
)

DATASET = "ml-latest-small"
VISITORS = 40
OTHERS_PER_VISITOR = 4  # varied ratings of other movies, so each visitor counts (5+)
START_TIMEOUT = 1200.0  # s: a fresh home trains every offered model first
SWAP_WITHIN = 120.0  # s after training ends for every worker to serve the new version
LOAD_CLIENTS = 4
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def pick_movies(session_home: Path) -> tuple[int, int, list[int]]:
    """(obscure, mid-popular, popular others): the mid-popular movie has 30-60 ratings;
    the obscure one 2, too few to be offered as similar, and the same genres (a group of
    visitors who love two romantic comedies, one forgotten: *Grumpier Old Men* and *If
    Lucy Fell*); the others 100+ ratings."""
    frame = load_dataset(DATASET, home=session_home).catalog.frame
    counts = frame["n_ratings"].fillna(0)
    obscure_ones = frame[counts == 2]
    for middle in frame.index[(counts >= 30) & (counts <= 60)]:
        alike = obscure_ones.index[obscure_ones["genres"] == frame.at[middle, "genres"]]
        if len(alike):
            break
    popular = sorted(int(m) for m in counts[counts >= 100].index)
    return int(alike.min()), int(middle), popular


class Visitor:
    """One browser: a cookie jar, pages fetched and forms posted as the site serves them."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def rate(self, movie_id: int, stars: float) -> None:
        """Open the movie's page and post its rating form."""
        with self.opener.open(f"{self.base}/movies/{movie_id}", timeout=30) as page:
            token = CSRF.search(page.read().decode()).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "stars": stars}).encode()
        with self.opener.open(f"{self.base}/movies/{movie_id}/rate", form, timeout=30) as done:
            assert done.status == 200  # the 303 back to the movie page, followed
            assert "You gave" in done.read().decode()


def versions_seen(server: ServeProcess, asks: int) -> set[str]:
    """The versions ``asks`` fresh connections were answered with (spread over workers)."""
    return {request_json(server.port, "GET", "/api/v1/model")["version"] for _ in range(asks)}


def similar_to(server: ServeProcess, movie_id: int) -> list[int]:
    answer = request_json(server.port, "GET", f"/api/v1/movies/{movie_id}/similar?n=10")
    return [m["movieId"] for m in answer["movies"]]


@pytest.mark.slow
def test_visitors_ratings_train_the_next_model_which_goes_live_without_a_restart(
    tmp_path: Path, session_home: Path
):
    obscure, middle, popular = pick_movies(session_home)
    home = tmp_path / "home"  # fresh: serve fetches the data and trains its models
    env = serve_env(
        MOVIEREC_HOME=str(home),
        MOVIEREC_WORKERS="2",
        DATABASE_URL=f"sqlite:///{tmp_path / 'site.db'}",
        MOVIEREC_SECRET_KEY="learning-site-test-secret-key",
        MOVIEREC_NEW_VISITORS_PER_HOUR="1000",
        MOVIEREC_RATE_LIMIT="100000/minute",
        MOVIEREC_MODEL_CHECK_EVERY="2",  # the workers' own look for a newer file (10 s default)
    )
    with serve_process(env, tmp_path / "serve.log", start_timeout=START_TIMEOUT) as server:
        workers = server.workers()
        rng = random.Random(18)
        for _ in range(VISITORS):
            visitor = Visitor(server.port)
            visitor.rate(obscure, 5.0)
            visitor.rate(middle, 5.0)
            for movie_id in rng.sample(popular, OTHERS_PER_VISITOR):
                visitor.rate(movie_id, rng.choice([2.0, 3.0, 3.5, 4.0, 4.5, 5.0]))

        asked = {str(middle): 5.0, str(popular[0]): 4.0}
        requests = [
            ("GET", "/api/v1/model", None),
            ("POST", "/api/v1/recommendations", {"ratings": asked}),
        ]
        with BackgroundLoad(server.port, requests, clients=LOAD_CLIENTS) as load:
            before = versions_seen(server, 10)
            assert len(before) == 1, before
            assert obscure not in similar_to(server, middle)  # 2 ratings: never offered

            trained = subprocess.run(
                [sys.executable, "-m", "movierec.cli", "train", "--with-visitors"],
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,
            )
            assert trained.returncode == 0, trained.stderr[-2000:]
            assert f"{VISITORS} visitors" in trained.stdout, trained.stdout

            deadline = time.monotonic() + SWAP_WITHIN
            while True:
                now = versions_seen(server, 10)
                if len(now) == 1 and now != before:
                    break
                assert time.monotonic() < deadline, f"still {now}:\n{server.log.read_text()}"
                time.sleep(1.0)
            answer = request_json(server.port, "GET", "/api/v1/model")
            time.sleep(2.0)  # load goes on after the swap too
        assert load.failed == [], load.failed[:5]
        assert load.done > 0
        assert server.workers() == workers  # no restart
        assert answer["trained_on"]["visitors"] == VISITORS
        assert answer["last_training"]["outcome"] == "saved"
        assert answer["last_training"]["version"] == answer["version"]
        assert obscure in similar_to(server, middle)
    assert "Traceback" not in server.log.read_text()
