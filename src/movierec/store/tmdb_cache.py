"""The TMDB cache (:class:`movierec.tmdb.Cache`) kept in the database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from movierec.store import repo
from movierec.store.db import Store
from movierec.tmdb import CacheEntry


class SqlTmdbCache:
    """TMDB answers in the ``tmdb_cache`` table; each call uses a short session of its own."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get_many(self, tmdb_ids: Iterable[int]) -> dict[int, CacheEntry]:
        with self.store.session() as session:
            rows = repo.cache_get_many(session, tmdb_ids)
            return {i: CacheEntry(r.payload, r.expires_at) for i, r in rows.items()}

    def put(self, tmdb_id: int, payload: dict[str, Any], expires_at: datetime) -> None:
        with self.store.session() as session:
            repo.cache_put(session, tmdb_id, payload, expires_at)
