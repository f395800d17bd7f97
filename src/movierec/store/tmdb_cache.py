"""The TMDB cache (:class:`movierec.tmdb.Cache`) kept in the database.

While the database is unavailable the cache is empty and forgets what it is given
(TMDB answers are fetched again), reporting to the store's outage log instead of
logging a traceback per look-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from movierec.store import repo
from movierec.store.db import Store
from movierec.store.outage import is_unavailable
from movierec.tmdb import CacheEntry


class SqlTmdbCache:
    """TMDB answers in the ``tmdb_cache`` table; each call uses a short session of its own."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get_many(self, tmdb_ids: Iterable[int]) -> dict[int, CacheEntry]:
        try:
            with self.store.session() as session:
                rows = repo.cache_get_many(session, tmdb_ids)
                return {i: CacheEntry(r.payload, r.expires_at) for i, r in rows.items()}
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self.store.outage.failed(exc, request=False)
            return {}

    def put(self, tmdb_id: int, payload: dict[str, Any], expires_at: datetime) -> None:
        try:
            with self.store.session() as session:
                repo.cache_put(session, tmdb_id, payload, expires_at)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self.store.outage.failed(exc, request=False)
