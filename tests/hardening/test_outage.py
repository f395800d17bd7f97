"""Database outages are answered (503 + Retry-After), logged once, and recovered from
without a restart; a database that cannot be used at start is one clear line
(issue 7, "Outages answered, not crashed")."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from movierec.errors import StoreError
from movierec.store import Store, repo
from movierec.store import db as store_db

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LIKES = {356: 4.5, 318: 5.0, 296: 4.0, 593: 4.0, 2571: 5.0, 260: 3.5}
#: the form without its CSRF token (tested elsewhere) and without rate limits
PLAIN = {"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False}


def form(stars: dict[int, float]) -> dict[str, str]:
    return {f"rating-{m}": str(s) for m, s in stars.items()}


def admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at 127.0.0.1:5432: {exc}")


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A database of this test's own: ``movierec_outage_<random>``, dropped afterwards."""
    name = f"movierec_outage_{uuid.uuid4().hex[:10]}"
    with admin() as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield name
    finally:
        with admin() as conn:
            conn.execute(f'alter database "{name}" allow_connections true')
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                (name,),
            )
            conn.execute(f'drop database "{name}"')


def stop(name: str) -> None:
    """Take the database down: no new connections, every open one killed."""
    with admin() as conn:
        conn.execute(f'alter database "{name}" allow_connections false')
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,)
        )


def start(name: str) -> None:
    with admin() as conn:
        conn.execute(f'alter database "{name}" allow_connections true')


def assert_unavailable(response, json: bool) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    assert response.headers["Retry-After"] == "5"
    text = response.get_data(as_text=True)
    if json:
        assert response.get_json()["error"].startswith("The service is briefly unavailable")
    else:
        assert response.mimetype == "text/html" and "briefly unavailable" in text
    for internal in ("postgres", "psycopg", "sqlalchemy", "Traceback", "/tmp", "5432"):
        assert internal not in text


@pytest.mark.postgres
def test_postgres_outage_answers_503_then_recovers_without_restart(make_app, pg_database, caplog):
    url = f"postgresql://postgres:secret-pw@127.0.0.1:5432/{pg_database}"
    app = make_app(DATABASE_URL=url, **PLAIN)
    client = app.test_client()
    assert client.post("/recommendations", data=form(LIKES)).status_code == 303  # PRG

    # connections killed under the pool: the next request reconnects (pre-ping)
    with admin() as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
            (pg_database,),
        )
    assert client.get("/").status_code == 200
    assert client.post("/recommendations", data=form({1: 3.0})).status_code == 303

    caplog.clear()
    with caplog.at_level(logging.INFO):
        stop(pg_database)
        for _ in range(5):
            assert_unavailable(client.get("/"), json=False)  # reads the visitor's stars
            assert_unavailable(client.post("/recommendations", data=form({2: 4.0})), json=False)
            assert_unavailable(client.get("/recommendations"), json=False)
        start(pg_database)
        response = client.post("/recommendations", data=form({2: 4.0}))
        assert response.status_code == 303
        assert client.get("/").status_code == 200
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2, [r.getMessage() for r in lines]
    down, back = (r.getMessage() for r in lines)
    assert "database unavailable" in down and pg_database in down
    assert "secret-pw" not in down and "***" in down
    assert back == "database back after 15 failed requests"
    assert not any(r.exc_info for r in caplog.records)  # no tracebacks

    with client.session_transaction() as session:
        visitor = session["visitor"]
    with app.extensions["movierec"].store.session() as db:
        assert repo.visitor_ratings(db, visitor) == {**LIKES, 1: 3.0, 2: 4.0}


def test_sqlite_database_is_locked_answers_503(make_app, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "locked.db"
    app = make_app(DATABASE_URL=f"sqlite:///{path}", **PLAIN)
    client = app.test_client()
    assert client.post("/recommendations", data=form(LIKES)).status_code == 303  # PRG
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("begin exclusive")  # another process writing for a long time
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                assert_unavailable(client.post("/recommendations", data=form({1: 3.0})), False)
    finally:
        holder.execute("rollback")
        holder.close()
    assert client.post("/recommendations", data=form({1: 3.0})).status_code == 303
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 2 and "database is locked" in messages[0]
    assert messages[1] == "database back after 3 failed requests"
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.postgres
def test_api_answers_503_json_when_its_database_use_fails(make_app, pg_database):
    url = f"postgresql://postgres@127.0.0.1:5432/{pg_database}"
    app = make_app(DATABASE_URL=url, **PLAIN)

    @app.get("/api/v1/_probe")  # an API path that reads the store
    def probe():
        from sqlalchemy import text

        app.extensions["movierec"].store.scoped.execute(text("select 1"))
        return {"ok": True}

    client = app.test_client()
    assert client.get("/api/v1/_probe").status_code == 200
    stop(pg_database)
    assert_unavailable(client.get("/api/v1/_probe"), json=True)
    start(pg_database)
    assert client.get("/api/v1/_probe").status_code == 200


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again on leaving the block


@pytest.mark.parametrize("case", ["closed port", "not a database", "not a folder"])
def test_unusable_database_at_start_is_one_line_naming_the_url(tmp_path, case):
    if case == "closed port":
        url = f"postgresql://postgres:secret-pw@127.0.0.1:{closed_port()}/movierec"
        expected = "127.0.0.1"
    elif case == "not a database":
        path = tmp_path / "movierec.db"
        path.write_bytes(b"this is not an SQLite file " * 100)
        url, expected = f"sqlite:///{path}", "file is not a database"
    else:
        (tmp_path / "a-file").write_text("x")
        url, expected = f"sqlite:///{tmp_path / 'a-file' / 'movierec.db'}", "a-file"
    with pytest.raises(StoreError) as caught:
        Store(url).create_schema()
    message = str(caught.value)
    assert "\n" not in message and expected in message
    assert message.startswith(f"cannot use the database at {make_url(url).drivername}")
    assert "secret-pw" not in message


#: a deferred trigger that fails every COMMIT writing a rating as a full disk does
#: (SQLSTATE 53100, psycopg's DiskFull, an OperationalError): the INSERT works, the
#: COMMIT fails
DISK_FULL_AT_COMMIT = """
create function movierec_disk_full() returns trigger language plpgsql as $$
begin
    raise exception 'could not extend file: No space left on device' using errcode = '53100';
end $$;
create constraint trigger movierec_disk_full after insert or update on ratings
    deferrable initially deferred for each row execute function movierec_disk_full();
"""


@pytest.mark.postgres
def test_failing_commits_log_one_line_per_outage_start_and_end(make_app, pg_database, caplog):
    """Issue 19, "Log flood": 14 s of writes on a full disk logged 1,900 "unavailable"
    and 1,900 "back" lines, as SQLAlchemy's engine ``commit`` event fires before COMMIT
    runs. Now only a COMMIT that returned ends an outage, and reads that work meanwhile
    do not."""
    url = f"postgresql://postgres@127.0.0.1:5432/{pg_database}"
    app = make_app(DATABASE_URL=url, **PLAIN)
    client = app.test_client()
    assert client.post("/recommendations", data=form(LIKES)).status_code == 303
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{pg_database}") as conn:
        conn.execute(DISK_FULL_AT_COMMIT)

    caplog.clear()
    with caplog.at_level(logging.INFO):
        for _ in range(40):
            assert_unavailable(client.post("/recommendations", data=form({1: 3.0})), False)
            assert client.get("/").status_code == 200  # a read commits, and works
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{pg_database}") as conn:
            conn.execute("drop trigger movierec_disk_full on ratings")
        for _ in range(3):
            assert client.post("/recommendations", data=form({7: 4.0})).status_code == 303
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 2, messages[:6]
    assert messages[0].startswith("database unavailable (DiskFull)")
    assert messages[1] == "database back after 40 failed requests"


@pytest.mark.postgres
def test_a_database_recreated_empty_while_serving_is_named_in_one_line_and_a_503(
    make_app, pg_database, caplog, monkeypatch
):
    """Issue 19: after the database was dropped and made again empty, visitors got
    "briefly unavailable" until a restart and the log never said the tables were gone."""
    from movierec.cli import main
    from movierec.web.errors import TABLES_MISSING

    url = f"postgresql://postgres:secret-pw@127.0.0.1:5432/{pg_database}"
    app = make_app(DATABASE_URL=url, **PLAIN)
    app.extensions["movierec"].recommender()
    client = app.test_client()
    assert client.post("/recommendations", data=form(LIKES)).status_code == 303
    stop(pg_database)  # drop it and make it again, empty
    with admin() as conn:
        conn.execute(f'drop database "{pg_database}"')
        conn.execute(f'create database "{pg_database}"')

    caplog.clear()
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            page = client.get("/recommendations")
            assert page.status_code == 503 and "Retry-After" not in page.headers
            assert "lost its tables" in page.get_data(as_text=True)
            api = client.post("/api/v1/recommendations", json={"ratings": {"1": 4}})
            assert api.status_code == 200  # the anonymous API needs no table: it works
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "the database has no tables" in ready.get_json()["reasons"][0]

        monkeypatch.setenv("DATABASE_URL", url)
        assert main(["db", "upgrade"]) == 0  # what the log line says to run
        assert client.post("/recommendations", data=form(LIKES)).status_code == 303
        assert client.get("/readyz").status_code == 200
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    messages = [r.getMessage() for r in lines]
    assert len(messages) == 2, messages
    assert messages[0].startswith("database at postgresql+psycopg://postgres:***@127.0.0.1")
    assert "has lost its tables" in messages[0] and "movierec db upgrade" in messages[0]
    assert "secret-pw" not in messages[0]
    assert messages[1].startswith("database back after ")
    assert not any(r.exc_info for r in caplog.records)
    assert TABLES_MISSING.startswith("The service is unavailable")


FULL_DISK_SERVER = """
import sys
import waitress
from movierec import logs
from movierec.web import create_app

home, folder, port = sys.argv[1:4]
logs.configure("text")
app = create_app({
    "TESTING": True,
    "WTF_CSRF_ENABLED": False,
    "RATELIMIT_ENABLED": False,
    "MOVIEREC_ACCESS_LOG": False,
    "SECRET_KEY": "full-disk-test-secret-key-0123456789",
    "MOVIEREC_HOME": home,
    "DATASET": "ml-latest-small",
    "MOVIEREC_MODEL": "popular",
    "DATABASE_URL": f"sqlite:///{folder}/full.db",
})
app.extensions["movierec"].recommender()
print("ready", flush=True)
waitress.serve(app, host="127.0.0.1", port=int(port), threads=4, _quiet=True)
"""


@pytest.mark.slow  # a server process on a 4 MB tmpfs of its own: ~10 s
def test_a_full_disk_logs_one_line_when_writes_start_failing_and_one_when_they_work(
    web_home, tmp_path
):
    """Issue 19, "Log flood", as reported: SQLite on a full disk, where every write fails
    at COMMIT. The server runs in a mount namespace of its own (``unshare``, root only)
    with its database on a 4 MB tmpfs; the test fills that disk through
    ``/proc/<pid>/root`` and empties it again."""
    import os
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.parse
    import urllib.request

    disk = tmp_path / "disk"
    disk.mkdir()
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "-o",
         "size=4M", "tmpfs", str(disk)],
        capture_output=True, text=True,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a mount namespace: {probe.stderr.strip()}")
    port = closed_port()
    script = tmp_path / "server.py"
    script.write_text(FULL_DISK_SERVER)
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs -o size=4M tmpfs "$1" && exec "$2" "$3" "$4" "$1" "$5"', "sh",
         str(disk), sys.executable, str(script), str(web_home), str(port)],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)

    def submit() -> int:
        data = urllib.parse.urlencode(form(LIKES)).encode()
        try:
            with opener.open(base + "/recommendations", data=data, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        assert server.stdout.readline().strip() == "ready", log_path.read_text()[-2000:]
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        assert submit() == 303
        filler = Path(f"/proc/{server.pid}/root{disk}/filler")
        with filler.open("wb") as out:  # fill the server's disk to the last block
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass
        statuses = [submit() for _ in range(60)]
        assert statuses == [503] * 60
        os.unlink(filler)
        assert submit() == 303
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    text = log_path.read_text()
    down = [line for line in text.splitlines() if "database unavailable" in line]
    back = [line for line in text.splitlines() if "database back" in line]
    assert len(down) == 1 and "full" in down[0], text[-2000:]
    assert len(back) == 1 and back[0].endswith("database back after 60 failed requests")
    assert "Traceback" not in text
