"""Bounded storage on SQLite and PostgreSQL: the shown cap and the retention rule."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from movierec.errors import StoreError
from movierec.store import Rating, ShownRecommendation, Store, Visitor, repo
from movierec.store.retention import PruneResult, prune
from movierec.store.schema import HiddenMovie, ImportReport, WatchlistEntry

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def counts(store: Store) -> tuple[int, int, int]:
    with store.session() as db:
        return tuple(  # type: ignore[return-value]
            db.scalar(select(func.count()).select_from(t))
            for t in (Visitor, Rating, ShownRecommendation)
        )


def test_shown_picks_are_capped_per_visitor_oldest_dropped(store: Store):
    with store.session() as db:
        repo.touch_visitor(db, "v")
        repo.touch_visitor(db, "w")
        repo.record_shown(db, "w", [(1, 4.0)], "svd", "any", keep=3)
        for batch in range(5):  # 10 picks shown, 2 at a time
            picks = [(100 + 2 * batch, 4.0), (101 + 2 * batch, 3.5)]
            repo.record_shown(db, "v", picks, "svd", "any", keep=4)
    with store.session() as db:
        assert [s.movie_id for s in repo.shown_to(db, "v")] == [106, 107, 108, 109]
        assert [s.movie_id for s in repo.shown_to(db, "w")] == [1]  # others untouched
        repo.record_shown(db, "v", [(1, 4.0)] * 9, "svd", "any", keep=4)
        assert len(repo.shown_to(db, "v")) == 4
        repo.record_shown(db, "w", [(2, 4.0)], "svd", "any", keep=0)  # keep 0: nothing
        assert [s.movie_id for s in repo.shown_to(db, "w")] == [1]


def test_cap_holds_when_one_visitor_records_from_many_threads(store: Store):
    threads, rounds, keep = 6, 10, 5
    with store.session() as db:
        repo.touch_visitor(db, "tabs")
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(i: int) -> None:
        try:
            barrier.wait()
            for r in range(rounds):
                with store.session() as db:
                    repo.record_shown(db, "tabs", [(i * 100 + r, 4.0)], "svd", "any", keep=keep)
        except BaseException as exc:  # reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    with store.session() as db:
        # each racing writer trims to its own view; the excess is bounded by the racers
        assert keep <= len(repo.shown_to(db, "tabs")) <= keep + threads
        repo.record_shown(db, "tabs", [(1, 4.0)], "svd", "any", keep=keep)
    with store.session() as db:
        assert len(repo.shown_to(db, "tabs")) == keep  # the next record trims the excess


def seed(store: Store) -> None:
    """Active "new" (seen a day ago), idle "old" (400 days), and anonymous shown rows."""
    with store.session() as db:
        repo.upsert_ratings(db, "old", {1: 4.0, 2: 3.0}, when=NOW - timedelta(days=400))
        repo.record_shown(
            db, "old", [(5, 4.0), (6, 3.0)], "svd", "any", keep=10, when=NOW - timedelta(days=400)
        )
        repo.upsert_ratings(db, "new", {1: 5.0}, when=NOW - timedelta(days=1))
        picks = [(10 + i, 4.0) for i in range(8)]
        repo.record_shown(db, "new", picks, "svd", "any", keep=10, when=NOW - timedelta(days=1))
        # rows of no visitor, as API calls stored them before they stopped
        rows = [
            {"visitor_id": None, "movie_id": i, "rank": 1, "predicted_stars": 4.0,
             "model": "svd", "year": "any", "shown_at": NOW}
            for i in range(3)
        ]  # fmt: skip
        db.execute(insert(ShownRecommendation), rows)


def test_prune_forgets_idle_visitors_anonymous_rows_and_rows_over_the_cap(store: Store):
    seed(store)
    assert counts(store) == (2, 3, 13)
    planned = prune(store, retention_days=365, shown_per_visitor=5, now=NOW, dry_run=True)
    assert planned == PruneResult(
        visitors=1, ratings=2, watchlist=0, hidden=0, import_reports=0, shown=2 + 3 + 3
    )
    assert counts(store) == (2, 3, 13)  # a dry run removes nothing
    done = prune(store, retention_days=365, shown_per_visitor=5, now=NOW)
    assert done == planned and done.total == 11
    assert counts(store) == (1, 1, 5)
    with store.session() as db:
        assert db.get(Visitor, "old") is None
        assert repo.visitor_ratings(db, "new") == {1: 5.0}
        assert [s.movie_id for s in repo.shown_to(db, "new")] == [13, 14, 15, 16, 17]
    again = prune(store, retention_days=365, shown_per_visitor=5, now=NOW)
    assert again == PruneResult(0, 0, 0, 0, 0, 0) and again.total == 0


def test_prune_keeps_everyone_seen_within_the_retention_period(store: Store):
    seed(store)
    result = prune(store, retention_days=500, shown_per_visitor=200, now=NOW)
    assert result == PruneResult(0, 0, 0, 0, 0, shown=3)  # only the anonymous rows
    assert counts(store) == (2, 3, 10)


def table_counts(store: Store) -> dict[str, int]:
    tables = (Visitor, Rating, WatchlistEntry, HiddenMovie, ImportReport, ShownRecommendation)
    with store.session() as db:
        return {
            t.__tablename__: db.scalar(select(func.count()).select_from(t)) or 0 for t in tables
        }


def test_prune_counts_the_idle_visitors_watchlist_hidden_movies_and_import_report(store: Store):
    long_ago = NOW - timedelta(days=400)
    with store.session() as db:
        for who, when in (("idle", long_ago), ("active", NOW - timedelta(days=1))):
            repo.upsert_ratings(db, who, {1: 4.0}, when=when)
            repo.add_to_watchlist(db, who, [7, 8, 9], when=when)
            repo.hide_movie(db, who, 3, when=when)
            repo.hide_movie(db, who, 4, when=when)
            repo.save_import_report(db, who, {"matched": 1}, when=when)
            repo.touch_visitor(db, who, when=when)
    before = table_counts(store)
    planned = prune(store, retention_days=365, shown_per_visitor=10, now=NOW, dry_run=True)
    expected = PruneResult(visitors=1, ratings=1, watchlist=3, hidden=2, import_reports=1, shown=0)
    assert planned == expected and planned.total == 8
    assert table_counts(store) == before  # a dry run removes nothing
    assert prune(store, retention_days=365, shown_per_visitor=10, now=NOW) == expected
    after = table_counts(store)
    assert {name: before[name] - after[name] for name in before} == {
        "visitors": 1, "ratings": 1, "watchlist": 3, "hidden_movies": 2,
        "import_reports": 1, "recommendations_shown": 0,
    }  # fmt: skip


HOUR = timedelta(hours=1)


def visit(db: Session, visitor_id: str, when: datetime) -> bool:
    """A page view as web.visitor.note_visit stores it: ``last_seen`` moved if older
    than an hour; True if it was written."""
    return repo.move_last_seen(db, visitor_id, when, stale=when - HOUR)


def test_a_visit_moves_last_seen_at_most_once_per_interval(store: Store):
    with store.session() as db:
        repo.touch_visitor(db, "v", when=NOW - timedelta(days=300))
    with store.session() as db:
        assert visit(db, "v", when=NOW)  # stale: written
        assert not visit(db, "v", when=NOW + timedelta(minutes=59))
        assert visit(db, "v", when=NOW + timedelta(minutes=61))
        assert not visit(db, "nobody", when=NOW)  # unknown: not created
    with store.session() as db:
        visitor = db.get(Visitor, "v")
        assert visitor is not None and visitor.last_seen == NOW + timedelta(minutes=61)
        assert visitor.created_at == NOW - timedelta(days=300)
        assert db.get(Visitor, "nobody") is None


def test_a_visitor_who_only_reads_is_kept_and_one_who_stopped_is_forgotten(store: Store):
    rated = NOW - timedelta(days=300)
    with store.session() as db:
        repo.upsert_ratings(db, "reader", {1: 4.0}, when=rated)
        repo.upsert_ratings(db, "gone", {2: 3.0}, when=rated)
    with store.session() as db:
        visit(db, "reader", when=NOW)  # came back to read, rated nothing
    removed = prune(store, retention_days=365, shown_per_visitor=200, now=rated + timedelta(400))
    assert removed == PruneResult(1, 1, 0, 0, 0, 0)
    with store.session() as db:
        assert repo.visitor_ratings(db, "reader") == {1: 4.0}
        assert db.get(Visitor, "gone") is None


def test_prune_on_an_unreachable_database_is_one_store_error_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = Store(f"postgresql://postgres:pw@127.0.0.1:{port}/movierec")
    with pytest.raises(StoreError) as caught:
        prune(store, retention_days=365, shown_per_visitor=200)
    message = str(caught.value)
    assert message.startswith("cannot use the database at postgresql")
    assert "\n" not in message and ":pw@" not in message
