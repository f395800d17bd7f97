"""The store on SQLite and PostgreSQL: schema, upserts, reads, the TMDB cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect

from movierec.store import Rating, SqlTmdbCache, Store, Visitor, normalise_url, repo


def test_schema_has_the_four_tables_and_is_created_idempotently(store: Store):
    store.create_schema()  # second time: no error
    tables = set(inspect(store.engine).get_table_names())
    assert {"visitors", "ratings", "recommendations_shown", "tmdb_cache"} <= tables


def test_ratings_are_upserted_and_timestamped(store: Store):
    t1 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    t2 = t1 + timedelta(minutes=5)
    with store.session() as db:
        repo.upsert_ratings(db, "v1", {1: 4.0, 2: 3.5}, when=t1)
    with store.session() as db:
        repo.upsert_ratings(db, "v1", {2: 5.0, 3: 1.0}, when=t2)
    with store.session() as db:
        assert repo.visitor_ratings(db, "v1") == {2: 5.0, 3: 1.0, 1: 4.0}
        assert list(repo.visitor_ratings(db, "v1"))[-1] == 1  # oldest last
        visitor = db.get(Visitor, "v1")
        assert visitor.created_at == t1 and visitor.last_seen == t2
        rows = db.query(Rating).filter_by(visitor_id="v1").order_by("movie_id").all()
        assert [(r.movie_id, r.rated_at) for r in rows] == [(1, t1), (2, t2), (3, t2)]


def test_visitors_are_kept_apart_and_ratings_can_be_forgotten(store: Store):
    with store.session() as db:
        repo.upsert_ratings(db, "a", {1: 4.0, 2: 2.0, 3: 3.0})
        repo.upsert_ratings(db, "b", {1: 1.0})
    with store.session() as db:
        assert repo.delete_ratings(db, "a", [2]) == 1
        assert repo.delete_ratings(db, "a", []) == 0
    with store.session() as db:
        assert repo.visitor_ratings(db, "a") == {1: 4.0, 3: 3.0}
        repo.delete_ratings(db, "a")
    with store.session() as db:
        assert repo.visitor_ratings(db, "a") == {}
        assert repo.visitor_ratings(db, "b") == {1: 1.0}
        assert repo.visitor_ratings(db, "nobody") == {}


def test_shown_recommendations_are_recorded_in_order(store: Store):
    with store.session() as db:
        repo.touch_visitor(db, "v")
        repo.record_shown(db, "v", [(10, 4.5), (20, 4.25), (30, 4.0)], "svd", "old", keep=10)
    with store.session() as db:
        shown = repo.shown_to(db, "v")
        assert [(s.rank, s.movie_id, s.predicted_stars) for s in shown] == [
            (1, 10, 4.5),
            (2, 20, 4.25),
            (3, 30, 4.0),
        ]
        assert {(s.model, s.year) for s in shown} == {("svd", "old")}
        assert repo.shown_to(db, None) == []


def test_tmdb_cache_round_trip_and_replace(store: Store):
    cache = SqlTmdbCache(store)
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    cache.put(603, {"poster_path": "/a.jpg", "overview": "Neo.", "found": True}, expires)
    cache.put(603, {"poster_path": "/b.jpg", "overview": "Neo!", "found": True}, expires)
    cache.put(11, {"found": False}, expires - timedelta(days=1))
    got = cache.get_many([603, 11, 5])
    assert set(got) == {603, 11}
    assert got[603].payload["poster_path"] == "/b.jpg"
    assert got[603].expires_at == expires and got[603].expires_at.tzinfo is not None
    assert got[11].payload == {"found": False}
    assert cache.get_many([]) == {}


def test_normalise_url():
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db"
    assert normalise_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_sqlite_file_is_made_under_a_missing_directory(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'a' / 'b' / 'm.db'}")
    store.create_schema()
    assert (tmp_path / "a" / "b" / "m.db").exists()
    store.dispose()
