"""What an operator runs the site with (issue 19, part 2): /healthz, /readyz, /metrics,
request ids, the access log and JSON logs."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from movierec import logs
from movierec.config import load_settings
from movierec.errors import InvalidInput
from movierec.web.services import Recommenders

TOKEN = "metrics-token-0123456789"
API = "/api/v1/recommendations"
BODY = {"ratings": {"356": 4.5, "318": 5}, "n": 3}


@pytest.fixture
def ready_app(make_app):
    app = make_app(RATE_LIMIT="2/minute", WTF_CSRF_ENABLED=False)
    app.extensions["movierec"].recommender()  # the default model loaded, as serve does
    return app


def test_healthz_and_readyz_answer_without_a_cookie_and_are_never_rate_limited(ready_app):
    client = ready_app.test_client()
    for _ in range(10):  # the limit is 2 a minute
        alive = client.get("/healthz")
        assert alive.status_code == 200 and alive.get_json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.get_json()
        assert ready.get_json() == {
            "status": "ready",
            "checks": {"model": "ok", "database": "ok", "migrations": "ok"},
        }
        for response in (alive, ready):
            assert "Set-Cookie" not in response.headers
            assert response.headers["Cache-Control"] == "no-store"
    assert [client.post(API, json=BODY).status_code for _ in range(3)] == [200, 200, 429]


def test_readyz_names_a_model_not_loaded(make_app, web_home):
    settings = load_settings(
        {"MOVIEREC_HOME": str(web_home), "MOVIEREC_DATASET": "ml-latest-small"}
    )
    app = make_app(RECOMMENDERS=Recommenders(settings))  # nothing loaded yet
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not ready" and body["checks"]["model"] == "not loaded"
    assert body["reasons"] == ["model 'svd' is not loaded yet"]


@pytest.mark.parametrize("damage", ["behind", "unknown revision", "tables dropped"])
def test_readyz_says_what_is_wrong_with_the_database(ready_app, damage):
    store = ready_app.extensions["movierec"].store
    with store.engine.begin() as conn:
        if damage == "behind":  # as a database made before migrations
            conn.execute(text("drop table alembic_version"))
        elif damage == "unknown revision":
            conn.execute(text("update alembic_version set version_num = 'f00dcafe'"))
        else:
            for table in ("ratings", "hidden_movies", "import_reports"):
                conn.execute(text(f"drop table {table}"))
    response = ready_app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"] == "ok" and body["checks"]["model"] == "ok"
    (reason,) = body["reasons"]
    expected = {
        "behind": "made before migrations",
        "unknown revision": "f00dcafe, which this code does not know",
        "tables dropped": "lost tables (ratings, hidden_movies, import_reports)",
    }[damage]
    assert expected in reason
    assert ("movierec db upgrade" in reason) == (damage != "unknown revision")
    assert "sqlite" not in reason and "/tmp" not in reason  # no URL or path


def test_readyz_says_the_database_is_unavailable(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'gone' / 'web.db'}")
    services = app.extensions["movierec"]
    services.recommender()
    services.store.engine.dispose()  # no pooled connection to the old file is left
    shutil.rmtree(tmp_path / "gone")
    (tmp_path / "gone").write_text("a file where the database's folder was")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unavailable"


def metric_samples(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_are_404_unless_a_token_is_set(ready_app):
    client = ready_app.test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_metrics_need_the_token_and_count_by_route_template(make_app, monkeypatch):
    monkeypatch.setenv("MOVIEREC_METRICS_TOKEN", TOKEN)
    app = make_app(RATE_LIMIT="3/minute", WTF_CSRF_ENABLED=False)
    app.extensions["movierec"].recommender()
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith(
            "Bearer"
        )
        assert TOKEN not in refused.get_data(as_text=True)

    before = metric_samples(client)
    movie_route = (("method", "GET"), ("route", "/movies/<movie_id>"), ("status", "200"))
    counted = ("movierec_requests_total", movie_route)
    for movie in (1, 2, 318):
        assert client.get(f"/movies/{movie}").status_code == 200
    assert client.get("/no/such/page/123").status_code == 404
    assert [client.post(API, json=BODY).status_code for _ in range(4)] == [200, 200, 200, 429]
    after = metric_samples(client)

    assert after[counted] - before.get(counted, 0) == 3  # one series for every movie id
    assert not any("/movies/1" in str(labels) for _, labels in after)
    unmatched = (
        "movierec_requests_total",
        (("method", "GET"), ("route", "<unmatched>"), ("status", "404")),
    )
    assert after[unmatched] - before.get(unmatched, 0) == 1
    seconds = (
        "movierec_request_seconds_count",
        (("method", "GET"), ("route", "/movies/<movie_id>")),
    )
    assert after[seconds] - before.get(seconds, 0) == 3
    recommend = ("movierec_recommend_seconds_count", (("model", "svd"),))
    assert after[recommend] - before.get(recommend, 0) == 3
    limited = ("movierec_rate_limited_total", ())
    assert after[limited] - before.get(limited, 0) == 1
    infos = [labels for name, labels in after if name == "movierec_model_info"]
    assert any(("model", "svd") in labels and ("dataset", "ml-latest-small") in labels
               for labels in infos)  # fmt: skip


def test_every_request_has_an_id_and_one_access_log_line(ready_app, caplog):
    client = ready_app.test_client()
    with caplog.at_level(logging.INFO, logger="movierec.access"):
        kept = client.get("/healthz", headers={"X-Request-Id": "edge-7f3a.42:1"})
        made = client.get("/movies/1", headers={"X-Request-Id": 'bad id"; x=\x7f'})
        long = client.get("/healthz", headers={"X-Request-Id": "a" * 129})
        missing = client.get("/no/such/page?q=secret")
    assert kept.headers["X-Request-Id"] == "edge-7f3a.42:1"
    for response in (made, long, missing):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])
    assert len({r.headers["X-Request-Id"] for r in (kept, made, long, missing)}) == 4
    lines = [r for r in caplog.records if r.name == "movierec.access"]
    assert len(lines) == 4
    first = lines[0].getMessage()
    assert first.startswith('127.0.0.1 "GET /healthz" 200 ') and "id=edge-7f3a.42:1" in first
    assert "route=/movies/<movie_id>" in lines[1].getMessage()
    assert "secret" not in lines[3].getMessage()  # the query string is not logged
    assert lines[3].status == 404 and lines[3].route == "<unmatched>"


def test_access_log_can_be_turned_off(make_app, monkeypatch, caplog):
    monkeypatch.setenv("MOVIEREC_ACCESS_LOG", "0")
    client = make_app().test_client()
    with caplog.at_level(logging.INFO, logger="movierec.access"):
        assert client.get("/healthz").status_code == 200
    assert not [r for r in caplog.records if r.name == "movierec.access"]


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("movierec").level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("movierec").setLevel(saved[2])


def test_json_logs_are_one_object_a_line_with_the_request_id(ready_app, restore_logging):
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    client = ready_app.test_client()
    response = client.get("/movies/1", headers={"X-Request-Id": "req-1"})
    logging.getLogger("movierec.test").warning("outside a request")
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [e for e in entries if e["logger"] == "movierec.access"]
    assert len(access) == 1 and response.headers["X-Request-Id"] == "req-1"
    assert access[0]["request_id"] == "req-1" and access[0]["status"] == 200
    assert access[0]["route"] == "/movies/<movie_id>" and access[0]["level"] == "INFO"
    assert entries[-1]["message"] == "outside a request" and entries[-1]["request_id"] == "-"


def test_text_logs_carry_the_request_id(ready_app, restore_logging):
    stream = io.StringIO()
    logs.configure("text", stream=stream)
    ready_app.test_client().get("/healthz", headers={"X-Request-Id": "req-2"})
    (line,) = stream.getvalue().splitlines()
    assert ' INFO movierec.access [req-2]: 127.0.0.1 "GET /healthz" 200' in line


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MOVIEREC_LOG_FORMAT": "xml"}, "MOVIEREC_LOG_FORMAT"),
        ({"MOVIEREC_METRICS_TOKEN": "short"}, "MOVIEREC_METRICS_TOKEN"),
        ({"MOVIEREC_ACCESS_LOG": "maybe"}, "MOVIEREC_ACCESS_LOG"),
    ],
)
def test_bad_operating_settings_are_one_line_errors(env, named):
    with pytest.raises(InvalidInput) as caught:
        load_settings(env)
    assert named in str(caught.value) and "\n" not in str(caught.value)
    if "MOVIEREC_METRICS_TOKEN" in env:
        assert "short" not in str(caught.value)  # a secret is not echoed


@pytest.mark.slow  # a real `movierec serve` with two workers: ~10-20 s
def test_serve_sums_every_workers_metrics_and_logs_json(web_home, tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "MOVIEREC_HOME": str(web_home),
        "MOVIEREC_DATASET": "ml-latest-small",
        "MOVIEREC_MODEL": "svd",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "SECRET_KEY": "serve-metrics-test-secret-0123456789",
        "MOVIEREC_METRICS_TOKEN": TOKEN,
        "MOVIEREC_LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    stderr = (tmp_path / "serve.err").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "movierec.cli", "serve", "--no-train", "--workers", "2",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=stderr, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def get(path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
        request = urllib.request.Request(base + path, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if get("/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "serve.err").read_text()[-2000:]
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.2)
        for i in range(40):  # a new connection each: both workers answer some
            status, _, headers = get("/movies/1", **{"X-Request-Id": f"probe-{i}"})
            assert status == 200 and headers["X-Request-Id"] == f"probe-{i}"
        series = 'movierec_requests_total{method="GET",route="/movies/<movie_id>",status="200"}'
        for _ in range(6):  # whichever worker answers the scrape, the sum of both
            text = get("/metrics", Authorization=f"Bearer {TOKEN}")[1]
            assert f"{series} 40.0" in text
        writers = {p.name.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
        workers = writers - {f"{server.pid}.db"}  # the supervisor's own file aside
        assert len(workers) == 2, writers  # two worker processes counted requests
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        stderr.close()
    entries = [
        json.loads(line)
        for line in (tmp_path / "serve.err").read_text().splitlines()
        if line.startswith("{")
    ]
    access = [e for e in entries if e["logger"] == "movierec.access"]
    probes = [e for e in access if e["request_id"].startswith("probe-")]
    assert len(probes) == 40 and {e["status"] for e in probes} == {200}
    assert all(e["route"] == "/movies/<movie_id>" for e in probes)
