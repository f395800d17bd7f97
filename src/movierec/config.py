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
- ``MOVIEREC_LOG_FORMAT``: ``text`` (default) or ``json`` (one JSON object a line).
- ``MOVIEREC_ACCESS_LOG``: ``0`` turns off the one access-log line per request.
- ``MOVIEREC_METRICS_TOKEN``: serve Prometheus metrics at ``/metrics`` to requests with
  ``Authorization: Bearer <token>`` (unset: ``/metrics`` is a 404); at least 16 characters.

Settings are a pure function of the environment: :func:`load_settings` with no argument
reads ``os.environ`` once and returns the same object until the environment changes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
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
DEFAULT_WORKER_TIMEOUT = 60  # seconds a request may run (or a worker stay silent) before a kill
DEFAULT_TMDB_URL = "https://api.themoviedb.org/3"
DEFAULT_REGION = "US"
MIN_SECRET_KEY = 16  # characters
MIN_METRICS_TOKEN = 16  # characters
LOG_FORMATS = ("text", "json")

#: every environment variable that settings are read from
ENV_KEYS = (
    "MOVIEREC_HOME",
    "MOVIEREC_DATA_SOURCE",
    "MOVIEREC_DATASET",
    "MOVIEREC_MODEL",
    "TMDB_API_KEY",
    "TMDB_READ_TOKEN",
    "MOVIEREC_TMDB_URL",
    "MOVIEREC_REGION",
    "DATABASE_URL",
    "SECRET_KEY",
    "MOVIEREC_SECRET_KEY",
    "MOVIEREC_MAX_BODY",
    "MOVIEREC_RATE_LIMIT",
    "REDIS_URL",
    "MOVIEREC_RETENTION_DAYS",
    "MOVIEREC_SHOWN_PER_VISITOR",
    "MOVIEREC_MAX_RATINGS_PER_VISITOR",
    "MOVIEREC_MAX_IMPORT_REPORT",
    "MOVIEREC_NEW_VISITORS_PER_HOUR",
    "MOVIEREC_HTTPS",
    "MOVIEREC_TRUSTED_HOSTS",
    "MOVIEREC_TRUSTED_PROXIES",
    "MOVIEREC_WORKERS",
    "MOVIEREC_THREADS",
    "MOVIEREC_CONNECTION_LIMIT",
    "MOVIEREC_CHANNEL_TIMEOUT",
    "MOVIEREC_CONNECTIONS_PER_ADDRESS",
    "MOVIEREC_REQUEST_READ_TIMEOUT",
    "MOVIEREC_WORKER_TIMEOUT",
    "MOVIEREC_LOG_FORMAT",
    "MOVIEREC_ACCESS_LOG",
    "MOVIEREC_METRICS_TOKEN",
)


@dataclass(frozen=True)
class Settings:
    """Everything movierec reads from the environment."""

    home: Path
    data_source: str | None
    tmdb_api_key: str | None
    tmdb_read_token: str | None
    database_url: str
    dataset: str
    model: str
    secret_key: str | None = None
    max_body: int = DEFAULT_MAX_BODY  # bytes
    rate_limit: str = DEFAULT_RATE_LIMIT
    redis_url: str | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    shown_per_visitor: int = DEFAULT_SHOWN_PER_VISITOR
    max_ratings_per_visitor: int = DEFAULT_MAX_RATINGS_PER_VISITOR
    max_import_report: int = DEFAULT_MAX_IMPORT_REPORT  # bytes
    new_visitors_per_hour: int = DEFAULT_NEW_VISITORS_PER_HOUR  # per client address
    https: bool = False
    trusted_hosts: tuple[str, ...] = ()
    trusted_proxies: int = 0  # reverse proxies in front; 0: X-Forwarded-* ignored
    workers: int = DEFAULT_WORKERS
    threads: int = DEFAULT_THREADS
    connection_limit: int = DEFAULT_CONNECTION_LIMIT
    channel_timeout: int = DEFAULT_CHANNEL_TIMEOUT  # seconds
    connections_per_address: int = DEFAULT_CONNECTIONS_PER_ADDRESS  # per process; 0: no cap
    request_read_timeout: int = DEFAULT_REQUEST_READ_TIMEOUT  # seconds
    worker_timeout: int = DEFAULT_WORKER_TIMEOUT  # seconds
    log_format: str = "text"  # or "json"
    access_log: bool = True
    metrics_token: str | None = None  # /metrics is served only with one
    tmdb_url: str = DEFAULT_TMDB_URL  # TMDB v3 API base, no trailing slash
    region: str = DEFAULT_REGION  # ISO 3166-1 alpha-2, upper case

    @property
    def data_dir(self) -> Path:
        """Where fetched data sets live: ``<home>/data/<name>/``."""
        return self.home / "data"

    @property
    def models_dir(self) -> Path:
        """Where trained models live: ``<home>/models/<dataset>-<model>.npz``."""
        return self.home / "models"


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
    home = Path(env.get("MOVIEREC_HOME") or user_data_dir("movierec", appauthor=False))
    home = home.expanduser()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{home / 'movierec.db'}"
    hosts = env.get("MOVIEREC_TRUSTED_HOSTS") or ""
    return Settings(
        home=home,
        data_source=env.get("MOVIEREC_DATA_SOURCE") or None,
        tmdb_api_key=env.get("TMDB_API_KEY") or None,
        tmdb_read_token=env.get("TMDB_READ_TOKEN") or None,
        database_url=database_url,
        dataset=env.get("MOVIEREC_DATASET") or DEFAULT_DATASET,
        model=env.get("MOVIEREC_MODEL") or DEFAULT_MODEL,
        secret_key=env.get("SECRET_KEY") or env.get("MOVIEREC_SECRET_KEY") or None,
        max_body=_int(env, "MOVIEREC_MAX_BODY", DEFAULT_MAX_BODY, minimum=1024),
        rate_limit=env.get("MOVIEREC_RATE_LIMIT") or DEFAULT_RATE_LIMIT,
        redis_url=env.get("REDIS_URL") or None,
        retention_days=_int(env, "MOVIEREC_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, minimum=1),
        shown_per_visitor=_int(
            env, "MOVIEREC_SHOWN_PER_VISITOR", DEFAULT_SHOWN_PER_VISITOR, minimum=0
        ),
        max_ratings_per_visitor=_int(
            env, "MOVIEREC_MAX_RATINGS_PER_VISITOR", DEFAULT_MAX_RATINGS_PER_VISITOR, minimum=1
        ),
        max_import_report=_int(
            env, "MOVIEREC_MAX_IMPORT_REPORT", DEFAULT_MAX_IMPORT_REPORT, minimum=1024
        ),
        new_visitors_per_hour=_int(
            env, "MOVIEREC_NEW_VISITORS_PER_HOUR", DEFAULT_NEW_VISITORS_PER_HOUR, minimum=1
        ),
        https=_flag(env, "MOVIEREC_HTTPS"),
        trusted_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()),
        trusted_proxies=_int(env, "MOVIEREC_TRUSTED_PROXIES", 0, minimum=0),
        workers=_int(env, "MOVIEREC_WORKERS", DEFAULT_WORKERS, minimum=1),
        threads=_int(env, "MOVIEREC_THREADS", DEFAULT_THREADS, minimum=1),
        connection_limit=_int(
            env, "MOVIEREC_CONNECTION_LIMIT", DEFAULT_CONNECTION_LIMIT, minimum=1
        ),
        channel_timeout=_int(env, "MOVIEREC_CHANNEL_TIMEOUT", DEFAULT_CHANNEL_TIMEOUT, minimum=1),
        connections_per_address=_int(
            env, "MOVIEREC_CONNECTIONS_PER_ADDRESS", DEFAULT_CONNECTIONS_PER_ADDRESS, minimum=0
        ),
        request_read_timeout=_int(
            env, "MOVIEREC_REQUEST_READ_TIMEOUT", DEFAULT_REQUEST_READ_TIMEOUT, minimum=1
        ),
        worker_timeout=_int(env, "MOVIEREC_WORKER_TIMEOUT", DEFAULT_WORKER_TIMEOUT, minimum=1),
        log_format=_log_format(env),
        access_log=_flag(env, "MOVIEREC_ACCESS_LOG", default=True),
        metrics_token=_metrics_token(env),
        tmdb_url=_tmdb_url(env),
        region=_region(env),
    )


def _tmdb_url(env: Mapping[str, str]) -> str:
    raw = (env.get("MOVIEREC_TMDB_URL") or "").strip()
    if not raw:
        return DEFAULT_TMDB_URL
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InvalidInput(
            f"MOVIEREC_TMDB_URL={raw[:100]!r}: expected an http(s) base URL like "
            f"{DEFAULT_TMDB_URL}",
            field="MOVIEREC_TMDB_URL",
        )
    return raw.rstrip("/")


def _region(env: Mapping[str, str]) -> str:
    raw = (env.get("MOVIEREC_REGION") or "").strip()
    if not raw:
        return DEFAULT_REGION
    if not (len(raw) == 2 and raw.isascii() and raw.isalpha()):
        raise InvalidInput(
            f"MOVIEREC_REGION={raw[:100]!r}: expected a two-letter country code like US or GB",
            field="MOVIEREC_REGION",
        )
    return raw.upper()


def _log_format(env: Mapping[str, str]) -> str:
    raw = (env.get("MOVIEREC_LOG_FORMAT") or "text").strip().lower()
    if raw not in LOG_FORMATS:
        raise InvalidInput(
            f"MOVIEREC_LOG_FORMAT={raw[:100]!r}: expected text or json", field="MOVIEREC_LOG_FORMAT"
        )
    return raw


def _metrics_token(env: Mapping[str, str]) -> str | None:
    token = (env.get("MOVIEREC_METRICS_TOKEN") or "").strip()
    if not token:
        return None
    if len(token) < MIN_METRICS_TOKEN or not token.isascii() or not token.isprintable():
        raise InvalidInput(
            f"MOVIEREC_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} printable ASCII "
            f"characters (it is {len(token)} long); unset it to turn /metrics off",
            field="MOVIEREC_METRICS_TOKEN",
        )
    return token


def _int(env: Mapping[str, str], key: str, default: int, minimum: int) -> int:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < minimum:
        raise InvalidInput(
            f"{key}={raw[:100]!r} is not a whole number of at least {minimum}", field=key
        )
    return int(text)


def _flag(env: Mapping[str, str], key: str, default: bool = False) -> bool:
    raw = (env.get(key) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise InvalidInput(f"{key}={raw[:100]!r}: expected 1 or 0", field=key)
