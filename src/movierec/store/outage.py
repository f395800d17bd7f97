"""One log line per database outage instead of one traceback per request.

:class:`OutageLog` is told about every failed database use (``failed``) and every
transaction that wrote and whose COMMIT returned (``succeeded``, from
:class:`~movierec.store.db.Store`): the first failure logs one warning naming the
error class and the database URL (without password), later failures of the same
outage are only counted, and the first success afterwards logs
``database back after N failed requests``.
"""

from __future__ import annotations

import logging
import threading

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
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


class OutageLog:
    """Counts failures of one database between successes (thread-safe)."""

    def __init__(self, safe_url: str) -> None:
        self.safe_url = safe_url
        self.down = False
        self.failures = 0  # requests failed since the outage began
        self._lock = threading.Lock()

    def failed(self, exc: BaseException, request: bool = True) -> None:
        """Record a failed use (a request's, or a side look-up's if not ``request``);
        the first failure of an outage logs one warning line."""
        with self._lock:
            first = not self.down
            self.down = True
            self.failures += int(request)
        if first:
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
            self.down, self.failures = False, 0
        if was_down:
            log.warning("database back after %d failed requests", count)
