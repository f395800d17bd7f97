"""SQLite writers take turns on a lock file, so a waiting writer starts the moment the
one before it commits.

SQLite lets one writer at a time into a database. A second one is told SQLITE_BUSY and
its busy handler sleeps and tries again, sleeping 1, 2, 5, 10, ... up to 100 ms between
tries, so a write that a 0.3 ms transaction held up can wait 5-100 ms. Under the form's
load (8 clients, 2 workers of 4 threads, two short write transactions per submission)
that backoff was the slowest 1 % of submissions (p99 280-475 ms, p50 35-45 ms).

Here each SQLite connection of the app takes an exclusive ``flock`` on
``<database>.writers`` before its transaction's first INSERT, UPDATE or DELETE, and
lets it go once that transaction has committed or rolled back. ``flock`` waits in the
kernel, which wakes the next writer as soon as the lock is free, across threads (each
connection has its own open file) and worker processes alike. Reads take no lock (WAL:
they never wait for a writer). Writers that do not take part (``movierec store prune``
run by cron, say) still meet SQLite's busy handler, as before. Hand-written because
neither SQLAlchemy nor the ``sqlite3`` module offers a waiting (rather than sleeping)
busy handler.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

#: ``ConnectionRecord.info`` keys: the open lock file, and whether it is held now
_FILE = "movierec_writers_fd"
_HELD = "movierec_writers_held"
#: ``Session.info`` key: the connections its current transaction runs on
_CONNECTIONS = "movierec_writers_connections"


def take_turns(engine: Engine, sessions: sessionmaker[Session], database: Path) -> None:
    """Make the writers of ``engine`` (through ``sessions`` or directly) take turns on
    ``database`` with a ``.writers`` lock file beside it."""
    path = Path(f"{database}.writers")

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        info = conn.connection.info  # the pooled DBAPI connection's record: one per file
        if info.get(_HELD) or not _writes(statement):
            return
        fd = info.get(_FILE)
        if fd is None:
            fd = info[_FILE] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        info[_HELD] = True

    def _release(info: dict[str, Any]) -> None:
        if info.pop(_HELD, False):
            fcntl.flock(info[_FILE], fcntl.LOCK_UN)

    @event.listens_for(sessions, "after_begin")
    def _begun(session: Session, _transaction: Any, conn: Any) -> None:
        session.info.setdefault(_CONNECTIONS, []).append(conn)

    @event.listens_for(sessions, "after_transaction_end")
    def _ended(session: Session, transaction: Any) -> None:
        if transaction.parent is None:  # the outermost one: committed or rolled back
            for conn in session.info.pop(_CONNECTIONS, ()):
                if not conn.closed:
                    _release(conn.connection.info)

    @event.listens_for(engine.pool, "checkin")
    def _checkin(_dbapi: Any, record: Any) -> None:
        _release(record.info)  # rolled back by the pool's reset-on-return before this

    @event.listens_for(engine.pool, "close")
    def _close(_dbapi: Any, record: Any) -> None:
        _release(record.info)
        fd = record.info.pop(_FILE, None)
        if fd is not None:
            os.close(fd)


def _writes(statement: str) -> bool:
    """Whether ``statement`` writes (INSERT, UPDATE, DELETE, REPLACE)."""
    head = statement.lstrip()[:7].upper()
    return head.startswith(("INSERT", "UPDATE", "DELETE", "REPLAC"))
