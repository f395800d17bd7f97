"""What the catalogue pages need beyond :class:`~movierec.data.Catalog`, built once per app.

:func:`get_catalogue` gives the app's :class:`CatalogueExtras`: the title search index
(:class:`movierec.search.TitleIndex`), the import matcher (:class:`movierec.imports.Matcher`),
IMDb ids from links.csv, tag counts from tags.csv, and similar movies per model. Everything
is built on first use (about 1 s for ml-latest-small) and then only read.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from flask import current_app

from movierec.data import Catalog, dataset_dir
from movierec.imports import Matcher
from movierec.recommend import RecommendService
from movierec.search import TitleIndex

log = logging.getLogger(__name__)
EXTENSION = "movierec.catalogue"
TOP_TAGS = 12
#: fewest ratings a movie needs to be offered as similar (fewer: noisy neighbours)
SIMILAR_MIN_RATINGS = 5


class CatalogueExtras:
    """Search index, import matcher, IMDb ids and tag counts of one catalogue."""

    def __init__(self, catalog: Catalog, folder: Path | None) -> None:
        frame = catalog.frame
        rows = list(
            zip(
                frame.index.tolist(),
                frame["title"].tolist(),
                frame["n_ratings"].tolist(),
                strict=True,
            )
        )
        self.catalog = catalog
        self.index = TitleIndex(rows)
        self.imdb_of: dict[int, int] = _imdb_ids(folder)  # movieId -> IMDb number
        self.matcher = Matcher(rows, {imdb: movie for movie, imdb in self.imdb_of.items()})
        self.tags: dict[int, list[tuple[str, int]]] = _tag_counts(folder)
        self._similar: dict[str, SimilarMovies] = {}
        self._lock = threading.Lock()

    def imdb_url(self, movie_id: int) -> str | None:
        imdb = self.imdb_of.get(movie_id)
        return f"https://www.imdb.com/title/tt{imdb:07d}/" if imdb else None

    def similar_for(self, name: str, service: RecommendService) -> SimilarMovies:
        """The neighbour finder of model ``name`` (built once per model)."""
        found = self._similar.get(name)
        if found is None:
            with self._lock:
                found = self._similar.setdefault(name, SimilarMovies(service))
        return found


class SimilarMovies:
    """Movies like a given one, from one fitted model.

    EASE: the movie's row of the item-item weight matrix ``B`` (which movies its presence
    raises most); other models, or movies EASE does not cover: cosine of the model's item
    vectors (``item_vectors()``); movies the model does not know: shared genres, then
    rating count.
    """

    def __init__(self, service: RecommendService) -> None:
        model = service.model
        self.catalog = service.catalog
        self.model = model
        self.movie_ids = np.asarray(model.movie_ids, dtype=np.int64)  # (n_items,)
        counts = self.catalog.frame["n_ratings"].reindex(self.movie_ids).fillna(0)
        self.allowed = counts.to_numpy(np.int64) >= SIMILAR_MIN_RATINGS  # (n_items,)
        vectors = model.item_vectors()
        self.unit: np.ndarray | None = None
        if vectors is not None:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            self.unit = (vectors / np.maximum(norms, 1e-9)).astype(np.float32)
        kept = getattr(model, "kept", None)
        item_item = getattr(model, "item_item", None)
        self.kept: np.ndarray | None = None
        if kept is not None and item_item is not None and np.size(kept):
            self.kept = np.asarray(kept, dtype=np.int64)
            self.item_item = np.asarray(item_item)
            self.kept_row = {int(item): row for row, item in enumerate(self.kept.tolist())}

    def similar(self, movie_id: int, n: int, exclude: Collection[int] = ()) -> list[int]:
        """Up to ``n`` movieIds most like ``movie_id``, best first; never itself or ``exclude``."""
        if self.model.has_movie(movie_id):
            item = int(self.model.items_of([movie_id])[0])
            banned = [item, *(int(i) for i in self.model.items_of(self._known(exclude)))]
            if self.kept is not None and item in self.kept_row:
                weights = self.item_item[self.kept_row[item]].astype(np.float64)
                scores = np.full(self.movie_ids.size, -np.inf)
                scores[self.kept] = np.where(weights > 0, weights, -np.inf)
                picks = self._top(scores, banned, n)
                if len(picks) >= n or self.unit is None:
                    return picks
            if self.unit is not None:
                return self._top((self.unit @ self.unit[item]).astype(np.float64), banned, n)
        return self._by_genre(movie_id, n, exclude)

    def _known(self, movie_ids: Collection[int]) -> list[int]:
        return [m for m in movie_ids if self.model.has_movie(m)]

    def _top(self, scores: np.ndarray, banned: list[int], n: int) -> list[int]:
        """The ``n`` best of ``scores`` (n_items,) among allowed items not in ``banned``."""
        scores = np.where(self.allowed, scores, -np.inf)
        scores[banned] = -np.inf
        k = min(n, scores.size)
        top = np.argpartition(-scores, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(self.movie_ids[i]) for i in top if np.isfinite(scores[i])]

    def _by_genre(self, movie_id: int, n: int, exclude: Collection[int]) -> list[int]:
        frame = self.catalog.frame
        genres = set(frame.at[movie_id, "genres"]) - {"(no genres listed)"}
        if not genres:
            return []
        overlap = frame["genres"].map(lambda g: len(genres & set(g)) / len(genres | set(g)))
        score = overlap + np.log1p(frame["n_ratings"]) / 100.0
        keep = (overlap > 0) & (frame.index != movie_id) & ~frame.index.isin(list(exclude))
        score = score[keep]
        return [int(m) for m in score.sort_values(ascending=False, kind="stable").index[:n]]


def predicted_stars(
    service: RecommendService, ratings: Mapping[int, float], movie_id: int
) -> float | None:
    """Stars the model predicts for ``movie_id`` from the visitor's ``ratings`` (folded in)."""
    model = service.model
    usable = {m: s for m, s in ratings.items() if model.has_movie(m) and m != movie_id}
    if not usable or not model.has_movie(movie_id):
        return None
    state = model.fold_in(list(usable), list(usable.values()))
    stars = float(model.score(state)[int(model.items_of([movie_id])[0])])
    return min(max(stars, 0.5), 5.0) if math.isfinite(stars) else None


def get_catalogue() -> CatalogueExtras:
    """The current app's extras, built on first use (once, even with concurrent requests)."""
    app = current_app
    extras = app.extensions.get(EXTENSION)
    if extras is None:
        lock = app.extensions.setdefault(EXTENSION + ".lock", threading.Lock())
        with lock:
            extras = app.extensions.get(EXTENSION)
            if extras is None:
                services = app.extensions["movierec"]
                settings = services.settings
                folder = dataset_dir(settings.dataset, settings.home)
                extras = CatalogueExtras(services.recommenders.catalog, folder)
                app.extensions[EXTENSION] = extras
    return extras


def _imdb_ids(folder: Path | None) -> dict[int, int]:
    """``movieId -> IMDb number`` from links.csv (empty when the set has none)."""
    path = folder / "links.csv" if folder else None
    if path is None or not path.is_file():
        return {}
    links = pd.read_csv(path, dtype={"movieId": "int64", "imdbId": "string"})
    links = links.dropna(subset=["imdbId"])
    numbers = pd.to_numeric(links["imdbId"].str.strip(), errors="coerce")
    good = numbers.notna() & (numbers > 0)
    return dict(
        zip(links["movieId"][good].tolist(), numbers[good].astype("int64").tolist(), strict=True)
    )


def _tag_counts(folder: Path | None) -> dict[int, list[tuple[str, int]]]:
    """``movieId -> [(tag, how many taggings)]``, most used first (case-insensitive)."""
    path = folder / "tags.csv" if folder else None
    if path is None or not path.is_file():
        return {}
    tags = pd.read_csv(path, dtype={"tag": "string"}, usecols=["movieId", "tag"])
    out: dict[int, list[tuple[str, int]]] = {}
    for movie_id, group in tags.dropna().groupby("movieId"):
        counts: Counter[str] = Counter()
        spelling: dict[str, str] = {}
        for tag in group["tag"].str.strip():
            if tag:
                key = tag.casefold()
                counts[key] += 1
                spelling.setdefault(key, tag)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TAGS]
        out[int(movie_id)] = [(spelling[k], c) for k, c in ranked]
    return out
