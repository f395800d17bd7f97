"""Tables: visitors (with their settings), their ratings, watchlist and hidden movies, the
recommendations shown, the TMDB cache."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Visitor(Base):
    """An anonymous visitor, known by the random id in their signed cookie."""

    __tablename__ = "visitors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # True when the visitor asked that their ratings not train the site's next model
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # ISO 3166-1 alpha-2 country for "where to watch" (None: from Accept-Language / site)
    region: Mapped[str | None] = mapped_column(String(2), nullable=True)
    # TMDB watch-provider ids the visitor subscribes to ("my services"), as a JSON list
    services: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)


class Rating(Base):
    """A visitor's stars (0.5-5) for one movie; one row per (visitor, movie)."""

    __tablename__ = "ratings"

    visitor_id: Mapped[str] = mapped_column(
        ForeignKey("visitors.id", ondelete="CASCADE"), primary_key=True
    )
    movie_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stars: Mapped[float] = mapped_column(Float)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HiddenMovie(Base):
    """A movie a visitor marked "not interested": never recommended to them again."""

    __tablename__ = "hidden_movies"

    visitor_id: Mapped[str] = mapped_column(
        ForeignKey("visitors.id", ondelete="CASCADE"), primary_key=True
    )
    movie_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hidden_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WatchlistEntry(Base):
    """A movie a visitor wants to see ("Want to see"); never offered as a new pick."""

    __tablename__ = "watchlist"

    visitor_id: Mapped[str] = mapped_column(
        ForeignKey("visitors.id", ondelete="CASCADE"), primary_key=True
    )
    movie_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ImportReport(Base):
    """What the visitor's latest file import found (one per visitor), shown after the
    upload redirects: counts, rows that matched no movie, and the stars the file gave
    for movies already rated differently (replaced only when the visitor confirms)."""

    __tablename__ = "import_reports"

    visitor_id: Mapped[str] = mapped_column(
        ForeignKey("visitors.id", ondelete="CASCADE"), primary_key=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ShownRecommendation(Base):
    """One pick shown to a visitor (or an API caller, visitor NULL)."""

    __tablename__ = "recommendations_shown"
    __table_args__ = (Index("ix_recommendations_shown_visitor", "visitor_id", "shown_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    visitor_id: Mapped[str | None] = mapped_column(
        ForeignKey("visitors.id", ondelete="CASCADE"), nullable=True
    )
    movie_id: Mapped[int] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(Integer)
    predicted_stars: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(32))
    year: Mapped[str] = mapped_column(String(8))
    shown_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TmdbCacheEntry(Base):
    """TMDB's answer for one movie (poster path, overview, trailer key) until expiry."""

    __tablename__ = "tmdb_cache"

    tmdb_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
