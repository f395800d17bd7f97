"""Bounded storage: anonymous API traffic stores nothing, visitors are capped, and the
retention rule runs on start (issue 7, "Bounded storage"); what one visitor may store and
how many visitors one address may start (issue 19, "Anonymous storage abuse")."""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from test_rate_limit import CLOSED_PORT_URL, REDIS_URL, redis_prefix  # noqa: F401 (a fixture)

from movierec.config import load_settings
from movierec.errors import InvalidInput
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
    assert lines == [
        "retention: forgot 1 idle visitors, 2 ratings, 0 watchlist entries, 0 hidden movies, "
        "0 import reports, 1 shown picks"
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="movierec.web"):
        make_app(RATELIMIT_ENABLED=False)  # nothing left to forget: silent
    assert not [r for r in caplog.records if "retention" in r.getMessage()]


# -- bounds on what a visitor may store (issue 19, "Anonymous storage abuse") -------------

IMPORT = "/ratings/import"
#: a 10,000-character title: the 5.1 MB report of issue 19 was rows like these
LONG_TITLE = "\u00e9" * 10_000


def catalogue_ids(app) -> list[int]:
    return [int(m) for m in app.extensions["movierec"].recommenders.catalog.frame.index]


def movielens_file(rated: list[int], unmatched: int = 0, title: str = "x") -> bytes:
    """A movierec/MovieLens CSV rating ``rated`` (newest first: row i is i days old) plus
    ``unmatched`` rows of movies the catalogue lacks, titled ``title``."""
    day = 86_400
    rows = [f"{m},Movie {m},4.0,{1_700_000_000 - i * day}" for i, m in enumerate(rated)]
    rows += [f"{9_000_000 + i},{title},3.0," for i in range(unmatched)]
    return ("movieId,title,rating,timestamp\n" + "\n".join(rows) + "\n").encode()


def import_file(client, data: bytes, address: str = "127.0.0.1"):
    """GET the form for its CSRF token, then POST the file (as the attacker did)."""
    environ = {"REMOTE_ADDR": address}
    html = client.get(IMPORT, environ_base=environ).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    return client.post(
        IMPORT,
        data={"csrf_token": token, "format": "movielens", "file": (io.BytesIO(data), "r.csv")},
        content_type="multipart/form-data",
        environ_base=environ,
    )


def database_bytes(app) -> int:
    """Bytes the SQLite database takes (its pages, the WAL's included)."""
    with app.extensions["movierec"].store.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        size = connection.exec_driver_sql("PRAGMA page_size").scalar()
    return int(pages) * int(size)


def stored_report(app, visitor: str) -> dict:
    with app.extensions["movierec"].store.session() as db:
        return repo.import_report(db, visitor)


def visitor_of(client) -> str:
    with client.session_transaction() as session:
        return session["visitor"]


def test_fifteen_cookieless_imports_from_one_address_grow_the_database_a_little(make_app):
    """The reported attack, 15 imports each from a fresh client (no cookie), of a 4.9 MB
    file that rates every catalogue movie and names 460 missing ones with 5,000-character
    titles. Before the bounds it grew the database by 223.5 MB (15 x 9,742 ratings and a
    14 MB report each); now 9.9 MB."""
    app = make_app()
    settings = app.config["SETTINGS"]
    attack = movielens_file(catalogue_ids(app), unmatched=460, title=LONG_TITLE[:5000])
    assert len(attack) > 4_500_000
    before = database_bytes(app)
    for _ in range(15):
        response = import_file(app.test_client(), attack)
        assert response.status_code == 303
    grown = database_bytes(app) - before
    with app.extensions["movierec"].store.session() as db:
        counts = [repo.rating_count(db, v.id) for v in db.query(Visitor)]
    assert counts == [settings.max_ratings_per_visitor] * 15
    # per visitor: ratings at ~105 bytes each (SQLite row and key), a report <= 128 KB
    print(f"15 cookie-less imports grew the database by {grown / 1e6:.1f} MB")
    assert grown < 15 * (settings.max_ratings_per_visitor * 120 + settings.max_import_report)


def test_a_2000_row_import_of_a_normal_visitor_is_stored_whole(make_app):
    app = make_app()
    client = app.test_client()
    ids = catalogue_ids(app)[:2000]
    response = import_file(client, movielens_file(ids, unmatched=40))
    assert response.status_code == 303
    html = client.get(response.location).get_data(as_text=True)
    assert "Imported 2000 of 2040 rows" in html and "not stored" not in html
    assert "40 not found here" in html
    with app.extensions["movierec"].store.session() as db:
        assert repo.rating_count(db, visitor_of(client)) == 2000


def test_an_import_past_the_ratings_cap_keeps_the_newest_and_says_so(make_app):
    settings = make_app().config["SETTINGS"]
    app = make_app(SETTINGS=replace(settings, max_ratings_per_visitor=50))
    client = app.test_client()
    ids = catalogue_ids(app)
    assert import_file(client, movielens_file(ids[:30])).status_code == 303
    response = import_file(client, movielens_file(ids[100:180]))  # 80 more, 20 fit
    html = client.get(response.location).get_data(as_text=True)
    assert "60 more new ratings were not stored" in html
    assert "at most 50 ratings, so the most recently rated were kept" in html
    with app.extensions["movierec"].store.session() as db:
        kept = repo.visitor_ratings(db, visitor_of(client))
    assert set(kept) == set(ids[:30]) | set(ids[100:120])  # nothing lost, the newest added


def test_rating_past_the_cap_is_a_400_saying_the_limit_and_loses_nothing(make_app):
    settings = make_app().config["SETTINGS"]
    app = make_app(SETTINGS=replace(settings, max_ratings_per_visitor=3), WTF_CSRF_ENABLED=False)
    client = app.test_client()
    ids = catalogue_ids(app)
    assert submit(client, {m: 4.0 for m in ids[:3]}).status_code == 200
    response = client.post(f"/movies/{ids[5]}/rate", data={"stars": "3.5"})
    assert response.status_code == 400
    assert "at most 3 ratings; remove some on your ratings page" in response.get_data(as_text=True)
    response = submit(client, {ids[0]: 2.0, ids[6]: 5.0})
    assert response.status_code == 400
    assert client.post(f"/movies/{ids[0]}/rate", data={"stars": "1.5"}).status_code == 303
    swap = submit(client, {ids[1]: 0, ids[7]: 4.5})  # remove one, add one: fits
    assert swap.status_code == 200
    with app.extensions["movierec"].store.session() as db:
        kept = repo.visitor_ratings(db, visitor_of(client))
    assert kept == {ids[0]: 1.5, ids[2]: 4.0, ids[7]: 4.5}


def test_an_import_report_is_bounded_in_bytes(make_app):
    app = make_app()
    client = app.test_client()
    data = movielens_file([1, 2], unmatched=240, title=LONG_TITLE)  # 4.8 MB of titles
    response = import_file(client, data)
    assert response.status_code == 303
    report = stored_report(app, visitor_of(client))
    size = len(json.dumps(report))
    assert size <= app.config["SETTINGS"].max_import_report + 1000, size
    assert report["unmatched_total"] == 240 and 0 < len(report["unmatched"]) < 240
    assert all(
        len(u["title"]) == 200 and u["title"].endswith("\u2026") for u in report["unmatched"]
    )
    html = client.get(response.location).get_data(as_text=True)
    assert "240 not found here" in html
    assert f"the first {len(report['unmatched'])} are listed" in html


def test_new_visitors_per_address_are_capped_with_a_clear_429(make_app):
    settings = make_app().config["SETTINGS"]
    app = make_app(SETTINGS=replace(settings, new_visitors_per_hour=3))
    data = movielens_file(catalogue_ids(app)[:5])
    regular = app.test_client()
    assert import_file(regular, data).status_code == 303  # 1 of 3
    assert [import_file(app.test_client(), data).status_code for _ in range(2)] == [303, 303]
    before = row_counts(app)
    refused = import_file(app.test_client(), data)
    assert refused.status_code == 429
    html = refused.get_data(as_text=True)
    assert "at most 3 new visitors an hour from one network address" in html
    assert "nothing was saved" in html
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert row_counts(app) == before  # nothing stored for the refused one
    # a visitor the address started before is not a new one; another address is not capped
    assert import_file(regular, movielens_file(catalogue_ids(app)[5:9])).status_code == 303
    assert import_file(app.test_client(), data, address="203.0.113.7").status_code == 303
    assert import_file(app.test_client(), data, address="2001:db8::1").status_code == 303
    assert row_counts(app)["visitors"] == before["visitors"] + 2


def test_an_ipv6_client_is_counted_by_its_64():
    from movierec.web.limits import address_block

    assert address_block("2001:db8:1:2:aaaa::1") == address_block("2001:db8:1:2:bbbb::9")
    assert address_block("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert address_block("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_block("192.0.2.1") == "192.0.2.1"


@pytest.mark.parametrize(
    "name",
    [
        "MOVIEREC_MAX_RATINGS_PER_VISITOR",
        "MOVIEREC_MAX_IMPORT_REPORT",
        "MOVIEREC_NEW_VISITORS_PER_HOUR",
    ],
)
def test_a_bad_storage_bound_is_one_line_naming_it(name):
    with pytest.raises(InvalidInput, match=f"^{name}='lots' is not a whole number of at least"):
        load_settings({name: "lots"})
    assert load_settings({name: "7000"}) is not None


def test_two_workers_on_one_redis_share_the_new_visitor_count(make_app, redis_prefix):  # noqa: F811
    _server, prefix = redis_prefix
    settings = make_app().config["SETTINGS"]
    config = {
        "SETTINGS": replace(settings, new_visitors_per_hour=2),
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": prefix,
    }
    first, second = make_app(**config), make_app(**config)  # as two server processes
    data = movielens_file(catalogue_ids(first)[:3])
    statuses = [import_file(app.test_client(), data).status_code for app in (first, second)]
    assert statuses == [303, 303]
    assert import_file(first.test_client(), data).status_code == 429


def test_new_visitors_are_still_counted_while_redis_is_down(make_app):
    settings = make_app().config["SETTINGS"]
    app = make_app(
        SETTINGS=replace(settings, new_visitors_per_hour=2),
        RATELIMIT_STORAGE_URI=CLOSED_PORT_URL,
    )
    data = movielens_file(catalogue_ids(app)[:3])
    statuses = [import_file(app.test_client(), data).status_code for _ in range(3)]
    assert statuses == [303, 303, 429]  # served, and counted in memory meanwhile
