"""Visitors' ratings as training data: what ``movierec train --with-visitors`` reads.

One query over ``ratings`` joined to ``visitors``, leaving out visitors who opted out
(``visitors.opted_out``). Visitors forgotten by retention or "Start over" have no rows
left, so nothing here needs to know about them. The result is plain numpy arrays; what
counts and how (catalogue movies only, a minimum of ratings, bounded influence) is
:mod:`movierec.visitor_ratings`'s business, which never touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from movierec.data.arrays import Float32Array, Int64Array, StrArray
from movierec.errors import StoreError
from movierec.store.db import Store, store_message
from movierec.store.schema import Rating, Visitor


@dataclass(frozen=True)
class StoredRatings:
    """Every stored rating of the visitors who did not opt out.

    visitor_ids: ``(v,)`` str, the visitors in arrival order (``created_at``, then id).
    visitor: ``(n,)`` int64 index into ``visitor_ids`` of each rating's visitor.
    movie_ids: ``(n,)`` int64 raw movie ids (any id a visitor could rate).
    stars: ``(n,)`` float32, 0.5-5.
    opted_out: visitors left out because they opted out (with or without ratings).
    """

    visitor_ids: StrArray
    visitor: Int64Array
    movie_ids: Int64Array
    stars: Float32Array
    opted_out: int = 0

    @property
    def n_visitors(self) -> int:
        return int(self.visitor_ids.size)


def read_visitor_ratings(store: Store) -> StoredRatings:
    """The ratings of every visitor who has not opted out (see the module doc).

    Raises :class:`~movierec.errors.StoreError` naming the database when it cannot be read.
    """
    rows_query = (
        select(Visitor.id, Rating.movie_id, Rating.stars)
        .join(Rating, Rating.visitor_id == Visitor.id)
        .where(Visitor.opted_out.is_(False))
        .order_by(Visitor.created_at, Visitor.id, Rating.movie_id)
    )
    opted_query = select(func.count()).select_from(Visitor).where(Visitor.opted_out.is_(True))
    try:
        with store.session() as session:
            rows = session.execute(rows_query).all()
            opted_out = int(session.execute(opted_query).scalar_one())
    except SQLAlchemyError as exc:
        raise StoreError(store_message(store.safe_url, exc)) from None
    keys = [row[0] for row in rows]
    # rows come ordered by visitor, so first appearances are in arrival order
    visitor_ids, first, visitor = np.unique(
        np.asarray(keys, dtype=object).astype(str), return_index=True, return_inverse=True
    )
    order = np.argsort(first, kind="stable")  # unique sorts by id; restore arrival order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return StoredRatings(
        visitor_ids=visitor_ids[order],
        visitor=rank[visitor].astype(np.int64).reshape(-1),
        movie_ids=np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows)),
        stars=np.fromiter((row[2] for row in rows), dtype=np.float32, count=len(rows)),
        opted_out=opted_out,
    )
