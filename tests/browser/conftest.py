"""The app served by waitress in a thread on a free port, and headless Chromium."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from movierec.web import create_app
from movierec.web.testing import prepare_home

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("MOVIEREC_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's), driven by Playwright."""
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which("chromium")):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def live_server(session_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the app under waitress (no TMDB: drawn posters, nothing external)."""
    from waitress.server import create_server

    home = prepare_home(tmp_path_factory.mktemp("browser-home"), session_home, params={
        "ease": {"seed": 1},
    })  # fmt: skip
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "browser-test",
            "MOVIEREC_HOME": str(home),
            "DATASET": "ml-latest-small",
            "MOVIEREC_MODEL": "ease",  # the app's default model
            "DATABASE_URL": f"sqlite:///{home / 'browser.db'}",
            "TMDB_API_KEY": "",
            "TMDB_READ_TOKEN": "",
        }
    )
    app.extensions["movierec"].recommender()  # warm, as serve() does
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: ``$MOVIEREC_SCREENSHOTS`` or the test's tmp_path."""
    folder = Path(os.environ.get("MOVIEREC_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
