"""``Store``: the SQLAlchemy engine and sessions for one database URL.

SQLite (the default, a file under ``MOVIEREC_HOME``) runs in WAL mode with a busy
timeout so concurrent requests wait for each other instead of failing; its files are
readable by their owner only (0600). Any other SQLAlchemy URL (PostgreSQL:
``postgresql://user@host/db``) works as given, with ``pool_pre_ping`` so connections
dropped by a restart are replaced. A database that cannot be reached or used raises
:class:`~movierec.errors.StoreError` naming the URL without its password.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from sqlalchemy.pool import StaticPool

from movierec.errors import StoreError
from movierec.store.outage import OutageLog, store_message
from movierec.store.writer_turns import take_turns

SQLITE_BUSY_TIMEOUT_MS = 30_000


def safe_url(url: str) -> str:
    """``url`` with its password masked (for messages and logs)."""
    return make_url(url).render_as_string(hide_password=True)


def normalise_url(url: str) -> str:
    """``postgres://``/``postgresql://`` -> the psycopg 3 driver; others unchanged."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Store:
    """Engine + session factories for one database.

    ``scoped`` is the per-thread session the web app uses during a request (removed on
    teardown); ``session()`` opens a short-lived session of its own (committed on
    success), for work outside requests such as background TMDB look-ups.
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = normalise_url(url)
        self.safe_url = safe_url(self.url)
        try:
            self.engine = _make_engine(self.url, **engine_kwargs)
        except OSError as exc:  # the SQLite file's folder cannot be made or written
            raise StoreError(store_message(self.safe_url, exc)) from None
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self._scoped = scoped_session(self.sessionmaker)
        #: one log line per outage; a committed transaction that wrote ends one (a read
        #: that works while writes fail, e.g. SQLite locked, does not)
        self.outage = OutageLog(self.safe_url)
        event.listen(self.engine, "after_cursor_execute", _note_write)
        event.listen(self.sessionmaker, "after_begin", _note_connection)
        event.listen(self.sessionmaker, "after_commit", self._committed)
        event.listen(self.sessionmaker, "after_transaction_end", _forget_connections)
        database = _sqlite_file(self.url)
        if database is not None:
            take_turns(self.engine, self.sessionmaker, database)

    @property
    def scoped(self) -> Session:
        """This thread's request session: the same one until :meth:`remove`."""
        return self._scoped()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        """Bring the database to this code's schema revision (``movierec db upgrade``):
        run the Alembic migrations it lacks (all of them on an empty database).

        Raises :class:`StoreError` (one line naming the URL) when the database cannot
        be reached (closed port, unknown host), is not a database (corrupt SQLite
        file), cannot be written (read-only or full disk) or is at a revision this
        code does not know.
        """
        from movierec.store.migrate import upgrade

        try:
            upgrade(self)
        except StoreError:
            self.engine.dispose()
            raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A new session, committed if the block succeeds, rolled back otherwise."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def remove(self) -> None:
        """Close this thread's scoped session (end of a request)."""
        self._scoped.remove()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._scoped.remove()
        self.engine.dispose()

    def _committed(self, session: Session) -> None:
        """After COMMIT returned (SQLAlchemy's engine ``commit`` event fires before it
        runs, so a COMMIT failing on a full disk used to log "back" then "unavailable"
        once per request): a transaction that wrote ends an outage."""
        connections = session.info.pop(_CONNECTIONS, ())
        if any(conn.info.pop(_WROTE, False) for conn in connections):
            self.outage.succeeded()

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"


#: ``Connection.info`` key: an INSERT, UPDATE or DELETE ran in its current transaction
_WROTE = "movierec_wrote"
#: ``Session.info`` key: the connections its current transaction began on
_CONNECTIONS = "movierec_connections"


def _note_write(conn: Any, _cursor: Any, _statement: Any, _params: Any, context: Any, _many: Any):
    if context is not None and (context.isinsert or context.isupdate or context.isdelete):
        conn.info[_WROTE] = True


def _note_connection(session: Session, _transaction: Any, connection: Any) -> None:
    connection.info.pop(_WROTE, None)  # left by a transaction that failed or rolled back
    session.info.setdefault(_CONNECTIONS, []).append(connection)


def _forget_connections(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction ended (commit or rollback)
        session.info.pop(_CONNECTIONS, None)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database).expanduser()


def _make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        _owner_only_file(Path(database).expanduser())
    else:  # one shared in-memory database for every thread
        kwargs.setdefault("poolclass", StaticPool)
    kwargs.setdefault("connect_args", {"check_same_thread": False})
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _owner_only_file(path: Path) -> None:
    """Make the SQLite file (and its folder) if missing, readable by its owner only.

    SQLite gives the ``-wal`` and ``-shm`` files it creates the main file's mode, so
    creating the main file 0600 covers them; files left 0644 by earlier versions are
    tightened too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        # missing: nothing to do; another user's file: theirs to tighten
        with suppress(FileNotFoundError, PermissionError):
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
