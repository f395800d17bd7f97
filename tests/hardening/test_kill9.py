"""kill -9 during writes loses no confirmed rating (issue 7, "How it is shown").

A real server process (waitress, the app on a SQLite file) takes rating submissions from
4 clients; it is killed with SIGKILL mid-stream; every submission that got a 200 must
be in the database when it is opened again.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from movierec.store import Rating, Store

CLIENTS = 4
PER_CLIENT = 150  # submissions at most per client (bounded even if the kill came late)
KILL_AFTER = 60  # confirmed writes before the kill

SERVER = """
import sys
import waitress
from movierec.web import create_app

home, dataset, database, port = sys.argv[1:5]
app = create_app({
    "TESTING": True,
    "WTF_CSRF_ENABLED": False,
    "RATELIMIT_ENABLED": False,
    "SECRET_KEY": "kill-nine-test-secret-key-0123456789",
    "MOVIEREC_HOME": home,
    "DATASET": dataset,
    "MOVIEREC_MODEL": "popular",
    "DATABASE_URL": database,
})
app.extensions["movierec"].recommender()  # load the model before taking requests
print("ready", flush=True)
waitress.serve(app, host="127.0.0.1", port=int(port), threads=8, _quiet=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # a server process loading data and a model: ~5-10 s
def test_kill_9_during_writes_loses_no_confirmed_rating(web_home, recommenders, tmp_path):
    database = f"sqlite:///{tmp_path / 'kill9.db'}"
    port = free_port()
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "server.log").open("w")  # a file: a full pipe would stall the server
    server = subprocess.Popen(
        [sys.executable, str(script), str(web_home), "ml-latest-small", database, str(port)],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        text=True,
    )
    try:
        ready = server.stdout.readline()
        assert ready.strip() == "ready", (tmp_path / "server.log").read_text()[-2000:]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # the socket opens just after "ready"
            try:
                urllib.request.urlopen(base + "/poster/1.svg", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)

        movies = [m.movie_id for m in recommenders.catalog.most_rated(CLIENTS * PER_CLIENT)]
        confirmed: dict[int, float] = {}
        lock = threading.Lock()
        enough = threading.Event()

        def client(i: int) -> None:
            opener = urllib.request.build_opener(
                urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
            )
            for movie in movies[i::CLIENTS]:
                stars = 0.5 + (movie % 10) / 2
                body = urllib.parse.urlencode({f"rating-{movie}": stars, "year": "any"})
                try:
                    with opener.open(base + "/recommendations", body.encode(), timeout=10) as r:
                        r.read()
                        ok = r.status == 200
                except (OSError, http.client.HTTPException):  # IncompleteRead: killed mid-page
                    return  # the server is gone
                if ok:
                    with lock:
                        confirmed[movie] = stars
                        if len(confirmed) >= KILL_AFTER:
                            enough.set()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=120), "too few writes confirmed"
        os.kill(server.pid, signal.SIGKILL)  # mid-stream: the clients are still posting
        server.wait(timeout=10)
        for thread in threads:
            thread.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        server.stdout.close()
        log.close()

    assert server.returncode == -signal.SIGKILL
    assert len(confirmed) < CLIENTS * PER_CLIENT  # killed before the clients finished
    store = Store(database)
    try:
        with store.session() as db:
            stored = dict(db.execute(select(Rating.movie_id, Rating.stars)).all())
    finally:
        store.dispose()
    lost = {m: s for m, s in confirmed.items() if stored.get(m) != s}
    assert not lost, f"{len(lost)} of {len(confirmed)} confirmed ratings lost"
    assert len(confirmed) >= KILL_AFTER
    assert Path(tmp_path / "kill9.db").stat().st_size > 0
