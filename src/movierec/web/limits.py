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
visitor would share the proxy's address: ``MOVIEREC_TRUSTED_PROXIES`` (the number of proxies
in front) makes it the client's address from ``X-Forwarded-For`` (werkzeug's ``ProxyFix``,
in :func:`movierec.web.create_app`). ``X-Forwarded-For`` is not trusted by default,
since any client can send it and so pick a fresh budget per request.

If the Redis storage is down, requests are still served: Flask-Limiter logs one warning line,
counts in memory until Redis answers again (it re-checks with growing pauses), and any other
storage error is logged and swallowed rather than answered with a 500.

New visitors per address (:class:`NewVisitorCap`, ``settings.new_visitors_per_hour``): each
visitor costs storage kept for ``MOVIEREC_RETENTION_DAYS`` (up to ``MOVIEREC_MAX_RATINGS_PER_
VISITOR`` ratings and an import report), and a client without a cookie starts a new one with
every write, so the visitors one address starts are counted, an hour at a time, in the same
storage as the request budget: Redis shared by every worker and host when ``REDIS_URL`` is
set, else in memory per process (up to workers x the cap; a restart forgets). Not in the
database: that would mean keeping client addresses there, and a write per count. An IPv6
client is counted by its /64, the block one subscriber is usually given.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItemPerHour, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from movierec.config import Settings
from movierec.errors import InvalidInput, quoted
from movierec.extras import require
from movierec.web.connections import client_key

log = logging.getLogger(__name__)

#: the budget every limited route shares, per client address
SCOPE = "recommend"
#: the page views that compute recommendations or store a visitor's answers, limited along
#: with the API blueprint: the form POST, the picks it redirects to (where ranking happens),
#: "not interested", "show me 15 more", rating a movie from its page or the search, and
#: the watchlist's writes and ranked list
LIMITED_ENDPOINTS = (
    "pages.submit",
    "pages.results",
    "pages.hide",
    "pages.more",
    "movies.rate",
    "ratings.import_file",
    "watchlist.add",
    "watchlist.remove",
    "watchlist.index",
    "watchlist.import_file",
    "watchlist.save_settings",
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

    It overrides the stock storage's private (name-mangled) ``__schedule_expiry``, so
    pyproject.toml pins ``limits`` to the minor release it was checked on, and
    tests/web/test_limits_pin.py fails if an upgrade moves it.
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
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]  # limits' private (pinned)
        finally:
            self._sweep_lock.release()


#: ``g`` key where an error handler leaves the Retry-After (seconds) it means
RETRY_AFTER_KEY = "movierec_retry_after"


def retry_after_as_meant(response: Response) -> Response:
    """Keep ``Retry-After`` where it means something: Flask-Limiter sets it on every
    response of a limited route (200 and 303 included) to the window's reset, and raises a
    503's own 5 s to that. A 429 keeps the limiter's unless its handler set one (the
    new-visitor cap's counts in another window); a response whose handler set one
    (``g[RETRY_AFTER_KEY]``, e.g. the database-outage 503) gets that; others none."""
    meant = g.pop(RETRY_AFTER_KEY, None)
    if response.status_code == 429 and meant is None:
        return response
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
    options: dict[str, Any] = {}
    if storage.startswith(("redis://", "rediss://", "unix://")):
        require("redis", "redis", "REDIS_URL (rate limits shared in Redis)")
        options = {
            "socket_connect_timeout": REDIS_TIMEOUT,
            "socket_timeout": REDIS_TIMEOUT,
        }
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
    shared(app.blueprints["api"])  # type: ignore[call-overload]  # a blueprint is accepted too
    for endpoint in LIMITED_ENDPOINTS:
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = shared(app.view_functions[endpoint])  # type: ignore[assignment]  # a view
    log.debug("rate limit %s per address on the API and the form", rate)
    app.extensions["movierec_limiter"] = limiter
    prefix = str(app.config["RATELIMIT_KEY_PREFIX"])
    app.extensions["movierec_new_visitors"] = NewVisitorCap(
        limiter, settings.new_visitors_per_hour, prefix
    )
    return limiter


class TooManyNewVisitors(Exception):
    """This client address started ``per_hour`` visitors this hour (answered 429)."""

    def __init__(self, per_hour: int, retry_after: int) -> None:
        super().__init__(f"at most {per_hour} new visitors an hour per address")
        self.per_hour = per_hour
        self.retry_after = retry_after  # seconds


#: the limiter's key part for new visitors, apart from the shared request budget
NEW_VISITOR_SCOPE = "new-visitor"


class NewVisitorCap:
    """At most ``per_hour`` new visitors per client address an hour (see the module)."""

    def __init__(self, limiter: Limiter, per_hour: int, prefix: str) -> None:
        self.limiter = limiter
        self.per_hour = per_hour
        self.item = RateLimitItemPerHour(per_hour)
        self.prefix = prefix
        #: counts while the limiter's storage fails (as Flask-Limiter's own fallback)
        self.fallback = FixedWindowRateLimiter(MemoryStorage())
        self.failing = False

    def count(self, address: str | None) -> None:
        """Count one new visitor for ``address``; ``TooManyNewVisitors`` past the cap."""
        keys = (self.prefix, NEW_VISITOR_SCOPE, address_block(address))
        try:
            strategy = self.limiter.limiter
            allowed = strategy.hit(self.item, *keys)
            self.failing = False
        except Exception:  # Redis down: served and counted in memory, never a 500
            if not self.failing:  # one line per outage, not one per visitor
                log.warning("new-visitor count: rate-limit storage unreachable, in memory")
            self.failing = True
            strategy = self.fallback
            allowed = strategy.hit(self.item, *keys)
        if allowed:
            return
        try:
            reset = strategy.get_window_stats(self.item, *keys).reset_time
            wait = max(1, math.ceil(reset - time.time()))
        except Exception:
            wait = 3600
        raise TooManyNewVisitors(self.per_hour, wait)


def count_new_visitor() -> None:
    """Count a visitor about to be created by this request (nothing with rate limits off)."""
    cap: NewVisitorCap | None = current_app.extensions.get("movierec_new_visitors")
    if cap is not None:
        cap.count(request.remote_addr)


def address_block(address: str | None) -> str:
    """The key a client address is counted under, the same as the per-address connection
    cap's (:func:`~movierec.web.connections.client_key`: an IPv4 address as it is, an IPv6
    one by its /64, an IPv4-mapped one as the IPv4 address); no address: ``"unknown"``."""
    return client_key(address) if address else "unknown"
