"""Fixtures for the web app: a MOVIEREC_HOME with quick models, apps on fresh databases.

A pytest plugin (registered by ``pytest_plugins`` in tests/conftest.py) so that tests/web,
tests/hardening and any other directory get ``web_home``, ``recommenders``, ``make_app``,
``app``, ``client``, ``fake_tmdb`` and ``tmdb_app`` without importing a conftest.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from movierec.config import load_settings
from movierec.web import create_app
from movierec.web.services import Recommenders
from movierec.web.testing import FakeTmdb, prepare_home

DATASET = "ml-latest-small"


@pytest.fixture(scope="session")
def web_home(session_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the session's data and quickly trained svd, nmf and popular models."""
    return prepare_home(tmp_path_factory.mktemp("web-home"), session_home, DATASET)


@pytest.fixture(scope="session")
def recommenders(web_home: Path) -> Recommenders:
    """Loaded models shared by every app of the session (loading is the slow part)."""
    settings = load_settings({"MOVIEREC_HOME": str(web_home), "MOVIEREC_DATASET": DATASET})
    return Recommenders(settings)


@pytest.fixture
def make_app(web_home: Path, recommenders: Recommenders, tmp_path: Path, monkeypatch):
    """``make_app(**config)``: an app on a fresh SQLite file in ``tmp_path``."""
    for name in ("TMDB_API_KEY", "TMDB_READ_TOKEN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)

    def make(**config: object) -> Flask:
        base: dict[str, object] = {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "MOVIEREC_HOME": str(web_home),
            "DATASET": DATASET,
            "MOVIEREC_MODEL": "svd",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
            "RECOMMENDERS": recommenders,
        }
        return create_app({**base, **config})

    return make


@pytest.fixture
def app(make_app) -> Flask:
    """The app without TMDB (placeholder posters)."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def fake_tmdb() -> FakeTmdb:
    return FakeTmdb()


@pytest.fixture
def tmdb_app(make_app, fake_tmdb: FakeTmdb) -> Flask:
    """The app with TMDB configured, answered by ``fake_tmdb``."""
    return make_app(TMDB_API_KEY="test-key", TMDB_TRANSPORT=fake_tmdb)
