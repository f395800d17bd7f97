"""One log line per database outage instead of one traceback per request.

:class:`OutageLog` is told about every failed database use (``failed``) and every
transaction that wrote and whose COMMIT returned (``succeeded``, from
:class:`~movierec.store.db.Store`): the first failure logs one warning naming the
error class and the database URL (without password), later failures of the same
outage are only counted, and the first success afterwards logs
``database back after N failed requests``.

A database whose tables vanished (dropped, or the database dropped and made again
empty, while serving) is not "briefly unavailable": its first failure logs
``database at URL has lost its tables (...): run `movierec db upgrade` ...`` instead,
and :attr:`OutageLog.cause` says ``missing tables`` (the web layer answers 503 naming
it). A change of cause within one outage logs one more line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import exc as sa_exc

log = logging.getLogger("movierec.store")

#: exceptions meaning "the database cannot be used right now" (not a bug in a query)
UNAVAILABLE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection free in time
)


def is_unavailable(exc: BaseException) -> bool:
    """True for errors saying the database is down, locked or unreachable."""
    if isinstance(exc, UNAVAILABLE):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and is_missing_table(exc):
        return True  # PostgreSQL's is a ProgrammingError
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


#: causes an outage can have (:attr:`OutageLog.cause`)
UNAVAILABLE_CAUSE = "unavailable"
MISSING_TABLES = "missing tables"


def is_missing_table(exc: BaseException) -> bool:
    """True for "no such table" (SQLite) and undefined_table, SQLSTATE 42P01 (PostgreSQL)."""
    orig = getattr(exc, "orig", None) or exc
    if getattr(orig, "sqlstate", None) == "42P01":
        return True
    return str(orig).startswith("no such table")


def cause_of(exc: BaseException) -> str:
    return MISSING_TABLES if is_missing_table(exc) else UNAVAILABLE_CAUSE


class OutageLog:
    """Counts failures of one database between successes (thread-safe)."""

    def __init__(self, safe_url: str) -> None:
        self.safe_url = safe_url
        self.down = False
        self.cause: str | None = None  # while down: UNAVAILABLE_CAUSE or MISSING_TABLES
        self.failures = 0  # requests failed since the outage began
        self._lock = threading.Lock()
        #: called with the cause of every failure (e.g. a metrics counter)
        self.listeners: list[Callable[[str], None]] = []

    def failed(self, exc: BaseException, request: bool = True) -> None:
        """Record a failed use (a request's, or a side look-up's if not ``request``);
        the first failure of an outage (or of a new cause within one) logs one line."""
        cause = cause_of(exc)
        with self._lock:
            first = self.cause != cause
            self.down, self.cause = True, cause
            self.failures += int(request)
        for listener in self.listeners:
            listener(cause)
        if first and cause == MISSING_TABLES:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            log.error(
                "database at %s has lost its tables (%s): run `movierec db upgrade` to make "
                "them again; answering 503 until then",
                self.safe_url,
                reason[0][:200] if reason else "",
            )
        elif first:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            log.warning(
                "database unavailable (%s) at %s: %s",
                type(getattr(exc, "orig", None) or exc).__name__,
                self.safe_url,
                reason[0][:200] if reason else "",
            )

    def succeeded(self) -> None:
        """Record a committed transaction; ends an outage with one log line."""
        if not self.down:  # the common case: no lock taken
            return
        with self._lock:
            was_down, count = self.down, self.failures
            self.down, self.cause, self.failures = False, None, 0
        if was_down:
            log.warning("database back after %d failed requests", count)


def store_message(url: str, exc: BaseException) -> str:
    """``cannot use the database at <url>: <first line of the driver's reason>``."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = reason[0] if reason else type(exc).__name__
    return f"cannot use the database at {url}: {text[:200]}"
