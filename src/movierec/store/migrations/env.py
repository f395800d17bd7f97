"""Alembic's environment for movierec: always run through :mod:`movierec.store.migrate`,
which hands over an open connection (``config.attributes["connection"]``)."""

from __future__ import annotations

from alembic import context

from movierec.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER by table copy on SQLite
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
