"""Secrets, cookies and headers (issue 7, "Secrets and cookies", "No Host header in URLs").

- the secret key: from ``SECRET_KEY``/``MOVIEREC_SECRET_KEY``, or made once atomically
  (4 processes racing get one non-empty key); short keys refused in one line;
- database files readable by their owner only;
- "start over" issues a new visitor id, and a replayed cookie cannot revive the old one;
- ``Secure`` cookies and HSTS with ``MOVIEREC_HTTPS=1``, Permissions-Policy always;
- the Host header never reaches a response; ``MOVIEREC_TRUSTED_HOSTS`` -> 400 for others.
"""

from __future__ import annotations

import multiprocessing
import re
import stat
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from movierec.errors import InvalidInput
from movierec.store import Rating, ShownRecommendation, Visitor, repo
from movierec.web import create_app

LIKES = {356: 4.5, 318: 5.0, 296: 4.0, 593: 4.0, 2571: 5.0, 260: 3.5}
PLAIN = {"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False}
RACERS, ROUNDS = 4, 50


def form(stars: dict[int, float]) -> dict[str, str]:
    return {f"rating-{m}": str(s) for m, s in stars.items()}


# -- the secret key ----------------------------------------------------------------------


def make_keys(homes: list[str], barrier, results) -> None:  # type: ignore[no-untyped-def]
    """One racing process: for each fresh home, wait for the others, then get the key."""
    from movierec.web import _secret_key

    keys = []
    for home in homes:
        barrier.wait()
        try:
            keys.append(_secret_key(Path(home)))
        except Exception as exc:  # reported to the test
            keys.append(f"error: {exc!r}")
    results.put(keys)


@pytest.mark.slow  # 4 spawned interpreters: ~10 s on 2 cores
def test_four_processes_creating_the_key_at_once_get_one_nonempty_key(tmp_path):
    homes = [str(tmp_path / f"home{i}") for i in range(ROUNDS)]
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(RACERS), ctx.Queue()
    racers = [ctx.Process(target=make_keys, args=(homes, barrier, results)) for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    got = [results.get(timeout=120) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
    for i, home in enumerate(homes):
        keys = {keys[i] for keys in got}
        on_disk = (Path(home) / "secret_key").read_text()
        assert keys == {on_disk}, f"round {i}: {keys} vs {on_disk!r}"
        assert len(on_disk) == 64
        assert stat.S_IMODE((Path(home) / "secret_key").stat().st_mode) == 0o600
        assert [p.name for p in Path(home).iterdir()] == ["secret_key"]  # no temp files left


@pytest.mark.parametrize("variable", ["SECRET_KEY", "MOVIEREC_SECRET_KEY"])
def test_secret_key_from_either_variable(tmp_path, monkeypatch, variable):
    for name in ("SECRET_KEY", "MOVIEREC_SECRET_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "k" * 40)
    app = create_app({"TESTING": True, "MOVIEREC_HOME": str(tmp_path)})
    assert app.config["SECRET_KEY"] == "k" * 40
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("variable", ["SECRET_KEY", "MOVIEREC_SECRET_KEY"])
def test_short_secret_key_variable_is_refused_in_one_line(tmp_path, monkeypatch, variable):
    for name in ("SECRET_KEY", "MOVIEREC_SECRET_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "short")
    with pytest.raises(InvalidInput) as caught:
        create_app({"TESTING": True, "MOVIEREC_HOME": str(tmp_path)})
    assert caught.value.field == variable and variable in str(caught.value)
    assert "\n" not in str(caught.value) and "short" not in str(caught.value)  # not echoed


@pytest.mark.parametrize("content", ["", "\n", "abc123"])
def test_empty_or_short_key_file_is_refused_in_one_line(tmp_path, monkeypatch, content):
    for name in ("SECRET_KEY", "MOVIEREC_SECRET_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "secret_key").write_text(content)
    with pytest.raises(InvalidInput) as caught:
        create_app({"TESTING": True, "MOVIEREC_HOME": str(tmp_path)})
    message = str(caught.value)
    assert str(tmp_path / "secret_key") in message and "\n" not in message
    assert (tmp_path / "secret_key").read_text() == content  # never overwritten


def test_database_files_are_readable_by_their_owner_only(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'private.db'}", **PLAIN)
    app.test_client().post("/recommendations", data=form(LIKES))  # writes: WAL and SHM
    files = sorted(tmp_path.glob("private.db*"))
    assert {f.name for f in files} >= {"private.db", "private.db-wal", "private.db-shm"}
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_an_existing_world_readable_database_is_tightened(make_app, tmp_path):
    path = tmp_path / "old.db"
    make_app(DATABASE_URL=f"sqlite:///{path}").extensions["movierec"].store.dispose()
    path.chmod(0o644)
    make_app(DATABASE_URL=f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- cookies -----------------------------------------------------------------------------


def visitor_of(client) -> str | None:  # type: ignore[no-untyped-def]
    with client.session_transaction() as session:
        return session.get("visitor")


def test_start_over_issues_a_new_visitor_and_a_replayed_cookie_revives_nothing(make_app):
    app = make_app(**PLAIN)
    store = app.extensions["movierec"].store
    client = app.test_client()
    assert client.post("/recommendations", data=form(LIKES)).status_code == 303  # PRG
    old_visitor = visitor_of(client)
    old_cookie = client.get_cookie("movierec").value

    assert client.post("/start-over").status_code == 303
    with store.session() as db:  # the visitor is gone with every row of theirs
        assert db.get(Visitor, old_visitor) is None
        assert db.query(Rating).filter_by(visitor_id=old_visitor).count() == 0
        assert db.query(ShownRecommendation).filter_by(visitor_id=old_visitor).count() == 0
    assert client.post("/recommendations", data=form({1: 3.0})).status_code == 303
    new_visitor = visitor_of(client)
    assert new_visitor and new_visitor != old_visitor

    thief = app.test_client()  # the copied cookie, replayed after start over
    thief.set_cookie("movierec", old_cookie)
    assert visitor_of(thief) == old_visitor
    page = thief.get("/").get_data(as_text=True)
    checked = re.findall(r'name="rating-\d+" id="r\d+-\d+" value="([\d.]+)" checked', page)
    assert len(checked) == 15 and {float(v) for v in checked} == {0.0}  # no stars shown
    nothing = thief.get("/recommendations")  # nothing rated: the friendly page, popular picks
    assert nothing.status_code == 200 and "Rate a movie or two first" in nothing.get_data(True)
    assert thief.post("/recommendations", data=form({2: 4.0})).status_code == 303
    assert visitor_of(thief) not in (old_visitor, new_visitor)  # a fresh id, not revived
    with store.session() as db:
        assert db.get(Visitor, old_visitor) is None
        assert repo.visitor_ratings(db, new_visitor) == {1: 3.0}


def test_cookie_lifetime_follows_retention_and_is_renewed(make_app):
    app = make_app(**PLAIN)
    days = app.config["SETTINGS"].retention_days
    assert app.config["PERMANENT_SESSION_LIFETIME"].days == days
    client = app.test_client()
    response = client.post("/recommendations", data=form(LIKES))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert abs(expires_in_days(cookie) - days) < 0.01
    again = client.get("/")  # each visit renews the expiry
    assert abs(expires_in_days(again.headers["Set-Cookie"]) - days) < 0.01


def expires_in_days(set_cookie: str) -> float:
    when = parsedate_to_datetime(re.search(r"Expires=([^;]+)", set_cookie).group(1))
    return (when - datetime.now(UTC)).total_seconds() / 86400


def test_https_turns_on_secure_cookies_and_hsts(make_app, monkeypatch):
    monkeypatch.setenv("MOVIEREC_HTTPS", "1")
    app = make_app(**PLAIN)
    client = app.test_client()
    response = client.post("/recommendations", data=form(LIKES), base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]
    sts = response.headers["Strict-Transport-Security"]
    assert sts == "max-age=31536000; includeSubDomains"


def test_every_response_has_the_security_headers(make_app):
    app = make_app(**PLAIN)
    client = app.test_client()
    for response in (
        client.get("/"),
        client.get("/poster/1.svg"),
        client.get("/api/v1/onboarding"),
        client.get("/nowhere"),
    ):
        policy = response.headers["Permissions-Policy"]
        assert "camera=()" in policy and "geolocation=()" in policy
        assert "interest-cohort=()" in policy
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP


# -- the Host header ---------------------------------------------------------------------


def every_kind_of_response(client, host: str):  # type: ignore[no-untyped-def]
    headers = {"Host": host}
    yield client.get("/", headers=headers)
    yield client.post("/recommendations", data=form(LIKES), headers=headers)
    yield client.get("/recommendations?year=old", headers=headers)
    yield client.post("/start-over", headers=headers)
    yield client.get("/poster/1.svg", headers=headers)
    yield client.get("/nowhere", headers=headers)
    yield client.get("/api/v1/onboarding", headers=headers)
    yield client.get("/api/v1/movies/1", headers=headers)
    yield client.get("/api/v1/nowhere", headers=headers)
    yield client.post(
        "/api/v1/recommendations", json={"ratings": {"356": 4.5}, "n": 5}, headers=headers
    )


def test_the_host_header_never_reaches_a_response(make_app):
    client = make_app(**PLAIN).test_client()
    responses = list(every_kind_of_response(client, "evil.example"))
    assert {r.status_code for r in responses} <= {200, 302, 303, 404}
    for response in responses:
        assert "evil.example" not in response.get_data(as_text=True)
        assert "evil.example" not in str(response.headers)
    api = client.post(
        "/api/v1/recommendations", json={"ratings": {"356": 4.5}}, headers={"Host": "evil.example"}
    ).get_json()
    assert all(r["poster_url"].startswith("/poster/") for r in api["recommendations"])
    assert client.post("/start-over", headers={"Host": "evil.example"}).location == "/"


def test_trusted_hosts_refuse_other_hosts_with_400(make_app, monkeypatch):
    monkeypatch.setenv("MOVIEREC_TRUSTED_HOSTS", "movies.example.org, localhost")
    client = make_app(**PLAIN).test_client()
    assert client.get("/", headers={"Host": "movies.example.org"}).status_code == 200
    for response in every_kind_of_response(client, "evil.example"):
        assert response.status_code == 400
        assert "evil.example" not in response.get_data(as_text=True)
        assert "evil.example" not in str(response.headers)
    api = client.get("/api/v1/onboarding", headers={"Host": "evil.example"})
    assert api.get_json()["field"] == "Host"


@pytest.mark.parametrize("host", ["a" * 64 + ".example", "x..y", "a" * 64])
def test_a_malformed_host_is_a_400_not_a_500(make_app, host):
    client = make_app(**PLAIN).test_client()
    for response in every_kind_of_response(client, host):
        assert response.status_code == 400, response.request.path
        assert host not in response.get_data(as_text=True)
    api = client.get("/api/v1/onboarding", headers={"Host": host})
    assert api.status_code == 400 and api.is_json


def test_a_full_disk_leaves_no_half_made_secret_key(tmp_path, monkeypatch):
    import errno
    import os

    from movierec.errors import MovierecError
    from movierec.web import _secret_key

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(MovierecError, match="No space left"):
        _secret_key(tmp_path)
    assert list(tmp_path.iterdir()) == []
