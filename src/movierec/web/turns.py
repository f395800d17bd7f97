"""One request computes at a time in a server process; the others wait for their turn
on a lock, not for the GIL.

A worker runs ``MOVIEREC_THREADS`` threads so that a request waiting for TMDB (up to its
0.8 s deadline) or a remote database does not hold the others up. But when several
threads are ready to compute, they share one core through the GIL, and NumPy lets go
of it around every operation on a large array: a picks page's few hundred array
operations became as many hand-overs between threads (a futex wake, a context switch,
cold caches). Measured with ``bench/load.py --workers 2 --clients 8 --endpoints form``
on the 2-core machine (2026-12-07): 8 threads, 7.8-9.9 ms of server CPU per submission,
156-199 submissions/s, p99 202-232 ms; 1 thread, 6.8 ms, 270/s, p99 51 ms; 8 threads
taking turns (this module), 7.3-7.4 ms, 229-232/s, p99 62-67 ms.

So each request holds the process's turn while it runs (:meth:`ComputeTurns.wrap`) and
gives it up only while it waits: for TMDB (:meth:`released`, set as the TMDB service's
``waiting``) and for each statement of a database across the network (not SQLite,
whose statements take microseconds in this process). A request that waited ``TURN_WAIT``
s for the turn computes without it, so one that hangs holding the turn (a stuck
dependency) slows its process's others down by that much, not until the worker watchdog
kills it (tests/hardening/test_supervisor.py's hung request). Hand-written because a lock is
all it takes: no server or library offers "threads for waiting, one for computing".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

#: seconds a request waits for the turn before it computes without it: a request that
#: hangs while holding the turn (a stuck dependency the turn is not given up for) then
#: delays the others of its process by this much, not until the worker watchdog kills it
TURN_WAIT = 0.5

#: a WSGI application: ``(environ, start_response) -> iterable of bytes``
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


class ComputeTurns:
    """The one turn to compute of a process: taken by each request, given up while it
    waits for the network."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stuck = False  # a wait for the turn ran out: its holder hangs
        self._mine = threading.local()  # .held: this thread holds the turn

    def wrap(self, app: WsgiApp) -> WsgiApp:
        """``app`` run in turns (the response body is sent after the turn ends)."""

        def in_turn(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            with self.turn():
                return app(environ, start_response)

        return in_turn

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn for the block (waiting for it first, at most ``TURN_WAIT`` s)."""
        self._take()
        try:
            yield
        finally:
            self._give()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Give the turn up for the block (a wait for the network), if held."""
        if not self.held:
            yield
            return
        self._give()
        try:
            yield
        finally:
            self._take()

    @property
    def held(self) -> bool:
        """Whether this thread holds the turn."""
        return bool(getattr(self._mine, "held", False))

    def release_during_queries(self, engine: Engine) -> None:
        """Give the turn up while each statement of ``engine`` runs (for a database
        across the network; SQLite's statements are too short to be worth it)."""

        @event.listens_for(engine, "before_cursor_execute")
        def _before(*_args: Any) -> None:
            if self.held:
                self._give()
                self._mine.waiting_for_db = True

        def _after(*_args: Any) -> None:
            if getattr(self._mine, "waiting_for_db", False):
                self._mine.waiting_for_db = False
                self._take()

        event.listen(engine, "after_cursor_execute", _after)
        event.listen(engine, "handle_error", _after)  # a failed statement: no "after"

    def _take(self) -> None:
        # held False: computes without the turn (and gives none back). Once a wait has
        # run out, the holder is taken to be stuck and nobody waits for it again until
        # it gives the turn back (then the lock is free and the first taker clears it)
        if self._stuck:
            self._mine.held = self._lock.acquire(blocking=False)
            if self._mine.held:
                self._stuck = False
            return
        self._mine.held = self._lock.acquire(timeout=TURN_WAIT)
        if not self._mine.held:
            self._stuck = True

    def _give(self) -> None:
        if self.held:
            self._mine.held = False
            self._lock.release()
