"""The app factory, shared services and small helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from movierec.config import load_settings
from movierec.data.catalog import display_title
from movierec.errors import InvalidInput
from movierec.web import create_app
from movierec.web.cards import star_label
from movierec.web.services import Recommenders


def test_importing_the_package_does_no_work(tmp_path):
    """Importing the web package reads no data, loads no model and compiles no kernel
    (web/services.py imports training.py for file paths and checks, which is cheap)."""
    code = (
        "import sys, movierec.web, movierec.web.pages, movierec.web.api;"
        "loaded = [m for m in sys.modules if m.startswith('movierec.models.')];"
        "assert 'movierec.models._kernels' not in sys.modules, loaded;"
        "assert not {'movierec.models.ease', 'movierec.models.svd'} & set(loaded), loaded;"
        "print('ok')"
    )
    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MOVIEREC_HOME": str(home)},
    )
    assert out.stdout.strip() == "ok"
    assert list(home.iterdir()) == []  # nothing fetched, trained or created


def test_create_app_loads_nothing_until_asked(web_home, tmp_path):
    settings = load_settings({"MOVIEREC_HOME": str(web_home)})
    app = create_app(
        {
            "TESTING": True,
            "MOVIEREC_HOME": str(web_home),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "RECOMMENDERS": Recommenders(settings),
        }
    )
    assert app.extensions["movierec"].recommenders.loaded == []
    assert (tmp_path / "x.db").exists()  # schema created on start


def test_secret_key_is_made_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("MOVIEREC_SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    home = tmp_path / "home"
    config = {"TESTING": True, "MOVIEREC_HOME": str(home)}
    first = create_app(config).config["SECRET_KEY"]
    second = create_app(config).config["SECRET_KEY"]
    assert first == second and len(first) == 64
    assert (home / "secret_key").stat().st_mode & 0o077 == 0
    assert (home / "movierec.db").exists()  # default database under MOVIEREC_HOME


def test_unknown_default_model_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="MOVIEREC_MODEL"):
        create_app({"TESTING": True, "MOVIEREC_HOME": str(tmp_path), "MOVIEREC_MODEL": "knn"})


def test_models_load_once_under_concurrent_first_requests(recommenders):
    calls = []
    real = recommenders.get("popular")

    def slow_loader(dataset, name, settings):
        calls.append(name)
        time.sleep(0.2)
        return real.model, type("D", (), {"catalog": real.catalog})()

    lazy = Recommenders(recommenders.settings, loader=slow_loader)
    got = []
    threads = [threading.Thread(target=lambda: got.append(lazy.get("popular"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["popular"] and len({id(s) for s in got}) == 1


def test_security_headers(client):
    response = client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_session_cookie_is_signed_and_long_lived(client):
    from webhelpers import submit

    submit(client, {356: 4.0})
    cookie = client.get_cookie("movierec")
    assert cookie is not None and cookie.http_only and cookie.expires is not None
    assert "." in cookie.value  # itsdangerous signature


def test_static_assets_are_served(client):
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/app.js").status_code == 200


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("Matrix, The (1999)", "The Matrix"),
        ("Toy Story (1995)", "Toy Story"),
        ("Shawshank Redemption, The (1994)", "The Shawshank Redemption"),
        ("Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "Amelie"),
        ("Misérables, Les (1995)", "Les Misérables"),
        ("Cosmos", "Cosmos"),
        ("Babylon 5 (1994-1998)", "Babylon 5"),
    ],
)  # fmt: skip
def test_display_title(title, shown):
    assert display_title(title) == shown


def test_star_label():
    assert [star_label(s) for s in (0.5, 1.0, 1.5, 5.0)] == [
        "½ star",
        "1 star",
        "1½ stars",
        "5 stars",
    ]
