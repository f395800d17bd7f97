"""Visitors' settings (training opt-out, region, streaming services) and the watchlist.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN, never batch mode: on SQLite batch mode copies and
    # drops ``visitors``, and the drop cascades to every visitor's ratings.
    op.add_column(
        "visitors", sa.Column("opted_out", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column("visitors", sa.Column("region", sa.String(2), nullable=True))
    op.add_column("visitors", sa.Column("services", sa.JSON, nullable=True))
    op.create_table(
        "watchlist",
        sa.Column(
            "visitor_id",
            sa.String(64),
            sa.ForeignKey("visitors.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("movie_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("watchlist")
    for column in ("services", "region", "opted_out"):
        op.drop_column("visitors", column)  # SQLite >= 3.35 drops columns in place
