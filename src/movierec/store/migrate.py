"""Schema migrations with Alembic: where a database stands, and bringing it to this code's.

The scripts live in the package (``movierec/store/migrations/versions``), so an editable
install and a wheel both carry them; ``movierec db upgrade`` and ``movierec db current``
run them through :func:`upgrade` and :func:`status`, never through an ``alembic.ini``.

What ``serve`` (``create_app``) does with a database, by its :class:`Status`:

- ``empty`` (no table of ours, no revision): upgraded at once, so the first
  ``movierec serve`` on a new machine needs no other command;
- ``current``: served;
- ``behind`` (an older revision, or tables made before migrations with no revision) and
  ``unknown`` (a revision this code does not have, e.g. written by a newer movierec):
  refused in one line saying what to run. Nothing is ever created in, or changed on, a
  database that already holds tables, except by ``movierec db upgrade``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from movierec.errors import StoreError
from movierec.store.outage import store_message

if TYPE_CHECKING:
    from movierec.store.db import Store

#: the tables this code keeps (schema.Base.metadata), in no particular order
TABLES = (
    "visitors",
    "ratings",
    "hidden_movies",
    "watchlist",
    "import_reports",
    "recommendations_shown",
    "tmdb_cache",
)
#: tables added after the first revision, by the revision that adds them
TABLE_SINCE = {"watchlist": "0002"}
VERSION_TABLE = "alembic_version"
#: PostgreSQL advisory lock held while migrating (any constant; "mr" in ASCII, then 19)
ADVISORY_LOCK = 0x6D7219
UPGRADE_HINT = "run `movierec db upgrade` (with the same DATABASE_URL)"


@lru_cache(maxsize=1)
def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def _config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "movierec.store:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The revision this code's schema is at (the one head of the scripts)."""
    revision: str = _scripts().get_current_head()  # one head: never None
    return revision


@dataclass(frozen=True)
class Status:
    """Where a database stands against this code's revision."""

    revision: str | None  # the database's, None when it has no version table
    head: str  # this code's
    tables: tuple[str, ...]  # which of this code's tables exist

    @property
    def state(self) -> str:
        """``current``, ``empty``, ``behind`` or ``unknown`` (see the module doc)."""
        if self.revision == self.head:
            return "current"
        if self.revision is None:
            return "behind" if self.tables else "empty"
        known = {s.revision for s in _scripts().walk_revisions()}
        return "behind" if self.revision in known else "unknown"

    @property
    def missing(self) -> tuple[str, ...]:
        """Tables the database should have at its revision but lacks (a database made
        before migrations counts as the first revision; later tables are not missing
        from a database behind, the upgrade makes them)."""
        known = {s.revision for s in _scripts().walk_revisions()}
        at = self.revision or "0001"
        if at not in known:
            at = self.head

        def expected(table: str) -> bool:  # revision ids are zero-padded, so they sort
            return TABLE_SINCE.get(table, "0001") <= at

        return tuple(t for t in TABLES if expected(t) and t not in self.tables)

    def describe(self) -> str:
        """``at revision 0001 (current)`` and the like, for the CLI and logs."""
        state = self.state
        if state == "empty":
            return f"empty (no tables); this code's revision is {self.head}"
        if self.revision is None:
            return f"made before migrations (no revision); this code's revision is {self.head}"
        if state == "current":
            note = f"; tables missing: {', '.join(self.missing)}" if self.missing else ""
            return f"at revision {self.revision} (current){note}"
        if state == "behind":
            return f"at revision {self.revision}, behind this code's {self.head}"
        return (
            f"at revision {self.revision}, which this code does not know (made by a newer "
            f"movierec?); this code's revision is {self.head}"
        )


def read_status(connection: Connection) -> Status:
    """The :class:`Status` of the database ``connection`` is open on (reads only)."""
    names = set(inspect(connection).get_table_names())
    revision = None
    if VERSION_TABLE in names:
        rows = connection.execute(text(f"select version_num from {VERSION_TABLE}")).all()
        revision = rows[0][0] if rows else None
    return Status(revision, head(), tuple(t for t in TABLES if t in names))


def status(store: Store) -> Status:
    """Where ``store``'s database stands; :class:`StoreError` if it cannot be read."""
    with _naming(store), store.engine.connect() as connection:
        return read_status(connection)


def upgrade(store: Store) -> tuple[Status, Status]:
    """Run every migration the database lacks, in one transaction where the database
    allows (PostgreSQL and SQLite both do DDL in transactions); returns the status
    before and after. A revision this code does not know is refused, not touched."""
    from alembic import command

    with _naming(store), store.engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # two hosts starting at once: one waits
            connection.execute(text(f"select pg_advisory_xact_lock({ADVISORY_LOCK})"))
        before = read_status(connection)
        if before.state == "unknown":
            raise StoreError(f"the database at {store.safe_url} is {before.describe()}")
        if before.state != "current":
            command.upgrade(_config(connection), "head")
        after = read_status(connection)
    return before, after


def ensure_current(store: Store) -> Status:
    """For ``serve``: upgrade an empty database, refuse one behind (or ahead) in one line."""
    found = status(store)
    if found.state == "empty":
        return upgrade(store)[1]
    if found.state != "current":
        hint = f"; {UPGRADE_HINT}" if found.state == "behind" else ""
        raise StoreError(f"the database at {store.safe_url} is {found.describe()}{hint}")
    return found


class _naming:
    """Turn a database error into one :class:`StoreError` line naming the URL."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, _tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, StoreError):
            return False
        dbapi_error = getattr(self.store.engine.dialect.dbapi, "Error", SQLAlchemyError)
        if isinstance(exc, SQLAlchemyError | OSError | dbapi_error):
            raise StoreError(store_message(self.store.safe_url, exc)) from None
        return False
