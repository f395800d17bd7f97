"""The watchlist and "where to watch" settings in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from movierec.store import Store, repo
from movierec.store.retention import prune
from movierec.store.schema import WatchlistEntry

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_add_is_idempotent_and_keeps_the_first_date(store: Store):
    with store.session() as db:
        assert repo.add_to_watchlist(db, "v", [260, 1], when=NOW) == 2
        assert repo.add_to_watchlist(db, "v", [1, 2571], when=NOW + timedelta(days=1)) == 1
        assert repo.add_to_watchlist(db, "w", [1], when=NOW) == 1
    with store.session() as db:
        rows = repo.watchlist_rows(db, "v")
        assert [m for m, _ in rows] == [2571, 1, 260]  # newest first, then by id
        assert dict(rows)[1] == NOW
        assert repo.watchlist_ids(db, "w") == {1}


def test_remove_only_touches_that_visitor(store: Store):
    with store.session() as db:
        repo.add_to_watchlist(db, "v", [1, 2, 3])
        repo.add_to_watchlist(db, "w", [1])
        assert repo.remove_from_watchlist(db, "v", [1, 99]) == 1
        assert repo.remove_from_watchlist(db, "v", []) == 0
    with store.session() as db:
        assert repo.watchlist_ids(db, "v") == {2, 3}
        assert repo.watchlist_ids(db, "w") == {1}


def test_watch_settings_round_trip(store: Store):
    with store.session() as db:
        assert repo.watch_settings(db, "nobody") == (None, None)
        repo.save_watch_settings(db, "v", "gb", [337, 8, 8])
    with store.session() as db:
        assert repo.watch_settings(db, "v") == ("GB", [8, 337])
        repo.save_watch_settings(db, "v", None, [])
    with store.session() as db:
        assert repo.watch_settings(db, "v") == (None, [])


def test_start_over_and_retention_forget_the_watchlist(store: Store):
    with store.session() as db:
        repo.touch_visitor(db, "idle", when=NOW - timedelta(days=400))
        repo.add_to_watchlist(db, "idle", [1, 2], when=NOW - timedelta(days=400))
        repo.touch_visitor(db, "idle", when=NOW - timedelta(days=400))
        repo.add_to_watchlist(db, "gone", [1], when=NOW)
        repo.add_to_watchlist(db, "kept", [5], when=NOW)
    with store.session() as db:
        assert repo.forget_visitor(db, "gone") == 2  # the entry and the visitor
    removed = prune(store, retention_days=365, shown_per_visitor=10, now=NOW)
    assert removed.visitors == 1
    with store.session() as db:
        owners = db.execute(select(WatchlistEntry.visitor_id, func.count()).group_by(
            WatchlistEntry.visitor_id)).all()  # fmt: skip
        assert dict(owners) == {"kept": 1}


def test_the_foreign_key_cascades_a_deleted_visitors_watchlist(store: Store):
    """Deleting only the visitor row (as another tool might) takes the watchlist with it:
    ``ON DELETE CASCADE`` on both backends (SQLite with ``PRAGMA foreign_keys = ON``)."""
    from sqlalchemy import delete

    from movierec.store.schema import Visitor

    with store.session() as db:
        repo.add_to_watchlist(db, "v", [1, 2])
        repo.add_to_watchlist(db, "w", [3])
    with store.session() as db:
        db.execute(delete(Visitor).where(Visitor.id == "v"))
    with store.session() as db:
        assert repo.watchlist_ids(db, "v") == set()
        assert repo.watchlist_ids(db, "w") == {3}
