"""The retention rule: what the store forgets, applied on start and by ``store prune``.

- visitors not seen for ``retention_days`` days, with their ratings, watchlist, hidden
  movies, import report and shown picks;
- shown picks of no visitor (recorded by API calls before they stopped being stored);
- shown picks beyond the newest ``shown_per_visitor`` of each visitor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, delete, func, or_, select, true
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from movierec.errors import StoreError
from movierec.store.db import Store, store_message
from movierec.store.schema import (
    HiddenMovie,
    ImportReport,
    Rating,
    ShownRecommendation,
    Visitor,
    WatchlistEntry,
    utcnow,
)


class PruneResult(NamedTuple):
    """Rows removed (or, in a dry run, that would be removed) per table."""

    visitors: int
    ratings: int
    watchlist: int
    hidden: int
    import_reports: int
    shown: int

    @property
    def total(self) -> int:
        """Rows of every table together."""
        return sum(self)


def prune(
    store: Store,
    retention_days: int,
    shown_per_visitor: int,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Apply the retention rule in one transaction; ``dry_run`` only counts.

    Raises :class:`StoreError` (one line naming the URL) if the database fails.
    """
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    idle = select(Visitor.id).where(Visitor.last_seen < cutoff)
    doomed = {
        Visitor: Visitor.last_seen < cutoff,
        Rating: Rating.visitor_id.in_(idle),
        HiddenMovie: HiddenMovie.visitor_id.in_(idle),
        WatchlistEntry: WatchlistEntry.visitor_id.in_(idle),
        ImportReport: ImportReport.visitor_id.in_(idle),
        ShownRecommendation: _doomed_shown(idle, shown_per_visitor),
    }
    counts: dict[type, int] = {}
    try:
        with store.session() as session:
            # children first: the foreign keys cascade, but a backend without them must
            # not be left with orphans (and the counts must include them)
            children = (ShownRecommendation, HiddenMovie, WatchlistEntry, ImportReport, Rating)
            for table in (*children, Visitor):
                if dry_run:
                    counts[table] = _count(session, table, doomed[table])
                else:
                    stmt = delete(table).where(doomed[table])
                    counts[table] = int(getattr(session.execute(stmt), "rowcount", 0) or 0)
    except SQLAlchemyError as exc:
        raise StoreError(store_message(store.safe_url, exc)) from None
    return PruneResult(
        visitors=counts[Visitor],
        ratings=counts[Rating],
        watchlist=counts[WatchlistEntry],
        hidden=counts[HiddenMovie],
        import_reports=counts[ImportReport],
        shown=counts[ShownRecommendation],
    )


def _doomed_shown(idle: Select[Any], keep: int) -> ColumnElement[bool]:
    """Shown rows of nobody, of idle visitors, or beyond each visitor's newest ``keep``."""
    shown = ShownRecommendation
    if keep <= 0:
        return true()
    ranked = select(
        shown.id,
        func.row_number()
        .over(partition_by=shown.visitor_id, order_by=shown.id.desc())
        .label("newest_first"),
    ).subquery()
    over_cap = select(ranked.c.id).where(ranked.c.newest_first > keep)
    return or_(shown.visitor_id.is_(None), shown.visitor_id.in_(idle), shown.id.in_(over_cap))


def _count(session: Session, table: type, where: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count()).select_from(table).where(where)) or 0)
