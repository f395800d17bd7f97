"""The anonymous visitor: a random id in Flask's signed session cookie.

One rule for every page: the cookie's id counts only while the store knows that visitor,
so an id forgotten by "start over" or the retention rule is never revived (a copied old
cookie is worth nothing); a new id is made only when something is to be stored.

A known visitor's visits keep them remembered: :func:`note_visit` runs before every page
that shows or changes their data and moves their ``last_seen`` forward (at most once per
``LAST_SEEN_EVERY``), so the retention rule forgets only visitors who stopped coming,
not those who only read their picks, movie pages or ratings.

Each request reads a visitor's row at most once and their ratings, hidden movies and
watchlist at most once (one ``UNION ALL``), keeping both on :data:`flask.g`: a picks page
used to read the same rows seven times over. A write in the request forgets the lists
(:func:`forget_lists`), so a later read in that request sees it.
"""

from __future__ import annotations

import secrets
from contextlib import closing, suppress
from datetime import timedelta
from typing import Literal, overload

from flask import g, request, session
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from movierec.store import repo
from movierec.store.outage import is_unavailable
from movierec.store.schema import utcnow
from movierec.web.limits import count_new_visitor
from movierec.web.services import get_services

#: how old a visitor's ``last_seen`` may get before a visit moves it: the retention rule
#: counts in days (365 by default), so an hour's lag costs nothing, and a visitor reading
#: a hundred pages in an hour costs one UPDATE instead of a hundred
LAST_SEEN_EVERY = timedelta(hours=1)
#: blueprints whose pages read or change the cookie visitor's stored data (not the
#: cookie-less JSON API, the drawn posters or static files)
VISITOR_BLUEPRINTS = frozenset({"pages", "movies", "ratings", "watchlist"})


@overload
def visitor_id(db: Session, create: Literal[True]) -> str: ...
@overload
def visitor_id(db: Session, create: bool = False) -> str | None: ...
def visitor_id(db: Session, create: bool = False) -> str | None:
    """The cookie's visitor if the store knows them, else (if ``create``) a new id,
    set in the cookie (which then lasts ``PERMANENT_SESSION_LIFETIME``).

    A new id counts against the client address's new visitors this hour
    (``MOVIEREC_NEW_VISITORS_PER_HOUR``); past it, :class:`TooManyNewVisitors` (a 429)
    before anything is stored."""
    visitor = session.get("visitor")
    if not isinstance(visitor, str) or known_row(db, visitor) is None:
        visitor = None
    if visitor is None and create:
        count_new_visitor()
        visitor = secrets.token_urlsafe(18)
        session["visitor"] = visitor
        session.permanent = True
    return visitor


def known_row(db: Session, visitor: str) -> repo.VisitorRow | None:
    """The stored row of ``visitor`` (None if unknown), read once per request."""
    cached: tuple[str, repo.VisitorRow | None] | None = g.get("visitor_row")
    if cached is None or cached[0] != visitor:
        cached = (visitor, repo.visitor_row(db, visitor))
        g.visitor_row = cached
    return cached[1]


def visitor_lists(db: Session) -> repo.VisitorLists:
    """The cookie visitor's ratings, hidden movies and watchlist (all empty without a
    known visitor), read once per request; callers must not change what they get."""
    visitor = session.get("visitor")
    cached: tuple[str, repo.VisitorLists] | None = g.get("visitor_lists")
    if not isinstance(visitor, str):
        return repo.VisitorLists({}, set(), set())
    if cached is None or cached[0] != visitor:
        cached = (visitor, repo.visitor_lists(db, visitor))
        g.visitor_lists = cached
    return cached[1]


def forget_lists() -> None:
    """After a write to the visitor's ratings, hidden movies or watchlist."""
    g.pop("visitor_lists", None)


def note_visit() -> None:
    """Before-request hook: the cookie's known visitor was seen now (see the module).

    Nothing for other blueprints, without a visitor id in the cookie, or for an id the
    store does not know (it is not created). The row read here serves the whole request
    (:func:`known_row`). The write has its own short session; a database outage skips it
    (counted in the outage log) and the page answers as it can.
    """
    if request.blueprint not in VISITOR_BLUEPRINTS:
        return
    visitor = session.get("visitor")
    if not isinstance(visitor, str):
        return
    store = get_services().store
    try:
        row = known_row(store.scoped, visitor)  # the request's session: the view reads it too
        when = utcnow()
        stale = when - LAST_SEEN_EVERY
        if row is not None and row.last_seen < stale:
            # a write of its own, so that a failed one leaves the request's session usable
            with closing(store.sessionmaker()) as db:
                if repo.move_last_seen(db, visitor, when, stale):
                    db.commit()
                # else closed without a commit: a read that works while writes fail (SQLite
                # locked) must not tell the outage log that the database is back
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        g.pop("visitor_row", None)
        with suppress(SQLAlchemyError):  # the view's own read meets the outage and says so
            store.scoped.rollback()
        store.outage.failed(exc, request=False)
