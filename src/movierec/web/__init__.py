"""The web app: ``create_app(test_config=None)`` builds it (Flask application factory).

Nothing happens at import time. ``create_app`` reads the settings, opens the database
(creating the tables), and registers the blueprints: ``pages`` (the onboarding form and
results), ``api`` (JSON under ``/api/v1``), ``posters`` (drawn placeholder posters) and
``errors``. Data and models load on first use (``serve`` warms them first).

Configuration, lowest precedence first: the environment (:mod:`movierec.config`),
``instance/config.py`` (skipped when ``TESTING``), then ``test_config``. Keys read:
``MOVIEREC_HOME``, ``DATASET`` (or ``MOVIEREC_DATASET``), ``MOVIEREC_MODEL``,
``MOVIEREC_DATA_SOURCE``, ``DATABASE_URL``, ``TMDB_API_KEY``, ``TMDB_READ_TOKEN``,
``SETTINGS`` (a ready :class:`~movierec.config.Settings`), ``SECRET_KEY`` (else
``MOVIEREC_SECRET_KEY``, else one generated once and kept in ``<home>/secret_key``);
for tests also ``TMDB_TRANSPORT`` (a fake transport callable) and ``RECOMMENDERS``
(a :class:`~movierec.web.services.Recommenders` to share loaded models between apps).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from movierec.config import Settings, load_settings

csrf = CSRFProtect()

#: app.config keys that override the environment variable of the same meaning
CONFIG_TO_ENV = {
    "MOVIEREC_HOME": "MOVIEREC_HOME",
    "MOVIEREC_DATA_SOURCE": "MOVIEREC_DATA_SOURCE",
    "DATASET": "MOVIEREC_DATASET",
    "MOVIEREC_DATASET": "MOVIEREC_DATASET",
    "MOVIEREC_MODEL": "MOVIEREC_MODEL",
    "DATABASE_URL": "DATABASE_URL",
    "TMDB_API_KEY": "TMDB_API_KEY",
    "TMDB_READ_TOKEN": "TMDB_READ_TOKEN",
}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the movierec Flask app."""
    from movierec.web import api, errors, pages, posters
    from movierec.web.services import Services

    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SESSION_COOKIE_NAME="movierec",
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(days=365),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session cookie
        TMDB_DEADLINE=0.8,
        TMDB_TIMEOUT=2.0,
    )
    if not (test_config or {}).get("TESTING"):
        app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.from_mapping(test_config)

    settings = app.config.get("SETTINGS") or settings_from_config(app.config)
    app.config["SETTINGS"] = settings
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ.get("MOVIEREC_SECRET_KEY") or _secret_key(
            settings.home
        )

    services = Services.from_app_config(settings, app.config)
    services.store.create_schema()
    app.extensions["movierec"] = services

    csrf.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(posters.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(errors.bp)
    app.teardown_appcontext(_remove_session)
    app.after_request(_security_headers)
    return app


def settings_from_config(config: Mapping[str, Any]) -> Settings:
    """Settings from the environment, with any key set in ``config`` taking precedence."""
    env = dict(os.environ)
    for key, env_key in CONFIG_TO_ENV.items():
        value = config.get(key)
        if value is not None:
            env[env_key] = str(value)
    return load_settings(env)


def _secret_key(home: Path) -> str:
    """A random key kept in ``<home>/secret_key``, so visitor cookies survive restarts."""
    path = home / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    try:
        os.write(fd, key.encode())
    finally:
        os.close(fd)
    return key


def _remove_session(_exc: BaseException | None) -> None:
    from flask import current_app

    current_app.extensions["movierec"].store.remove()


def _security_headers(response):  # type: ignore[no-untyped-def]
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' https://image.tmdb.org data:; "
        "frame-src https://www.youtube-nocookie.com; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    )
    return response


__all__ = ["create_app", "settings_from_config"]
