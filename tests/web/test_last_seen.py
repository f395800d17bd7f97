"""A returning visitor who only browses stays remembered; their visits are written to
the store at most once per ``LAST_SEEN_EVERY``, and never for a cookie the store does not
know (the retention rule: movierec.store.retention)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from flask import Flask
from sqlalchemy import event, update
from webhelpers import submit

from movierec.store import Visitor
from movierec.store.retention import prune
from movierec.store.schema import utcnow
from movierec.web.visitor import LAST_SEEN_EVERY

LIKES = {356: 4.5, 318: 5.0, 2571: 4.0}
RETENTION_DAYS = 365
#: pages a returning visitor reads without rating anything
BROWSING = ["/recommendations", "/movies/2571", "/ratings", "/search?q=matrix", "/"]


def visitor_of(client) -> str:  # type: ignore[no-untyped-def]
    with client.session_transaction() as session:
        return session["visitor"]


def last_seen(app: Flask, visitor: str):  # type: ignore[no-untyped-def]
    with app.extensions["movierec"].store.session() as db:
        row = db.get(Visitor, visitor)
        return None if row is None else row.last_seen


def set_last_seen(app: Flask, visitor: str, ago: timedelta) -> None:
    """Pretend the visitor was last seen ``ago`` before now."""
    with app.extensions["movierec"].store.session() as db:
        db.execute(update(Visitor).where(Visitor.id == visitor).values(last_seen=utcnow() - ago))


@contextmanager
def visitor_updates(app: Flask) -> Iterator[list[str]]:
    """The ``UPDATE visitors`` statements the app sends while the block runs."""
    engine = app.extensions["movierec"].store.engine
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE VISITORS"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def browse(client) -> None:  # type: ignore[no-untyped-def]
    for path in BROWSING:
        assert client.get(path).status_code == 200, path


def test_a_visitor_who_only_browses_is_kept_and_one_who_left_is_forgotten(app: Flask):
    reader, gone = app.test_client(), app.test_client()
    submit(reader, LIKES)
    submit(gone, LIKES)
    for client in (reader, gone):  # both rated 300 days ago
        set_last_seen(app, visitor_of(client), timedelta(days=300))
    browse(reader)  # the reader comes back and only reads
    store = app.extensions["movierec"].store
    later = utcnow() + timedelta(days=RETENTION_DAYS - 300 + 10)  # gone: idle 375 days
    removed = prune(store, RETENTION_DAYS, shown_per_visitor=200, now=later)
    assert removed.visitors == 1 and removed.ratings == len(LIKES)
    assert last_seen(app, visitor_of(gone)) is None
    assert last_seen(app, visitor_of(reader)) is not None
    assert "You rated 3 movies." in reader.get("/ratings").get_data(as_text=True)


def test_browsing_writes_last_seen_once_per_interval(app: Flask):
    client = app.test_client()
    submit(client, LIKES)
    visitor = visitor_of(client)
    set_last_seen(app, visitor, LAST_SEEN_EVERY + timedelta(minutes=5))
    before = utcnow()
    with visitor_updates(app) as updates:
        browse(client)
        browse(client)
    assert len(updates) == 1  # ten page views, one write
    assert last_seen(app, visitor) >= before
    set_last_seen(app, visitor, LAST_SEEN_EVERY - timedelta(minutes=5))
    with visitor_updates(app) as updates:
        browse(client)
    assert updates == []  # seen within the interval: nothing written


def test_no_write_without_a_known_visitor(app: Flask):
    stranger = app.test_client()  # no cookie at all
    forged = app.test_client()
    with forged.session_transaction() as session:
        session["visitor"] = "not-a-visitor-of-this-store"  # e.g. forgotten by "start over"
    rated = app.test_client()
    submit(rated, LIKES)
    set_last_seen(app, visitor_of(rated), timedelta(days=2))
    with visitor_updates(app) as updates:
        browse(stranger)
        browse(forged)
        # the cookie-less JSON API and the drawn posters are not visits of the page visitor
        assert rated.get("/api/v1/onboarding").status_code == 200
        assert rated.get("/poster/2571.svg").status_code == 200
    assert updates == []
    assert last_seen(app, "not-a-visitor-of-this-store") is None
