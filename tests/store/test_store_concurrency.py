"""Concurrent submissions lose nothing, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from movierec.store import SqlTmdbCache, Store, Visitor, repo

THREADS = 8
ROUNDS = 15


def run_threads(work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_concurrent_submissions_of_one_visitor(store: Store):
    """Tabs of one visitor: every movie rated lands; shared movies keep one row."""

    def work(i: int) -> None:
        for r in range(ROUNDS):
            with store.session() as db:
                # a movie of its own, and one every thread rates (same key, racing)
                repo.upsert_ratings(db, "shared", {1000 * (i + 1) + r: 4.0, 1: 0.5 + (r % 10) / 2})
                repo.visitor_ratings(db, "shared")
                repo.record_shown(db, "shared", [(7, 4.0)], "svd", "any", keep=THREADS * ROUNDS)

    run_threads(work)
    with store.session() as db:
        ratings = repo.visitor_ratings(db, "shared")
        assert len(ratings) == THREADS * ROUNDS + 1
        assert all(
            ratings[1000 * (i + 1) + r] == 4.0 for i in range(THREADS) for r in range(ROUNDS)
        )
        assert len(repo.shown_to(db, "shared")) == THREADS * ROUNDS


def test_concurrent_new_visitors(store: Store):
    """Many first submissions at once: every visitor and rating is stored once."""

    def work(i: int) -> None:
        for r in range(ROUNDS):
            with store.session() as db:
                repo.upsert_ratings(db, f"v{r}", {i: 3.0, 500 + i: 2.0})

    run_threads(work)
    with store.session() as db:
        for r in range(ROUNDS):
            expected = {i: 3.0 for i in range(THREADS)} | {500 + i: 2.0 for i in range(THREADS)}
            assert repo.visitor_ratings(db, f"v{r}") == expected
        assert db.query(Visitor).count() == ROUNDS


def test_concurrent_tmdb_cache_writes(store: Store):
    cache = SqlTmdbCache(store)
    expires = datetime(2031, 1, 1, tzinfo=UTC)

    def work(i: int) -> None:
        for r in range(ROUNDS):
            cache.put(r, {"overview": f"from {i}", "found": True}, expires)

    run_threads(work)
    got = cache.get_many(range(ROUNDS))
    assert sorted(got) == list(range(ROUNDS))
    assert all(e.payload["overview"].startswith("from ") for e in got.values())
