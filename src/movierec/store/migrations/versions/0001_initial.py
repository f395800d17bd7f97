"""The schema as it was before migrations (commit a5ddce9): visitors, ratings, hidden
movies, import reports, recommendations shown and the TMDB cache.

Creates only the tables that are missing, so a database made by ``create_all`` before
migrations existed is adopted as it is (nothing in it touched), and one made by older
code that lacked a table gets it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _when(timezone: bool = True) -> sa.DateTime:
    return sa.DateTime(timezone=timezone)  # schema.UTCDateTime's column type


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())

    def create(name: str, *columns: sa.schema.SchemaItem) -> None:
        if name not in present:
            op.create_table(name, *columns)

    create(
        "visitors",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("last_seen", _when(), nullable=False),
    )
    for name, when in (("ratings", "rated_at"), ("hidden_movies", "hidden_at")):
        columns: list[sa.schema.SchemaItem] = [
            sa.Column(
                "visitor_id",
                sa.String(64),
                sa.ForeignKey("visitors.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("movie_id", sa.Integer, primary_key=True, autoincrement=False),
        ]
        if name == "ratings":
            columns.append(sa.Column("stars", sa.Float, nullable=False))
        create(name, *columns, sa.Column(when, _when(), nullable=False))
    create(
        "import_reports",
        sa.Column(
            "visitor_id",
            sa.String(64),
            sa.ForeignKey("visitors.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", _when(), nullable=False),
    )
    if "recommendations_shown" not in present:
        op.create_table(
            "recommendations_shown",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(
                "visitor_id",
                sa.String(64),
                sa.ForeignKey("visitors.id", ondelete="CASCADE"),
                nullable=True,
            ),
            sa.Column("movie_id", sa.Integer, nullable=False),
            sa.Column("rank", sa.Integer, nullable=False),
            sa.Column("predicted_stars", sa.Float, nullable=False),
            sa.Column("model", sa.String(32), nullable=False),
            sa.Column("year", sa.String(8), nullable=False),
            sa.Column("shown_at", _when(), nullable=False),
        )
        op.create_index(
            "ix_recommendations_shown_visitor", "recommendations_shown", ["visitor_id", "shown_at"]
        )
    create(
        "tmdb_cache",
        sa.Column("tmdb_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("fetched_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "tmdb_cache",
        "recommendations_shown",
        "import_reports",
        "hidden_movies",
        "ratings",
        "visitors",
    ):
        op.drop_table(name)
