"""MOVIEREC_TRUSTED_PROXIES: behind n proxies the client is the n-th X-Forwarded-For
address from the right; with none, the header is ignored (anyone can send it)."""

from __future__ import annotations

import http.client

import pytest

from movierec.config import load_settings
from movierec.errors import InvalidInput
from movierec.web.testing import serve_env, serve_process

PROXY = "10.0.0.1"  # the TCP peer every request comes from here
BUDGET = 3  # requests per minute per client


def statuses(client, forwarded_for: list[str], proto: str = "http") -> list[int]:
    """The status of one limited API GET per ``X-Forwarded-For`` value, in order."""
    out = []
    for value in forwarded_for:
        response = client.get(
            "/api/v1/movies/1",
            headers={"X-Forwarded-For": value, "X-Forwarded-Proto": proto},
            environ_base={"REMOTE_ADDR": PROXY},
        )
        out.append(response.status_code)
    return out


def test_behind_one_proxy_each_client_has_its_own_budget(make_app, monkeypatch):
    monkeypatch.setenv("MOVIEREC_TRUSTED_PROXIES", "1")
    client = make_app(RATE_LIMIT=f"{BUDGET}/minute").test_client()
    # the proxy appends the address it saw; what the client wrote before it is not trusted
    spoofed = [f"203.0.113.{i}, 198.51.100.7" for i in range(BUDGET + 1)]
    assert statuses(client, spoofed) == [200] * BUDGET + [429]
    assert statuses(client, ["198.51.100.8"]) == [200]  # another visitor, another budget


def test_without_trusted_proxies_forwarded_for_is_ignored(make_app, monkeypatch):
    monkeypatch.delenv("MOVIEREC_TRUSTED_PROXIES", raising=False)
    client = make_app(RATE_LIMIT=f"{BUDGET}/minute").test_client()
    fresh = [f"198.51.100.{i}" for i in range(BUDGET + 1)]  # a new "client" each time
    assert statuses(client, fresh) == [200] * BUDGET + [429]  # all counted as the peer


def test_the_scheme_comes_from_the_proxy_only_when_trusted(make_app, monkeypatch):
    seen: list[str] = []
    for trusted in ("1", "0"):
        monkeypatch.setenv("MOVIEREC_TRUSTED_PROXIES", trusted)
        app = make_app(RATELIMIT_ENABLED=False)

        @app.route("/test/scheme")
        def scheme():  # type: ignore[no-untyped-def]
            from flask import request

            return request.scheme

        response = app.test_client().get(
            "/test/scheme",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1"},
        )
        seen.append(response.get_data(as_text=True))
    assert seen == ["https", "http"]


@pytest.mark.parametrize("raw", ["-1", "one", "1.5"])
def test_a_malformed_trusted_proxies_value_names_the_variable(raw: str):
    with pytest.raises(InvalidInput, match="MOVIEREC_TRUSTED_PROXIES"):
        load_settings({"MOVIEREC_TRUSTED_PROXIES": raw})


@pytest.mark.slow
def test_movierec_serve_passes_the_proxy_headers_on(web_home, tmp_path):
    """waitress drops X-Forwarded-* by default; with trusted proxies serve keeps them."""
    env = serve_env(
        MOVIEREC_HOME=str(web_home),
        MOVIEREC_MODEL="svd",
        MOVIEREC_WORKERS="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        MOVIEREC_SECRET_KEY="proxies-test-secret-key",
        MOVIEREC_RATE_LIMIT=f"{BUDGET}/minute",
        MOVIEREC_TRUSTED_PROXIES="1",
    )
    with serve_process(env, tmp_path / "serve.log") as server:

        def get(forwarded_for: str) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                conn.request("GET", "/api/v1/movies/1", headers={"X-Forwarded-For": forwarded_for})
                answer = conn.getresponse()
                answer.read()
                return answer.status
            finally:
                conn.close()

        first = [get(f"203.0.113.{i}, 198.51.100.7") for i in range(BUDGET + 1)]
        assert first == [200] * BUDGET + [429]
        assert get("198.51.100.8") == 200
