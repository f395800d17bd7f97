"""Persistence: visitors, their ratings, recommendations shown and the TMDB cache.

``Store(url)`` wraps the engine and sessions (SQLite under ``MOVIEREC_HOME`` by default,
PostgreSQL or any SQLAlchemy URL otherwise); :mod:`movierec.store.repo` holds one
function per action, each taking a ``Session``.
"""

from movierec.store import repo
from movierec.store.db import Store, normalise_url
from movierec.store.schema import Base, Rating, ShownRecommendation, TmdbCacheEntry, Visitor
from movierec.store.tmdb_cache import SqlTmdbCache

__all__ = [
    "Base",
    "Rating",
    "ShownRecommendation",
    "SqlTmdbCache",
    "Store",
    "TmdbCacheEntry",
    "Visitor",
    "normalise_url",
    "repo",
]
