"""Configuration, read from the environment in one place.

Data and models:

- ``MOVIEREC_HOME``: where data, models and the database live (default: a per-user
  data directory, e.g. ``~/.local/share/movierec``).
- ``MOVIEREC_DATA_SOURCE``: a mirror for MovieLens files: a directory holding
  ``<name>/`` folders or ``<name>.zip`` files, a zip file, or a base URL. Unset means
  the official GroupLens site.
- ``MOVIEREC_DATASET`` / ``MOVIEREC_MODEL``: what ``serve`` and ``recommend`` use by default.
- ``TMDB_API_KEY`` (v3 key) or ``TMDB_READ_TOKEN`` (v4 bearer token): posters and trailers.
- ``MOVIEREC_TMDB_URL``: a TMDB-compatible API base URL (a caching proxy, a test server);
  default ``https://api.themoviedb.org/3``.
- ``MOVIEREC_REGION``: the site's default country for "where to watch" (ISO 3166-1
  alpha-2, default ``US``); a visitor's own choice, else their ``Accept-Language``, wins.
- ``DATABASE_URL``: SQLAlchemy URL; default a SQLite file under ``MOVIEREC_HOME``.

Operating a public site (see docs/operating.md):

- ``SECRET_KEY`` or ``MOVIEREC_SECRET_KEY``: signs visitor cookies (else generated once
  into ``<home>/secret_key``); at least 16 characters.
- ``MOVIEREC_MAX_BODY``: largest request body in bytes (default 1 MB) -> 413 beyond.
- ``MOVIEREC_RATE_LIMIT``: Flask-Limiter limits per client address on the
  recommendation POSTs and the API (default ``120/minute;2000/hour``).
- ``REDIS_URL``: Redis for the rate-limit counters (default: in memory, per process).
- ``MOVIEREC_RETENTION_DAYS``: visitors idle this long are forgotten (default 365).
- ``MOVIEREC_SHOWN_PER_VISITOR``: picks remembered per visitor (default 200).
- ``MOVIEREC_MAX_RATINGS_PER_VISITOR``: ratings one visitor may keep (default 5,000).
- ``MOVIEREC_MAX_IMPORT_REPORT``: bytes of unmatched rows an import report keeps
  (default 128 KB).
- ``MOVIEREC_NEW_VISITORS_PER_HOUR``: visitors one client address may start an hour
  (default 20; counted where the rate limits are).
- ``MOVIEREC_HTTPS``: ``1`` when served over HTTPS: ``Secure`` cookies and HSTS.
- ``MOVIEREC_TRUSTED_PROXIES``: how many reverse proxies stand in front of the app
  (default 0). With ``n`` > 0 the client address (rate limits, new-visitor cap, access
  log) is the ``n``-th address from the right of ``X-Forwarded-For``, and the scheme comes
  from ``X-Forwarded-Proto`` (werkzeug's ``ProxyFix``); with 0 both headers are ignored.
- ``MOVIEREC_TRUSTED_HOSTS``: comma-separated host names the app answers to (default any;
  URLs the app emits are relative, so the Host header never reaches a response).
- ``MOVIEREC_WORKERS``, ``MOVIEREC_THREADS``, ``MOVIEREC_CONNECTION_LIMIT``,
  ``MOVIEREC_CHANNEL_TIMEOUT``: the server's processes, threads per process, open
  connections per process and idle-connection timeout in seconds.
- ``MOVIEREC_CONNECTIONS_PER_ADDRESS``: open connections one client address may hold in
  each process, more are closed at once (default 50; 0: no cap, for a reverse proxy).
- ``MOVIEREC_REQUEST_READ_TIMEOUT``: seconds from a request's first byte until its
  headers must be in (default 10); its body must then come at 500 bytes a second or more.
- ``MOVIEREC_WORKER_TIMEOUT``: seconds before a worker whose oldest request has run that
  long, or that stopped serving, is killed and replaced (default 60).
- ``MOVIEREC_MODEL_CHECK_EVERY``: seconds between a server process's looks for newer model
  files (default 10); ``0``: only on SIGHUP, so several hosts sharing the files can take a
  new model one at a time (deploy/, docs/operating.md).
- ``MOVIEREC_LOG_FORMAT``: ``text`` (default) or ``json`` (one JSON object a line).
- ``MOVIEREC_ACCESS_LOG``: ``0`` turns off the one access-log line per request.
- ``MOVIEREC_METRICS_TOKEN``: serve Prometheus metrics at ``/metrics`` to requests with
  ``Authorization: Bearer <token>`` (unset: ``/metrics`` is a 404); at least 16 characters.

Settings are a pure function of the environment: :func:`load_settings` with no argument
reads ``os.environ`` once and returns the same object until the environment changes.
Each field of :class:`Settings` declares its variable and its one parser (a blank value
counts as unset), so ``ENV_KEYS`` and every error message follow from the declaration.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from platformdirs import user_data_dir

from movierec.errors import InvalidInput

DEFAULT_DATASET = "ml-latest-small"
DEFAULT_MODEL = "ease"  # best on the onboarding protocol (docs/benchmarks.md)
DEFAULT_MAX_BODY = 1024 * 1024  # bytes
DEFAULT_RATE_LIMIT = "120/minute;2000/hour"  # per client address; a person rates far slower
DEFAULT_RETENTION_DAYS = 365
DEFAULT_SHOWN_PER_VISITOR = 200
#: about twice the busiest rater of ml-latest-small (2,698; ml-100k's has 737), so a real
#: fan's whole import fits; a visitor's ratings then take at most ~0.5 MB (docs/operating.md)
DEFAULT_MAX_RATINGS_PER_VISITOR = 5000
#: the unmatched rows an import report keeps, as JSON: ~1,000 rows of ordinary titles
DEFAULT_MAX_IMPORT_REPORT = 128 * 1024  # bytes
#: new visitors (first write without a known cookie) per client address an hour
DEFAULT_NEW_VISITORS_PER_HOUR = 20
DEFAULT_WORKERS = min(os.cpu_count() or 1, 4)
DEFAULT_THREADS = 8
DEFAULT_CONNECTION_LIMIT = 1000  # per process; an idle socket costs a slot, not a thread
DEFAULT_CHANNEL_TIMEOUT = 15  # seconds of silence before a connection is closed
DEFAULT_CONNECTIONS_PER_ADDRESS = 50  # per process; 0: no cap (every client is the proxy)
DEFAULT_REQUEST_READ_TIMEOUT = 10  # seconds from a request's first byte to its last header
DEFAULT_MODEL_CHECK_EVERY = 10  # seconds between looks for newer model files; 0: SIGHUP only
DEFAULT_WORKER_TIMEOUT = 60  # seconds a request may run (or a worker stay silent) before a kill
DEFAULT_TMDB_URL = "https://api.themoviedb.org/3"
DEFAULT_REGION = "US"
MIN_SECRET_KEY = 16  # characters
MIN_METRICS_TOKEN = 16  # characters
LOG_FORMATS = ("text", "json")

#: how a setting's text becomes its value: ``(variable, raw text)`` -> value, or
#: ``InvalidInput`` naming the variable and the bad value
Parser = Callable[[str, str], Any]


@dataclass(frozen=True)
class EnvVar:
    """Where one setting comes from: the first of ``names`` set to something other than
    blanks, read by ``parse``; unset, ``default`` (a value, or a function of the settings
    read before it, e.g. the database next to ``home``)."""

    names: tuple[str, ...]
    parse: Parser
    default: Any = None
    derived: Callable[[dict[str, Any]], Any] | None = None

    def read(self, env: Mapping[str, str], earlier: dict[str, Any]) -> Any:
        for name in self.names:
            raw = env.get(name)
            if raw is not None and raw.strip():
                return self.parse(name, raw)
        return self.derived(earlier) if self.derived is not None else self.default


def setting(
    names: str | tuple[str, ...],
    parse: Parser,
    default: Any = dataclasses.MISSING,
    derived: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """A :class:`Settings` field read from ``names`` by ``parse`` (its one parser).

    ``default``: the value when unset (also the dataclass default); ``derived``: instead,
    a function of the fields before it (the field is then required by the dataclass).
    """
    names = (names,) if isinstance(names, str) else names
    var = EnvVar(names, parse, None if default is dataclasses.MISSING else default, derived)
    return dataclasses.field(default=default, metadata={"env": var})


# -- one parser per kind of value ----------------------------------------------------------
def text(name: str, raw: str) -> str:
    """Any text, as given."""
    return raw


def whole(minimum: int) -> Parser:
    """A whole number of at least ``minimum`` (digits only)."""

    def parse(name: str, raw: str) -> int:
        value = raw.strip()
        if not (value.isascii() and value.isdigit()) or int(value) < minimum:
            raise InvalidInput(
                f"{name}={raw[:100]!r} is not a whole number of at least {minimum}", field=name
            )
        return int(value)

    return parse


def flag(name: str, raw: str) -> bool:
    """1/0, true/false, yes/no, on/off."""
    value = raw.strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise InvalidInput(f"{name}={value[:100]!r}: expected 1 or 0", field=name)


def names_list(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated names, blanks dropped."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def home_dir(name: str, raw: str) -> Path:
    """A directory (``~`` expanded)."""
    return Path(raw).expanduser()


def log_format(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in LOG_FORMATS:
        raise InvalidInput(f"{name}={value[:100]!r}: expected text or json", field=name)
    return value


def metrics_token(name: str, raw: str) -> str:
    token = raw.strip()
    if len(token) < MIN_METRICS_TOKEN or not token.isascii() or not token.isprintable():
        raise InvalidInput(
            f"{name} must be at least {MIN_METRICS_TOKEN} printable ASCII "
            f"characters (it is {len(token)} long); unset it to turn /metrics off",
            field=name,
        )
    return token


def tmdb_url(name: str, raw: str) -> str:
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InvalidInput(
            f"{name}={value[:100]!r}: expected an http(s) base URL like {DEFAULT_TMDB_URL}",
            field=name,
        )
    return value.rstrip("/")


def region(name: str, raw: str) -> str:
    value = raw.strip()
    if not (len(value) == 2 and value.isascii() and value.isalpha()):
        raise InvalidInput(
            f"{name}={value[:100]!r}: expected a two-letter country code like US or GB",
            field=name,
        )
    return value.upper()


def _default_home(earlier: dict[str, Any]) -> Path:
    return Path(user_data_dir("movierec", appauthor=False)).expanduser()


def _default_database(earlier: dict[str, Any]) -> str:
    return f"sqlite:///{earlier['home'] / 'movierec.db'}"


@dataclass(frozen=True)
class Settings:
    """Everything movierec reads from the environment: each field names its variable(s)
    and its parser (:func:`setting`); :func:`load_settings` reads them in field order."""

    home: Path = setting("MOVIEREC_HOME", home_dir, derived=_default_home)
    data_source: str | None = setting("MOVIEREC_DATA_SOURCE", text, derived=lambda _: None)
    tmdb_api_key: str | None = setting("TMDB_API_KEY", text, derived=lambda _: None)
    tmdb_read_token: str | None = setting("TMDB_READ_TOKEN", text, derived=lambda _: None)
    database_url: str = setting("DATABASE_URL", text, derived=_default_database)
    dataset: str = setting("MOVIEREC_DATASET", text, derived=lambda _: DEFAULT_DATASET)
    model: str = setting("MOVIEREC_MODEL", text, derived=lambda _: DEFAULT_MODEL)
    secret_key: str | None = setting(("SECRET_KEY", "MOVIEREC_SECRET_KEY"), text, None)
    max_body: int = setting("MOVIEREC_MAX_BODY", whole(1024), DEFAULT_MAX_BODY)  # bytes
    rate_limit: str = setting("MOVIEREC_RATE_LIMIT", text, DEFAULT_RATE_LIMIT)
    redis_url: str | None = setting("REDIS_URL", text, None)
    retention_days: int = setting("MOVIEREC_RETENTION_DAYS", whole(1), DEFAULT_RETENTION_DAYS)
    shown_per_visitor: int = setting(
        "MOVIEREC_SHOWN_PER_VISITOR", whole(0), DEFAULT_SHOWN_PER_VISITOR
    )
    max_ratings_per_visitor: int = setting(
        "MOVIEREC_MAX_RATINGS_PER_VISITOR", whole(1), DEFAULT_MAX_RATINGS_PER_VISITOR
    )
    max_import_report: int = setting(  # bytes
        "MOVIEREC_MAX_IMPORT_REPORT", whole(1024), DEFAULT_MAX_IMPORT_REPORT
    )
    new_visitors_per_hour: int = setting(  # per client address
        "MOVIEREC_NEW_VISITORS_PER_HOUR", whole(1), DEFAULT_NEW_VISITORS_PER_HOUR
    )
    https: bool = setting("MOVIEREC_HTTPS", flag, False)
    trusted_hosts: tuple[str, ...] = setting("MOVIEREC_TRUSTED_HOSTS", names_list, ())
    #: reverse proxies in front; 0: X-Forwarded-* ignored
    trusted_proxies: int = setting("MOVIEREC_TRUSTED_PROXIES", whole(0), 0)
    workers: int = setting("MOVIEREC_WORKERS", whole(1), DEFAULT_WORKERS)
    threads: int = setting("MOVIEREC_THREADS", whole(1), DEFAULT_THREADS)
    connection_limit: int = setting("MOVIEREC_CONNECTION_LIMIT", whole(1), DEFAULT_CONNECTION_LIMIT)
    channel_timeout: int = setting(  # seconds
        "MOVIEREC_CHANNEL_TIMEOUT", whole(1), DEFAULT_CHANNEL_TIMEOUT
    )
    connections_per_address: int = setting(  # per process; 0: no cap
        "MOVIEREC_CONNECTIONS_PER_ADDRESS", whole(0), DEFAULT_CONNECTIONS_PER_ADDRESS
    )
    request_read_timeout: int = setting(  # seconds
        "MOVIEREC_REQUEST_READ_TIMEOUT", whole(1), DEFAULT_REQUEST_READ_TIMEOUT
    )
    worker_timeout: int = setting(  # seconds
        "MOVIEREC_WORKER_TIMEOUT", whole(1), DEFAULT_WORKER_TIMEOUT
    )
    model_check_every: int = setting(  # seconds; 0: newer model files only on SIGHUP
        "MOVIEREC_MODEL_CHECK_EVERY", whole(0), DEFAULT_MODEL_CHECK_EVERY
    )
    log_format: str = setting("MOVIEREC_LOG_FORMAT", log_format, "text")  # or "json"
    access_log: bool = setting("MOVIEREC_ACCESS_LOG", flag, True)
    #: /metrics is served only with one
    metrics_token: str | None = setting("MOVIEREC_METRICS_TOKEN", metrics_token, None)
    #: TMDB v3 API base, no trailing slash
    tmdb_url: str = setting("MOVIEREC_TMDB_URL", tmdb_url, DEFAULT_TMDB_URL)
    region: str = setting("MOVIEREC_REGION", region, DEFAULT_REGION)  # ISO 3166-1 alpha-2

    @property
    def data_dir(self) -> Path:
        """Where fetched data sets live: ``<home>/data/<name>/``."""
        return self.home / "data"

    @property
    def models_dir(self) -> Path:
        """Where trained models live: ``<home>/models/<dataset>-<model>.npz``."""
        return self.home / "models"


def env_vars() -> dict[str, EnvVar]:
    """``{field name: where it comes from}`` for every :class:`Settings` field."""
    return {f.name: f.metadata["env"] for f in dataclasses.fields(Settings)}


#: every environment variable that settings are read from
ENV_KEYS = tuple(name for var in env_vars().values() for name in var.names)

_cache: tuple[tuple[str | None, ...], Settings] | None = None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``environ`` (default ``os.environ``, read once and kept
    while the variables it reads stay the same).

    A malformed value raises :class:`InvalidInput` naming the variable.
    """
    global _cache
    if environ is not None:
        return _parse(environ)
    snapshot = tuple(os.environ.get(k) for k in ENV_KEYS)
    if _cache is None or _cache[0] != snapshot:
        _cache = (snapshot, _parse(os.environ))
    return _cache[1]


def _parse(env: Mapping[str, str]) -> Settings:
    values: dict[str, Any] = {}
    for name, var in env_vars().items():
        values[name] = var.read(env, values)
    return Settings(**values)
