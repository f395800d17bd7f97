"""Rate limiting (Flask-Limiter): 429 with Retry-After per client address, on the memory and
the Redis backend; a Redis outage still serves requests."""

from __future__ import annotations

import logging
import os
import uuid

import pytest

API = "/api/v1/recommendations"
BODY = {"ratings": {"356": 4.5, "318": 5}, "n": 3}
LIMIT = 5
REDIS_URL = "redis://127.0.0.1:6379/0"
CLOSED_PORT_URL = "redis://127.0.0.1:9/0"  # discard port: nothing listens on loopback


def limited_app(make_app, **config):
    return make_app(RATE_LIMIT=f"{LIMIT}/minute", WTF_CSRF_ENABLED=False, **config)


def api_call(client, addr: str = "127.0.0.1", **headers):
    return client.post(API, json=BODY, environ_base={"REMOTE_ADDR": addr}, headers=headers)


def assert_json_429(response) -> None:
    assert response.status_code == 429
    assert response.mimetype == "application/json"
    payload = response.get_json()
    assert set(payload) == {"error", "field"} and "too many requests" in payload["error"]
    assert 0 < int(response.headers["Retry-After"]) <= 60


def exhaust_api(client, addr: str = "127.0.0.1") -> None:
    for _ in range(LIMIT):
        assert api_call(client, addr).status_code == 200


@pytest.fixture
def redis_prefix():
    """A key prefix unique to this test on the real Redis server; its keys deleted after."""
    redis = pytest.importorskip("redis")
    server = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        server.ping()
    except redis.RedisError as exc:
        reason = f"Redis at {REDIS_URL} is not answering: {exc}"
        if os.environ.get("MOVIEREC_REQUIRE_REDIS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    prefix = f"movierec-test-{uuid.uuid4().hex}"
    yield server, prefix
    for key in server.scan_iter(match=f"*{prefix}*"):
        server.delete(key)
    server.close()


def test_the_sixth_api_call_is_a_json_429(make_app):
    client = limited_app(make_app).test_client()
    exhaust_api(client)
    assert_json_429(api_call(client))
    assert_json_429(client.get("/api/v1/onboarding"))  # one budget for all of /api/v1


def test_the_sixth_form_post_is_a_429_page(make_app):
    client = limited_app(make_app).test_client()
    for _ in range(LIMIT):
        assert client.post("/recommendations", data={"rating-356": "4"}).status_code == 303
    response = client.post("/recommendations", data={"rating-356": "4"})
    assert response.status_code == 429 and response.mimetype == "text/html"
    assert "Too many requests" in response.get_data(as_text=True)
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_the_picks_page_shares_the_budget_since_it_ranks(make_app):
    """The form POST redirects to GET /recommendations, where the ranking happens: both
    draw on one budget, so reloading the picks page cannot dodge the limit."""
    client = limited_app(make_app).test_client()
    assert client.post("/recommendations", data={"rating-356": "4"}).status_code == 303
    for _ in range(LIMIT - 1):
        assert client.get("/recommendations").status_code == 200
    response = client.get("/recommendations")
    assert response.status_code == 429 and response.mimetype == "text/html"
    assert_json_429(api_call(client))


def test_pages_other_than_the_form_post_are_not_limited(make_app):
    client = limited_app(make_app).test_client()
    exhaust_api(client)
    for _ in range(LIMIT + 2):
        assert client.get("/").status_code == 200


def test_addresses_are_counted_apart(make_app):
    client = limited_app(make_app).test_client()
    exhaust_api(client, "10.0.0.1")
    assert_json_429(api_call(client, "10.0.0.1"))
    assert api_call(client, "10.0.0.2").status_code == 200


def test_x_forwarded_for_is_not_trusted(make_app):
    client = limited_app(make_app).test_client()
    exhaust_api(client)
    assert_json_429(api_call(client, **{"X-Forwarded-For": "203.0.113.9"}))


def test_the_limit_comes_from_the_settings(make_app, monkeypatch):
    monkeypatch.setenv("MOVIEREC_RATE_LIMIT", "2/minute")
    client = make_app().test_client()
    assert [api_call(client).status_code for _ in range(3)] == [200, 200, 429]


def test_the_default_limit_is_generous_for_a_person(make_app):
    client = make_app().test_client()
    assert all(api_call(client).status_code == 200 for _ in range(30))


def test_limiting_can_be_switched_off(make_app):
    client = make_app(RATE_LIMIT="1/minute", RATELIMIT_ENABLED=False).test_client()
    assert all(api_call(client).status_code == 200 for _ in range(5))


def test_a_bad_limit_setting_is_refused(make_app, monkeypatch):
    from movierec.errors import InvalidInput

    monkeypatch.setenv("MOVIEREC_RATE_LIMIT", "lots")
    with pytest.raises(InvalidInput, match="MOVIEREC_RATE_LIMIT"):
        make_app()


def test_redis_backend_counts_in_redis(make_app, redis_prefix):
    server, prefix = redis_prefix
    client = limited_app(
        make_app, RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix
    ).test_client()
    exhaust_api(client)
    assert_json_429(api_call(client))
    assert api_call(client, "10.0.0.3").status_code == 200
    assert list(server.scan_iter(match=f"*{prefix}*"))  # the counts live in Redis


def test_redis_counts_are_shared_between_app_processes(make_app, redis_prefix):
    """Two apps (as two server processes would) on one Redis share each address's budget."""
    _server, prefix = redis_prefix
    config = {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix}
    first = limited_app(make_app, **config).test_client()
    second = limited_app(make_app, **config).test_client()
    for client in (first, second, first, second, first):
        assert api_call(client).status_code == 200
    assert_json_429(api_call(second))


def test_redis_url_setting_selects_redis(make_app, redis_prefix, monkeypatch):
    server, prefix = redis_prefix
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    client = make_app(RATE_LIMIT="2/minute", RATELIMIT_KEY_PREFIX=prefix).test_client()
    assert [api_call(client).status_code for _ in range(3)] == [200, 200, 429]
    assert list(server.scan_iter(match=f"*{prefix}*"))


def test_redis_down_still_serves_and_logs_one_line(make_app, caplog):
    client = limited_app(make_app, RATELIMIT_STORAGE_URI=CLOSED_PORT_URL).test_client()
    with caplog.at_level(logging.WARNING):
        statuses = [api_call(client).status_code for _ in range(LIMIT)]
        form = client.post("/recommendations", data={"rating-356": "4"})
    assert statuses == [200] * LIMIT
    assert form.status_code == 429  # meanwhile counted in memory, with the same budget
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_memory_counters_start_no_thread_per_request_and_expire(monkeypatch) -> None:
    """The per-process memory storage sweeps inline: no Timer thread per hit, and
    counters past their window are dropped by the next sweep."""
    import threading

    from movierec.web import limits as limits_module

    storage = limits_module.SweptMemoryStorage("movierec-memory://")
    started: list[object] = []
    real_timer = threading.Timer

    def counting_timer(*args, **kwargs):  # type: ignore[no-untyped-def]
        started.append(args)
        return real_timer(*args, **kwargs)

    monkeypatch.setattr(threading, "Timer", counting_timer)
    for i in range(200):
        storage.incr(f"client-{i % 7}", expiry=60)
    assert started == []
    assert storage.get("client-0") == 29
    storage.incr("short-lived", expiry=0.01)
    import time

    time.sleep(0.05)
    monkeypatch.setattr(limits_module, "SWEEP_INTERVAL", 0.0)
    storage._next_sweep = 0.0
    storage.incr("client-1", expiry=60)
    assert "short-lived" not in storage.storage
    assert storage.get("client-1") == 30


def test_retry_after_only_where_it_means_wait(make_app):
    """Flask-Limiter puts Retry-After on every response of a limited route; only a 429
    keeps it (issue 19: 200s and 303s carried one)."""
    client = limited_app(make_app).test_client()
    ok = api_call(client)
    assert ok.status_code == 200 and "Retry-After" not in ok.headers
    assert "X-RateLimit-Remaining" in ok.headers  # the limiter's own headers stay
    posted = client.post("/recommendations", data={"rating-356": "4"})
    assert posted.status_code == 303 and "Retry-After" not in posted.headers


def test_a_database_outage_asks_for_5_seconds_under_the_limiter(make_app, tmp_path):
    """The outage 503 says Retry-After: 5, not the rate-limit window's reset."""
    app = limited_app(make_app)
    client = app.test_client()
    assert api_call(client).status_code == 200
    app.extensions["movierec"].store.engine.dispose()
    (tmp_path / "web.db").unlink()
    (tmp_path / "web.db").mkdir()  # the SQLite file is now a folder: every query fails
    response = client.post("/recommendations", data={"rating-356": "4"})
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    assert response.headers["Retry-After"] == "5"
