"""A ``store`` fixture run twice: on a SQLite file and on a real PostgreSQL server.

PostgreSQL: ``DATABASE_URL_TEST`` or ``postgresql://postgres@127.0.0.1:5432/test``;
each test gets a schema of its own, dropped afterwards. Without a server the
PostgreSQL runs are skipped (failed when ``MOVIEREC_REQUIRE_POSTGRES=1``, as in CI).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from movierec.store import Store, normalise_url

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return normalise_url(os.environ.get("DATABASE_URL_TEST") or DEFAULT_PG_URL)


def _admin_engine():
    url = postgres_url()
    engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        engine.dispose()
        reason = f"no PostgreSQL server answers at {make_url(url).render_as_string()}: {exc}"
        if os.environ.get("MOVIEREC_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return engine


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_schema()
    yield store
    store.dispose()


@pytest.fixture
def postgres_store() -> Iterator[Store]:
    admin = _admin_engine()
    schema = f"movierec_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    url = make_url(postgres_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    store = Store(url.render_as_string(hide_password=False))
    try:
        store.create_schema()
        yield store
    finally:
        store.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Store:
    """The same tests against SQLite and PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database (no tables): a SQLite file, or a PostgreSQL schema
    of this test's own (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    admin = _admin_engine()
    schema = f"movierec_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    url = make_url(postgres_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()
