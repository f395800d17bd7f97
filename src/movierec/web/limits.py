"""Rate limiting with Flask-Limiter: per client address, on the recommendation POSTs and the API.

``init_limits(app, settings)`` gives each app its own :class:`~flask_limiter.Limiter`; one
shared budget (scope ``"recommend"``) per client address covers every route under
``/api/v1`` and the pages that compute picks or store answers (``LIMITED_ENDPOINTS``).
Over it: 429 with ``Retry-After`` (seconds), JSON under ``/api/``, a page elsewhere
(see :mod:`movierec.web.errors`).

app.config keys (else the settings): ``RATELIMIT_ENABLED`` (default True), ``RATE_LIMIT``
(``settings.rate_limit``, e.g. ``"120/minute;2000/hour"``), ``RATELIMIT_STORAGE_URI``
(``settings.redis_url``, else ``movierec-memory://``, per process),
``RATELIMIT_KEY_PREFIX`` (default ``movierec``).

The client address is ``request.remote_addr``, i.e. the TCP peer. Behind a reverse proxy every
visitor would share the proxy's address: configure ``werkzeug.middleware.proxy_fix.ProxyFix``
with the number of trusted proxies there. ``X-Forwarded-For`` is not trusted by default,
since any client can send it and so pick a fresh budget per request.

If the Redis storage is down, requests are still served: Flask-Limiter logs one warning line,
counts in memory until Redis answers again (it re-checks with growing pauses), and any other
storage error is logged and swallowed rather than answered with a 500.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, Response, g
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.storage import MemoryStorage

from movierec.config import Settings
from movierec.errors import InvalidInput, quoted

log = logging.getLogger(__name__)

#: the budget every limited route shares, per client address
SCOPE = "recommend"
#: the page views that compute recommendations or store a visitor's answers, limited along
#: with the API blueprint: the form POST, the picks it redirects to (where ranking happens),
#: "not interested", "show me 15 more", and rating a movie from its page or the search
LIMITED_ENDPOINTS = (
    "pages.submit",
    "pages.results",
    "pages.hide",
    "pages.more",
    "movies.rate",
    "ratings.import_file",
)
#: seconds to wait for Redis before counting in memory instead
REDIS_TIMEOUT = 0.5
#: the in-memory counters (per process), see :class:`SweptMemoryStorage`
MEMORY_STORAGE = "movierec-memory://"
#: seconds between sweeps of expired in-memory counters
SWEEP_INTERVAL = 1.0


class SweptMemoryStorage(MemoryStorage):
    """``limits``' memory storage, with expired counters swept from the request thread.

    The stock storage starts a new 10 ms ``threading.Timer`` thread on almost every
    request to sweep expired keys (about 0.6 ms of CPU a request under load, measured
    with bench/load.py). Counters are already expired lazily when read, so a sweep only
    frees memory: here it runs inline, at most once per ``SWEEP_INTERVAL``. Registered
    with ``limits`` under the ``movierec-memory://`` scheme by subclassing.
    """

    STORAGE_SCHEME = ["movierec-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the timer-per-call
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + SWEEP_INTERVAL
            self._MemoryStorage__expire_events()
        finally:
            self._sweep_lock.release()


#: ``g`` key where an error handler leaves the Retry-After (seconds) it means
RETRY_AFTER_KEY = "movierec_retry_after"


def retry_after_as_meant(response: Response) -> Response:
    """Keep ``Retry-After`` where it means something: Flask-Limiter sets it on every
    response of a limited route (200 and 303 included) to the window's reset, and raises a
    503's own 5 s to that. A 429 keeps the limiter's; a response whose handler set one
    (``g[RETRY_AFTER_KEY]``, e.g. the database-outage 503) gets that; others none."""
    if response.status_code == 429:
        return response
    meant = g.pop(RETRY_AFTER_KEY, None)
    if meant is None:
        response.headers.pop("Retry-After", None)
    else:
        response.headers["Retry-After"] = str(meant)
    return response


def init_limits(app: Flask, settings: Settings) -> Limiter | None:
    """Attach a limiter to ``app`` (after its blueprints are registered); None when disabled."""
    if not app.config.setdefault("RATELIMIT_ENABLED", True):
        return None
    storage = app.config.get("RATELIMIT_STORAGE_URI") or settings.redis_url or MEMORY_STORAGE
    options = {}
    if storage.startswith(("redis://", "rediss://", "unix://")):
        options = {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT}
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "movierec")
    limiter = Limiter(
        key_func=get_remote_address,
        storage_uri=storage,
        storage_options=options,
        strategy="fixed-window",
        headers_enabled=True,  # X-RateLimit-* and, on a 429, Retry-After
        retry_after="delta-seconds",
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    rate = str(app.config.get("RATE_LIMIT") or settings.rate_limit)
    try:
        parse_many(rate)
    except ValueError:
        raise InvalidInput(
            f"MOVIEREC_RATE_LIMIT must be like 120/minute;2000/hour, got {quoted(rate)}",
            field="MOVIEREC_RATE_LIMIT",
        ) from None
    # registered before the limiter's own hook, so it runs after it (Flask runs them last
    # first): Flask-Limiter puts Retry-After on every response of a limited route
    app.after_request(retry_after_as_meant)
    limiter.init_app(app)
    shared = limiter.shared_limit(rate, scope=SCOPE)
    shared(app.blueprints["api"])
    for endpoint in LIMITED_ENDPOINTS:
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = shared(app.view_functions[endpoint])
    log.debug("rate limit %s per address on the API and the form", rate)
    app.extensions["movierec_limiter"] = limiter
    return limiter
