"""The web app: ``create_app(test_config=None)`` builds it (Flask application factory).

Nothing happens at import time. ``create_app`` reads the settings, opens the database
(creating the tables in an empty one; refusing one behind the code's schema revision,
see :mod:`movierec.store.migrate`), and registers the blueprints: ``pages`` (the
onboarding form and results), ``api`` (JSON under ``/api/v1``), ``posters`` (drawn
placeholder posters) and ``errors``. Data and models load on first use (``serve`` warms them first).

Configuration, lowest precedence first: the environment (:mod:`movierec.config`),
``instance/config.py`` (skipped when ``TESTING``), then ``test_config``. Keys read:
``MOVIEREC_HOME``, ``DATASET`` (or ``MOVIEREC_DATASET``), ``MOVIEREC_MODEL``,
``MOVIEREC_DATA_SOURCE``, ``DATABASE_URL``, ``TMDB_API_KEY``, ``TMDB_READ_TOKEN``,
``MOVIEREC_TMDB_URL``, ``MOVIEREC_REGION``,
``SETTINGS`` (a ready :class:`~movierec.config.Settings`; its ``trusted_proxies`` wraps the
app in werkzeug's ``ProxyFix``), ``MAX_CONTENT_LENGTH`` (else
``settings.max_body``; a body past it, declared or chunked, is a 413:
:mod:`movierec.web.bodies`), ``RATELIMIT_ENABLED``/``RATE_LIMIT``/``RATELIMIT_STORAGE_URI``
(:mod:`movierec.web.limits`), ``SECRET_KEY`` (else
the environment's ``SECRET_KEY`` or ``MOVIEREC_SECRET_KEY``, else one generated once and kept
in ``<home>/secret_key``; a key shorter than 16 characters is refused);
for tests also ``TMDB_TRANSPORT`` (a fake transport callable) and ``RECOMMENDERS``
(a :class:`~movierec.web.services.Recommenders` to share loaded models between apps).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from movierec.config import MIN_SECRET_KEY, Settings, load_settings
from movierec.errors import InvalidInput, MovierecError, StoreError
from movierec.web import session_cookie
from movierec.web.bodies import CappedRequest

log = logging.getLogger(__name__)
csrf = CSRFProtect()

#: browser features the app never uses, switched off for every page
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
)
HSTS = "max-age=31536000; includeSubDomains"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' https://image.tmdb.org data:; "
    "frame-src https://www.youtube-nocookie.com; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def static_security_headers(https: bool) -> list[tuple[str, str]]:
    """The security headers every response carries, the server's own errors included
    (``web.serve`` adds them to waitress's 413 and 400 answers)."""
    headers = [
        ("Permissions-Policy", PERMISSIONS_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ]
    return [*headers, ("Strict-Transport-Security", HSTS)] if https else headers


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
    "MOVIEREC_TMDB_URL": "MOVIEREC_TMDB_URL",
    "MOVIEREC_REGION": "MOVIEREC_REGION",
}


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the movierec Flask app."""
    from movierec.store.migrate import ensure_current
    from movierec.web import (
        api,
        api_catalog,  # noqa: F401  (adds its routes to api.bp)
        api_model,  # noqa: F401  (adds GET /api/v1/model to api.bp)
        api_watch,  # noqa: F401  (adds its routes to api.bp)
        catalogue,
        errors,
        health,
        limits,
        metrics,
        movies,
        observe,
        pages,
        posters,
        ratings,
        visitor,
        watchlist,
    )
    from movierec.web.services import Services

    app = Flask(__name__, instance_relative_config=True)
    app.request_class = CappedRequest  # a chunked body past the cap: 413, not cut short
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
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default is None: no cap
        app.config["MAX_CONTENT_LENGTH"] = settings.max_body  # bigger bodies: 413
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _env_secret_key(settings) or _secret_key(settings.home)
    # the cookie lives as long as the store remembers the visitor (renewed on each use)
    if "PERMANENT_SESSION_LIFETIME" not in (test_config or {}):
        app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=settings.retention_days)
    if settings.https:
        app.config["SESSION_COOKIE_SECURE"] = True
    if settings.trusted_hosts:  # other Host headers -> 400 (checked by Flask per request)
        app.config["TRUSTED_HOSTS"] = list(settings.trusted_hosts)
    if settings.trusted_proxies:  # the client address from X-Forwarded-For, no further
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]  # Flask's documented way

    services = Services.from_app_config(settings, app.config)
    # an empty database gets the tables; one behind this code's revision: one line,
    # `movierec db upgrade` (never create_all on a database that holds tables)
    ensure_current(services.store)
    _prune(services)
    app.extensions["movierec"] = services

    app.before_request(ratings.allow_import_bodies)  # before CSRF reads the form
    csrf.init_app(app)
    app.session_interface = session_cookie.SessionInterface()  # signed without zlib
    session_cookie.use_uncompressed_csrf()
    app.register_blueprint(pages.bp)
    app.register_blueprint(movies.bp)
    app.register_blueprint(ratings.bp)
    app.register_blueprint(watchlist.bp)
    app.register_blueprint(posters.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(errors.bp)
    app.register_blueprint(health.bp)  # /healthz, /readyz, /metrics: not rate limited
    limits.init_limits(app, settings)  # after the blueprints it limits
    app.before_request(visitor.note_visit)  # after CSRF and the limits have refused theirs
    app.before_request(catalogue.notice_added_movies)  # movies added: a stat every few s
    app.context_processor(catalogue.catalogue_context)  # the footer's "Movies up to 2018"
    app.teardown_appcontext(_remove_session)
    app.after_request(_security_headers)
    observe.init_observe(app, settings)  # request ids, access log, request metrics
    services.store.outage.listeners.append(lambda cause: metrics.DB_ERRORS.labels(cause).inc())
    metrics.note_models(settings, services.recommenders.loaded)
    return app


def settings_from_config(config: Mapping[str, Any]) -> Settings:
    """Settings from the environment, with any key set in ``config`` taking precedence."""
    env = dict(os.environ)
    for key, env_key in CONFIG_TO_ENV.items():
        value = config.get(key)
        if value is not None:
            env[env_key] = str(value)
    return load_settings(env)


def _prune(services: Any) -> None:
    """Apply the retention rule on start; one log line when anything went."""
    from movierec.store.retention import prune

    settings = services.settings
    try:
        removed = prune(services.store, settings.retention_days, settings.shown_per_visitor)
    except StoreError as exc:  # e.g. two workers pruning at once on PostgreSQL: next start
        log.warning("retention not applied on start: %s", exc)
        return
    if removed.total:
        log.info(
            "retention: forgot %d idle visitors, %d ratings, %d watchlist entries, "
            "%d hidden movies, %d import reports, %d shown picks",
            removed.visitors,
            removed.ratings,
            removed.watchlist,
            removed.hidden,
            removed.import_reports,
            removed.shown,
        )


def _env_secret_key(settings: Settings) -> str | None:
    """The key from ``SECRET_KEY``/``MOVIEREC_SECRET_KEY``; a short one is refused."""
    if not settings.secret_key:
        return None
    key = settings.secret_key.strip()
    if len(key) < MIN_SECRET_KEY:
        name = "SECRET_KEY" if os.environ.get("SECRET_KEY") else "MOVIEREC_SECRET_KEY"
        raise InvalidInput(
            f"{name} is {len(key)} characters long; use at least {MIN_SECRET_KEY} "
            "random characters (or unset it to have one made)",
            field=name,
        )
    return key


def _secret_key(home: Path) -> str:
    """A random key kept in ``<home>/secret_key``, so visitor cookies survive restarts.

    Made atomically: the key is written and synced to a private temporary file (0600),
    which is then hard-linked to ``secret_key``; ``link`` fails if another process got
    there first, so every process ends up reading the one complete key, and no reader
    ever sees a half-written or empty file.
    """
    path = home / "secret_key"
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".secret_key.", dir=home)  # mode 0600
        try:
            try:
                os.write(fd, secrets.token_hex(32).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(tmp, path)
        except FileExistsError:  # another process made it first: theirs is the key
            pass
        finally:  # never left behind, also when the disk is full
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    except OSError as exc:
        raise MovierecError(
            f"cannot create the secret key file {path}: {exc.strerror or exc}; "
            "make the folder writable or set SECRET_KEY"
        ) from None
    return _read_key(path)


def _read_key(path: Path) -> str:
    key = path.read_text(encoding="utf-8", errors="replace").strip()
    if len(key) < MIN_SECRET_KEY:
        raise InvalidInput(
            f"the secret key file {path} holds {len(key)} characters (at least "
            f"{MIN_SECRET_KEY} needed); delete it to have a new key made, or set SECRET_KEY",
            field="secret_key",
        )
    return key


def _remove_session(_exc: BaseException | None) -> None:
    from flask import current_app

    try:
        current_app.extensions["movierec"].store.remove()
    except Exception:  # a dead connection: the pool drops it; the next request reconnects
        log.debug("closing the request's database session failed", exc_info=True)


def _security_headers(response: Response) -> Response:
    from flask import current_app, session

    if session.accessed:  # built from the visitor's cookie: theirs alone, never cached
        response.headers.setdefault("Cache-Control", "no-store")
    for name, value in static_security_headers(current_app.config["SETTINGS"].https):
        response.headers.setdefault(name, value)
    return response


__all__ = ["create_app", "settings_from_config"]
