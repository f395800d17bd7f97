"""Schema migrations (issue 19): the first revision is the schema as it was, a database
made by the code before migrations is upgraded with nothing lost, and ``serve`` refuses
a database behind the code in one line."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, func, select, text

from movierec.cli import main
from movierec.errors import StoreError
from movierec.store import Store, repo
from movierec.store import schema as current_schema
from movierec.store.migrate import ensure_current, head, status, upgrade

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@functools.cache
def old_schema():
    """``store/schema.py`` as of commit a5ddce9 (a verbatim copy beside this file)."""
    path = Path(__file__).with_name("schema_a5ddce9.py")
    spec = importlib.util.spec_from_file_location("movierec_schema_a5ddce9", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its annotations are resolved through it
    spec.loader.exec_module(module)
    return module


def make_old_database(url: str) -> None:
    """What a5ddce9's ``create_app`` made (``create_all``), with two visitors in it."""
    schema = old_schema()
    engine = create_engine(url)
    schema.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            schema.Visitor.__table__.insert(),
            [{"id": v, "created_at": T0, "last_seen": T0} for v in ("ann", "bob")],
        )
        conn.execute(
            schema.Rating.__table__.insert(),
            [
                {"visitor_id": "ann", "movie_id": 260, "stars": 4.5, "rated_at": T0},
                {"visitor_id": "ann", "movie_id": 1, "stars": 2.0, "rated_at": T0},
                {"visitor_id": "bob", "movie_id": 318, "stars": 5.0, "rated_at": T0},
            ],
        )
        conn.execute(
            schema.HiddenMovie.__table__.insert(),
            [{"visitor_id": "ann", "movie_id": 296, "hidden_at": T0}],
        )
        conn.execute(
            schema.ImportReport.__table__.insert(),
            [{"visitor_id": "bob", "payload": {"added": 1, "unmatched": []}, "created_at": T0}],
        )
        conn.execute(
            schema.ShownRecommendation.__table__.insert(),
            [
                {
                    "visitor_id": "ann",
                    "movie_id": 2571,
                    "rank": 1,
                    "predicted_stars": 4.25,
                    "model": "ease",
                    "year": "any",
                    "shown_at": T0,
                }
            ],
        )
        conn.execute(
            schema.TmdbCacheEntry.__table__.insert(),
            [{"tmdb_id": 11, "payload": {"poster": "/a.jpg"}, "fetched_at": T0, "expires_at": T0}],
        )
    engine.dispose()


def schema_differences(store: Store) -> list:
    """What Alembic's autogenerate finds between the database and ``schema.py``."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, current_schema.Base.metadata)


def test_an_empty_database_is_made_by_the_first_revision_exactly_as_schema_py(blank_url):
    store = Store(blank_url)
    try:
        assert status(store).state == "empty"
        found = ensure_current(store)  # what serve does with a brand-new database
        assert found.state == "current" and found.revision == head() and not found.missing
        assert schema_differences(store) == []
        with store.session() as db:  # and it works
            repo.upsert_ratings(db, "v", {1: 4.0})
        with store.session() as db:
            assert repo.visitor_ratings(db, "v") == {1: 4.0}
    finally:
        store.dispose()


def test_a_database_made_before_migrations_is_refused_then_upgraded_losing_nothing(
    blank_url, monkeypatch, capsys
):
    make_old_database(blank_url)
    store = Store(blank_url)
    try:
        found = status(store)
        assert found.state == "behind" and found.revision is None and not found.missing
        with pytest.raises(StoreError) as refused:  # serve's check
            ensure_current(store)
        message = str(refused.value)
        assert "\n" not in message and "made before migrations" in message
        assert "run `movierec db upgrade`" in message
        # nothing was created or changed by the refusal
        assert status(store) == found

        monkeypatch.setenv("DATABASE_URL", blank_url)
        capsys.readouterr()
        assert main(["db", "current"]) == 1  # a deploy script can check before serve
        assert "made before migrations" in capsys.readouterr().out
        assert main(["db", "upgrade"]) == 0
        out = capsys.readouterr().out
        assert "upgraded from made before migrations" in out
        assert f"now at revision {head()} (current)" in out
        assert schema_differences(store) == []
        assert ensure_current(store).state == "current"

        with store.session() as db:
            assert repo.visitor_ratings(db, "ann") == {260: 4.5, 1: 2.0}
            assert repo.visitor_ratings(db, "bob") == {318: 5.0}
            assert repo.hidden_movies(db, "ann") == {296}
            assert repo.import_report(db, "bob") == {"added": 1, "unmatched": []}
            assert [(s.movie_id, s.predicted_stars) for s in repo.shown_to(db, "ann")] == [
                (2571, 4.25)
            ]
            assert set(repo.cache_get_many(db, [11])) == {11}
            assert db.scalar(select(func.count()).select_from(current_schema.Visitor)) == 2
            visitor = db.get(current_schema.Visitor, "ann")
            assert visitor.created_at == T0 and visitor.last_seen == T0

        assert main(["db", "upgrade"]) == 0  # twice: nothing to do
        assert "already at revision" in capsys.readouterr().out
        assert main(["db", "current"]) == 0
        assert capsys.readouterr().out.strip().endswith(f"at revision {head()} (current)")
    finally:
        store.dispose()


def test_a_revision_this_code_does_not_know_is_refused_and_left_alone(blank_url):
    store = Store(blank_url)
    try:
        upgrade(store)
        with store.engine.begin() as conn:
            conn.execute(text("update alembic_version set version_num = 'f00dcafe'"))
        for action in (ensure_current, upgrade):
            with pytest.raises(StoreError) as refused:
                action(store)
            assert "f00dcafe, which this code does not know" in str(refused.value)
        assert status(store).revision == "f00dcafe"
    finally:
        store.dispose()


def test_db_commands_are_one_line_errors_on_an_unusable_database(home, monkeypatch, capsys):
    (home / "a-file").write_text("x")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{home / 'a-file' / 'movierec.db'}")
    for command in ("current", "upgrade"):
        assert main(["db", command]) == 2
        err = capsys.readouterr().err
        assert err.startswith("movierec: error: cannot use the database at sqlite:///")
        assert err.count("\n") == 1


def test_serve_refuses_a_database_behind_the_code_in_one_line_before_any_model_work(home):
    import socket

    make_old_database(f"sqlite:///{home / 'movierec.db'}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    result = subprocess.run(
        [sys.executable, "-m", "movierec.cli", "serve", "--no-train", "--port", port],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "made before migrations" in lines[0], result.stderr
    assert "run `movierec db upgrade`" in lines[0]
    assert "preparing" not in result.stdout  # refused before loading any model


def test_hosts_upgrading_one_new_postgres_database_at_once_all_succeed(blank_url):
    """Two app hosts starting at once on one new database: one migrates, the others
    wait for it (an advisory lock) and find it current."""
    if not blank_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: two hosts share a server, never a SQLite file")
    env = {**os.environ, "DATABASE_URL": blank_url}
    command = [sys.executable, "-m", "movierec.cli", "db", "upgrade"]
    hosts = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]  # fmt: skip
    results = [(host.wait(timeout=120), *host.communicate()) for host in hosts]
    assert [code for code, _, _ in results] == [0, 0, 0], results
    outs = sorted(out for _, out, _ in results)
    assert sum("upgraded from empty" in out for out in outs) == 1, outs
    assert sum("already at revision" in out for out in outs) == 2, outs
    store = Store(blank_url)
    try:
        assert status(store).state == "current" and schema_differences(store) == []
    finally:
        store.dispose()


def test_an_old_database_missing_a_table_gets_it_and_keeps_the_rest(blank_url):
    """Databases from before the import reports existed: the first revision adds only
    what is missing."""
    make_old_database(blank_url)
    store = Store(blank_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(text("drop table import_reports"))
        assert status(store).missing == ("import_reports",)
        before, after = upgrade(store)
        assert before.state == "behind" and after.state == "current" and not after.missing
        assert schema_differences(store) == []
        with store.session() as db:
            assert repo.visitor_ratings(db, "ann") == {260: 4.5, 1: 2.0}
            assert repo.import_report(db, "bob") is None
    finally:
        store.dispose()
