"""What the app stores and reads, one function per action (each takes a ``Session``).

Writes that may race (two tabs submitting at once, two threads caching the same
TMDB answer) are single ``INSERT ... ON CONFLICT DO UPDATE`` statements on SQLite and
PostgreSQL, so concurrent requests never lose or duplicate a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Table,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from movierec.errors import RatingsFull
from movierec.store.schema import (
    HiddenMovie,
    ImportReport,
    Rating,
    ShownRecommendation,
    TmdbCacheEntry,
    Visitor,
    WatchlistEntry,
    utcnow,
)


def touch_visitor(session: Session, visitor_id: str, when: datetime | None = None) -> None:
    """Create the visitor if new, else update when they were last seen."""
    when = when or utcnow()
    upsert = _dialect_insert(session)
    if upsert is None:
        visitor = session.get(Visitor, visitor_id)
        if visitor is None:
            session.add(Visitor(id=visitor_id, created_at=when, last_seen=when))
        else:
            visitor.last_seen = when
        session.flush()
        return
    table = Visitor.__table__
    stmt = upsert(table).values(id=visitor_id, created_at=when, last_seen=when)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.id], set_={"last_seen": stmt.excluded.last_seen}
    )
    session.connection().execute(stmt)


class VisitorRow(NamedTuple):
    """What a request needs of a known visitor's own row (one primary-key read)."""

    last_seen: datetime
    region: str | None
    services: list[int] | None


def visitor_row(session: Session, visitor_id: str) -> VisitorRow | None:
    """The visitor's row, or None for an id the store does not know.

    A Core statement on the table (no ORM identity map or unit of work to build): it runs
    before every page a visitor sees, so its cost is every page's cost.
    """
    table = _table(Visitor)
    stmt = select(table.c.last_seen, table.c.region, table.c.services).where(
        table.c.id == visitor_id
    )
    row = session.connection().execute(stmt).first()
    if row is None:
        return None
    services = row.services if isinstance(row.services, list) else None
    chosen = [int(s) for s in services] if services is not None else None
    return VisitorRow(row.last_seen, row.region, chosen)


def note_visit(
    session: Session, visitor_id: str, every: timedelta, when: datetime | None = None
) -> bool:
    """Move a known visitor's ``last_seen`` to ``when`` (default now) if it is older than
    ``when - every``; True if it was written.

    One primary-key read, and an ``UPDATE`` only when the stored time is stale, so a
    visitor browsing many pages costs one write per ``every``; an unknown id is never
    created. (The web app reads the row once per request itself and calls
    :func:`move_last_seen`.)
    """
    when = when or utcnow()
    row = visitor_row(session, visitor_id)
    stale = when - every
    return (
        row is not None
        and row.last_seen < stale
        and move_last_seen(session, visitor_id, when, stale)
    )


def move_last_seen(session: Session, visitor_id: str, when: datetime, stale: datetime) -> bool:
    """Set ``last_seen`` to ``when`` if it is older than ``stale``; True if written (the
    ``WHERE`` repeats the test, so two requests racing write once)."""
    table = _table(Visitor)
    stmt = (
        update(table)
        .where(table.c.id == visitor_id, table.c.last_seen < stale)
        .values(last_seen=when)
    )
    return bool(_rowcount(session.connection().execute(stmt)))


class VisitorLists(NamedTuple):
    """A visitor's ratings (``{movieId: stars}``, most recently rated first), hidden
    movies and watchlist, as the picks pages need them together."""

    ratings: dict[int, float]
    hidden: set[int]
    watchlist: set[int]


def visitor_lists(session: Session, visitor_id: str) -> VisitorLists:
    """The visitor's ratings, hidden movies and watchlist in one round trip (a
    ``UNION ALL`` of three primary-key range reads), where three reads cost three."""
    ratings, hidden, watch = _table(Rating), _table(HiddenMovie), _table(WatchlistEntry)
    kind: ColumnElement[Any] = literal_column("0").label("kind")
    stmt = union_all(
        select(kind, ratings.c.movie_id, ratings.c.stars, ratings.c.rated_at).where(
            ratings.c.visitor_id == visitor_id
        ),
        select(literal_column("1"), hidden.c.movie_id, null(), null()).where(
            hidden.c.visitor_id == visitor_id
        ),
        select(literal_column("2"), watch.c.movie_id, null(), null()).where(
            watch.c.visitor_id == visitor_id
        ),
    ).order_by(  # the order visitor_ratings gives: newest first, then by movie id
        literal_column("kind"), literal_column("rated_at").desc(), literal_column("movie_id")
    )
    lists = VisitorLists({}, set(), set())
    for kind_of, movie_id, stars, _rated_at in session.connection().execute(stmt):
        if kind_of == 0:
            lists.ratings[int(movie_id)] = float(stars)
        else:
            (lists.hidden if kind_of == 1 else lists.watchlist).add(int(movie_id))
    return lists


def upsert_ratings(
    session: Session,
    visitor_id: str,
    ratings: Mapping[int, float],
    when: datetime | None = None,
    rated_at: Mapping[int, datetime] | None = None,
    cap: int | None = None,
) -> None:
    """Store ``{movieId: stars}`` for the visitor (replacing earlier stars) in one statement,
    each timestamped ``rated_at[movieId]`` if given (imported ratings keep the date the
    visitor gave them elsewhere), else ``when`` (default now).

    With ``cap``: raises :class:`RatingsFull` when the visitor would then hold more than
    ``cap`` ratings, checked after the write in the same transaction (which the caller
    rolls back), so on SQLite, where writers take turns, two racing requests cannot both
    pass; on PostgreSQL each sees only its own and committed rows.
    """
    when = when or utcnow()
    dates = rated_at or {}
    touch_visitor(session, visitor_id, when)
    if not ratings:
        return
    _upsert_rating_rows(session, visitor_id, ratings, when, dates)
    if cap is not None and rating_count(session, visitor_id) > cap:
        raise RatingsFull(cap)


def rating_count(session: Session, visitor_id: str) -> int:
    """How many ratings the visitor holds."""
    stmt = select(func.count()).select_from(Rating).where(Rating.visitor_id == visitor_id)
    return int(session.scalar(stmt) or 0)


def _upsert_rating_rows(
    session: Session,
    visitor_id: str,
    ratings: Mapping[int, float],
    when: datetime,
    dates: Mapping[int, datetime],
) -> None:
    rows = [
        {
            "visitor_id": visitor_id,
            "movie_id": int(m),
            "stars": float(s),
            "rated_at": dates.get(m, when),
        }
        for m, s in sorted(ratings.items())  # one lock order for every writer
    ]
    upsert = _dialect_insert(session)
    if upsert is None:
        for row in rows:
            session.merge(Rating(**row))
        session.flush()
        return
    table = Rating.__table__
    stmt = upsert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.visitor_id, table.c.movie_id],
        set_={"stars": stmt.excluded.stars, "rated_at": stmt.excluded.rated_at},
    )
    session.connection().execute(stmt, rows)  # one cached statement, many rows


def delete_ratings(
    session: Session, visitor_id: str, movie_ids: Iterable[int] | None = None
) -> int:
    """Forget the visitor's ratings of ``movie_ids`` (all of them if None); returns count."""
    stmt = delete(Rating).where(Rating.visitor_id == visitor_id)
    if movie_ids is not None:
        ids = [int(m) for m in movie_ids]
        if not ids:
            return 0
        stmt = stmt.where(Rating.movie_id.in_(ids))
    return _rowcount(session.execute(stmt))


def visitor_rating_rows(session: Session, visitor_id: str) -> list[tuple[int, float, datetime]]:
    """``(movieId, stars, rated_at)`` of the visitor's ratings, most recently rated first."""
    rows = session.execute(
        select(Rating.movie_id, Rating.stars, Rating.rated_at)
        .where(Rating.visitor_id == visitor_id)
        .order_by(Rating.rated_at.desc(), Rating.movie_id)
    )
    return [(int(m), float(s), t) for m, s, t in rows]


def set_training_opt_out(session: Session, visitor_id: str, opted_out: bool) -> None:
    """Record whether the visitor's ratings may train the site's next model (False: they
    may, the default); creates the visitor if new."""
    touch_visitor(session, visitor_id)
    session.execute(
        update(Visitor).where(Visitor.id == visitor_id).values(opted_out=bool(opted_out))
    )


def training_opt_out(session: Session, visitor_id: str) -> bool:
    """True if the visitor asked that their ratings not train the next model (an unknown
    visitor has not)."""
    stmt = select(Visitor.opted_out).where(Visitor.id == visitor_id)
    return bool(session.scalar(stmt))


def forget_visitor(session: Session, visitor_id: str) -> int:
    """Delete the visitor with their ratings, watchlist, hidden movies, import report and
    shown picks; returns rows deleted."""
    deleted = 0
    for table, column in (
        (ShownRecommendation, ShownRecommendation.visitor_id),
        (HiddenMovie, HiddenMovie.visitor_id),
        (WatchlistEntry, WatchlistEntry.visitor_id),
        (ImportReport, ImportReport.visitor_id),
        (Rating, Rating.visitor_id),
        (Visitor, Visitor.id),
    ):  # children first, not relying on the foreign keys' cascade
        deleted += _rowcount(session.execute(delete(table).where(column == visitor_id)))
    return deleted


def hide_movie(
    session: Session, visitor_id: str, movie_id: int, when: datetime | None = None
) -> None:
    """Remember that the visitor is not interested in ``movie_id`` (idempotent)."""
    when = when or utcnow()
    touch_visitor(session, visitor_id, when)
    exists = session.get(HiddenMovie, (visitor_id, int(movie_id)))
    if exists is None:
        session.add(HiddenMovie(visitor_id=visitor_id, movie_id=int(movie_id), hidden_at=when))
        session.flush()


def add_to_watchlist(
    session: Session, visitor_id: str, movie_ids: Iterable[int], when: datetime | None = None
) -> int:
    """Put ``movie_ids`` on the visitor's watchlist (those already there keep their date);
    returns how many were new. One ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and
    PostgreSQL, so two tabs adding the same movie at once store it once."""
    when = when or utcnow()
    touch_visitor(session, visitor_id, when)
    ids = sorted({int(m) for m in movie_ids})
    if not ids:
        return 0
    rows = [{"visitor_id": visitor_id, "movie_id": m, "added_at": when} for m in ids]
    upsert = _dialect_insert(session)
    if upsert is None:
        have = watchlist_ids(session, visitor_id)
        fresh = [WatchlistEntry(**row) for row in rows if row["movie_id"] not in have]
        session.add_all(fresh)
        session.flush()
        return len(fresh)
    table = WatchlistEntry.__table__
    added = 0
    for start in range(0, len(rows), 1000):  # SQLite takes at most 32,766 parameters
        stmt = (
            upsert(table)
            .values(rows[start : start + 1000])
            .on_conflict_do_nothing(index_elements=[table.c.visitor_id, table.c.movie_id])
            .returning(table.c.movie_id)
        )  # RETURNING: executemany's rowcount is not reliable on every driver
        added += len(session.connection().execute(stmt).all())
    return added


def remove_from_watchlist(session: Session, visitor_id: str, movie_ids: Iterable[int]) -> int:
    """Take ``movie_ids`` off the visitor's watchlist; returns how many were on it."""
    ids = [int(m) for m in movie_ids]
    if not ids:
        return 0
    stmt = delete(WatchlistEntry).where(
        WatchlistEntry.visitor_id == visitor_id, WatchlistEntry.movie_id.in_(ids)
    )
    return _rowcount(session.execute(stmt))


def watchlist_rows(session: Session, visitor_id: str) -> list[tuple[int, datetime]]:
    """``(movieId, added_at)`` of the visitor's watchlist, most recently added first."""
    rows = session.execute(
        select(WatchlistEntry.movie_id, WatchlistEntry.added_at)
        .where(WatchlistEntry.visitor_id == visitor_id)
        .order_by(WatchlistEntry.added_at.desc(), WatchlistEntry.movie_id)
    )
    return [(int(m), t) for m, t in rows]


def watchlist_ids(session: Session, visitor_id: str) -> set[int]:
    """Movie ids on the visitor's watchlist."""
    rows = session.execute(
        select(WatchlistEntry.movie_id).where(WatchlistEntry.visitor_id == visitor_id)
    )
    return {int(m) for (m,) in rows}


class WatchSettings(NamedTuple):
    """A visitor's "where to watch" choices: country (None: not chosen) and services
    (TMDB provider ids; None: never set)."""

    region: str | None
    services: list[int] | None


def watch_settings(session: Session, visitor_id: str) -> WatchSettings:
    """The visitor's region and services (both None for an unknown visitor)."""
    row = session.execute(
        select(Visitor.region, Visitor.services).where(Visitor.id == visitor_id)
    ).first()
    if row is None:
        return WatchSettings(None, None)
    services = row.services if isinstance(row.services, list) else None
    return WatchSettings(row.region, [int(s) for s in services] if services is not None else None)


def save_watch_settings(
    session: Session, visitor_id: str, region: str | None, services: Sequence[int] | None
) -> None:
    """Store the visitor's region (two letters, or None for "from my browser") and
    services (provider ids)."""
    touch_visitor(session, visitor_id)
    values = {
        "region": region.upper() if region else None,
        "services": sorted({int(s) for s in services}) if services is not None else None,
    }
    session.execute(
        update(Visitor)
        .where(Visitor.id == visitor_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def save_import_report(
    session: Session, visitor_id: str, payload: dict[str, Any], when: datetime | None = None
) -> None:
    """Keep ``payload`` as the visitor's latest import report (replacing an older one)."""
    when = when or utcnow()
    touch_visitor(session, visitor_id, when)
    session.execute(delete(ImportReport).where(ImportReport.visitor_id == visitor_id))
    session.add(ImportReport(visitor_id=visitor_id, payload=payload, created_at=when))
    session.flush()


def import_report(session: Session, visitor_id: str) -> dict[str, Any] | None:
    """The visitor's latest import report, or None."""
    report = session.get(ImportReport, visitor_id)
    return None if report is None else dict(report.payload)


def unhide_movie(session: Session, visitor_id: str, movie_id: int) -> bool:
    """Undo "not interested" in ``movie_id``; True if it was hidden."""
    touch_visitor(session, visitor_id)
    gone = session.execute(
        delete(HiddenMovie).where(
            HiddenMovie.visitor_id == visitor_id, HiddenMovie.movie_id == int(movie_id)
        )
    )
    return bool(_rowcount(gone))


def hidden_rows(session: Session, visitor_id: str) -> list[tuple[int, datetime]]:
    """``(movieId, hidden_at)`` of the visitor's hidden movies, most recently hidden first."""
    rows = session.execute(
        select(HiddenMovie.movie_id, HiddenMovie.hidden_at)
        .where(HiddenMovie.visitor_id == visitor_id)
        .order_by(HiddenMovie.hidden_at.desc(), HiddenMovie.movie_id)
    )
    return [(int(m), when) for m, when in rows]


def hidden_movies(session: Session, visitor_id: str) -> set[int]:
    """Movie ids the visitor marked "not interested"."""
    rows = session.execute(select(HiddenMovie.movie_id).where(HiddenMovie.visitor_id == visitor_id))
    return {int(m) for (m,) in rows}


def visitor_ratings(session: Session, visitor_id: str) -> dict[int, float]:
    """``{movieId: stars}`` of the visitor, most recently rated first."""
    rows = session.execute(
        select(Rating.movie_id, Rating.stars)
        .where(Rating.visitor_id == visitor_id)
        .order_by(Rating.rated_at.desc(), Rating.movie_id)
    )
    return {int(m): float(s) for m, s in rows}


def record_shown(
    session: Session,
    visitor_id: str,
    picks: Sequence[tuple[int, float]],
    model: str,
    year: str,
    keep: int,
    when: datetime | None = None,
) -> None:
    """Remember the ranked ``(movieId, predicted_stars)`` picks shown to a visitor,
    keeping only the visitor's ``keep`` most recent rows (older ones are deleted).

    The trim is one ``DELETE`` after the ``INSERT``: two requests of the same visitor
    racing may each keep up to ``keep`` rows of their own view, and the next record
    trims the excess, so a visitor never holds much more than ``keep`` rows.
    """
    if keep <= 0 or not picks:
        return
    when = when or utcnow()
    rows = [
        {
            "visitor_id": visitor_id,
            "movie_id": int(movie_id),
            "rank": rank,
            "predicted_stars": float(stars),
            "model": model,
            "year": year,
            "shown_at": when,
        }
        for rank, (movie_id, stars) in enumerate(picks[:keep], start=1)
    ]
    session.connection().execute(insert(_table(ShownRecommendation)), rows)
    trim_shown(session, visitor_id, keep)


def trim_shown(session: Session, visitor_id: str, keep: int) -> int:
    """Delete all but the visitor's ``keep`` newest shown rows; returns how many went.

    One range delete below the id of the visitor's ``keep + 1``-th newest row (none when
    they hold ``keep`` or fewer: the threshold is then NULL): a quarter of the CPU of the
    ``NOT IN (newest keep)`` it replaced, which built the kept set on every page view.
    """
    table = _table(ShownRecommendation)
    # a derived table: MySQL and others refuse a subquery on the table being deleted from
    threshold = (
        select(table.c.id)
        .where(table.c.visitor_id == visitor_id)
        .order_by(table.c.id.desc())
        .offset(keep)
        .limit(1)
        .subquery()
    )
    stmt = delete(table).where(
        table.c.visitor_id == visitor_id,
        table.c.id <= select(threshold.c.id).scalar_subquery(),
    )
    return session.connection().execute(stmt).rowcount or 0


def shown_to(session: Session, visitor_id: str | None) -> list[ShownRecommendation]:
    """Picks shown to the visitor, oldest first."""
    column = ShownRecommendation.visitor_id
    where = column.is_(None) if visitor_id is None else column == visitor_id
    stmt = select(ShownRecommendation).where(where)
    return list(
        session.scalars(stmt.order_by(ShownRecommendation.shown_at, ShownRecommendation.id))
    )


class CachedAnswer(NamedTuple):
    payload: dict[str, Any]
    expires_at: datetime


def cache_get_many(session: Session, tmdb_ids: Iterable[int]) -> dict[int, CachedAnswer]:
    """Cached TMDB answers for these ids (fresh or not)."""
    ids = sorted({int(i) for i in tmdb_ids})
    if not ids:
        return {}
    table = TmdbCacheEntry
    rows = session.execute(
        select(table.tmdb_id, table.payload, table.expires_at).where(table.tmdb_id.in_(ids))
    )
    return {int(row.tmdb_id): CachedAnswer(dict(row.payload), row.expires_at) for row in rows}


def cache_put(
    session: Session,
    tmdb_id: int,
    payload: dict[str, Any],
    expires_at: datetime,
    when: datetime | None = None,
) -> None:
    """Store (or replace) TMDB's answer for one movie."""
    values = {
        "tmdb_id": int(tmdb_id),
        "payload": payload,
        "fetched_at": when or utcnow(),
        "expires_at": expires_at,
    }
    upsert = _dialect_insert(session)
    if upsert is None:
        session.merge(TmdbCacheEntry(**values))
        session.flush()
        return
    stmt = upsert(TmdbCacheEntry).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[TmdbCacheEntry.tmdb_id],
        set_={k: stmt.excluded[k] for k in ("payload", "fetched_at", "expires_at")},
    )
    session.execute(stmt)


def _rowcount(result: Any) -> int:
    """Rows an UPDATE or DELETE touched (its result is a ``CursorResult``; 0 if unknown)."""
    return int(result.rowcount or 0)


def _table(entity: Any) -> Table:
    """The ``Table`` of an ORM class (``__table__`` is typed as any ``FromClause``)."""
    table: Table = entity.__table__
    return table


def _dialect_insert(session: Session) -> Any:
    """The dialect's ``insert`` with ``on_conflict_do_update``, or None (generic path)."""
    name = session.get_bind().dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]  # the same API
    else:
        return None
    return insert
