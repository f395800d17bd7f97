"""Shared fixtures: real MovieLens data from ``$MOVIEREC_DATA_SOURCE``.

The source defaults to ``../shared/data`` beside the repository (what ``.ci/run`` sets).
Each test session fetches the data sets once into a temporary ``MOVIEREC_HOME``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The web fixtures (make_app, app, client, web_home, recommenders, ...) for every directory.
pytest_plugins = ["web_fixtures"]


def data_source() -> str:
    source = os.environ.get("MOVIEREC_DATA_SOURCE")
    if source:
        return source
    fallback = REPO.parent / "shared" / "data"
    if fallback.is_dir():
        return str(fallback)
    pytest.exit(
        "MOVIEREC_DATA_SOURCE is not set and ../shared/data does not exist; "
        "run `movierec data fetch ml-latest-small` or point MOVIEREC_DATA_SOURCE at a mirror",
        returncode=2,
    )


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MOVIEREC_HOME shared by the session, with both data sets fetched into it."""
    from movierec.data import fetch_dataset

    home = tmp_path_factory.mktemp("movierec-home")
    for name in ("ml-latest-small", "ml-100k"):
        fetch_dataset(name, source=data_source(), home=home, progress=False)
    return home


@pytest.fixture(scope="session")
def ml_small(session_home: Path):
    """ml-latest-small as a Dataset (ratings + catalog)."""
    from movierec.data import load_dataset

    return load_dataset("ml-latest-small", home=session_home)


@pytest.fixture(scope="session")
def ml_100k(session_home: Path):
    """ml-100k as a Dataset (ratings + catalog)."""
    from movierec.data import load_dataset

    return load_dataset("ml-100k", home=session_home)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty MOVIEREC_HOME for one test (environment set accordingly)."""
    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path))
    monkeypatch.setenv("MOVIEREC_DATA_SOURCE", data_source())
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("TMDB_READ_TOKEN", raising=False)
    return tmp_path
