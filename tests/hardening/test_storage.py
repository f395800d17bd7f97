"""Bounded storage: anonymous API traffic stores nothing, visitors are capped, and the
retention rule runs on start (issue 7, "Bounded storage")."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from movierec.store import Rating, ShownRecommendation, Visitor, repo
from movierec.store.schema import utcnow

LIKES = {356: 4.5, 318: 5.0, 296: 4.0, 593: 4.0, 2571: 5.0, 260: 3.5}
#: the form without its CSRF token (tested elsewhere) and without rate limits
PLAIN = {"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False}


def submit(client, stars: dict[int, float], year: str = "any"):
    form = {f"rating-{m}": str(s) for m, s in stars.items()}
    return client.post("/recommendations", data={**form, "year": year}, follow_redirects=True)


def row_counts(app) -> dict[str, int]:
    store = app.extensions["movierec"].store
    with store.session() as db:
        return {
            t.__tablename__: db.scalar(select(func.count()).select_from(t))
            for t in (Visitor, Rating, ShownRecommendation)
        }


def test_row_counts_do_not_grow_with_500_anonymous_api_calls(make_app):
    app = make_app(RATELIMIT_ENABLED=False)
    client = app.test_client()
    before = row_counts(app)
    for i in range(500):
        body = {"ratings": {"356": 4.5, str([1, 2, 3, 6, 10][i % 5]): 3.0}, "n": 1 + i % 20}
        response = client.post("/api/v1/recommendations", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
    assert row_counts(app) == before == {"visitors": 0, "ratings": 0, "recommendations_shown": 0}


def test_picks_shown_to_a_cookie_visitor_are_capped(make_app):
    settings = make_app(**PLAIN).config["SETTINGS"]
    capped = make_app(**PLAIN, SETTINGS=replace(settings, shown_per_visitor=12))
    client = capped.test_client()
    assert submit(client, LIKES).status_code == 200  # 5 picks shown
    for year in ("old", "new", "any", "old", "new"):  # 25 more
        assert client.get(f"/recommendations?year={year}").status_code == 200
    with client.session_transaction() as session:
        visitor = session["visitor"]
    with capped.extensions["movierec"].store.session() as db:
        shown = repo.shown_to(db, visitor)
    assert len(shown) == 12
    assert {s.year for s in shown[-5:]} == {"new"}  # the newest kept, the oldest dropped


def test_retention_runs_on_start_with_one_log_line(make_app, caplog):
    app = make_app(RATELIMIT_ENABLED=False)
    store = app.extensions["movierec"].store
    long_ago = utcnow() - timedelta(days=app.config["SETTINGS"].retention_days + 1)
    with store.session() as db:
        repo.upsert_ratings(db, "idle", {1: 4.0, 2: 3.0}, when=long_ago)
        repo.record_shown(db, "idle", [(3, 4.0)], "svd", "any", keep=10, when=long_ago)
        repo.upsert_ratings(db, "active", {1: 5.0})
    with caplog.at_level(logging.INFO, logger="movierec.web"):
        restarted = make_app(RATELIMIT_ENABLED=False)  # same database file
    assert row_counts(restarted) == {"visitors": 1, "ratings": 1, "recommendations_shown": 0}
    lines = [r.getMessage() for r in caplog.records if "retention" in r.getMessage()]
    assert lines == ["retention: forgot 1 idle visitors, 2 ratings, 1 shown picks"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="movierec.web"):
        make_app(RATELIMIT_ENABLED=False)  # nothing left to forget: silent
    assert not [r for r in caplog.records if "retention" in r.getMessage()]
