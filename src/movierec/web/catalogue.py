"""What the catalogue pages need beyond :class:`~movierec.data.Catalog`, built once per app.

:func:`get_catalogue` gives the app's :class:`CatalogueExtras`: the title search index
(:class:`movierec.search.TitleIndex`), the import matcher (:class:`movierec.imports.Matcher`),
IMDb ids from links.csv, tag counts from tags.csv, and similar movies per model
(:class:`movierec.similar.SimilarMovies`, which asks the model only through its public
``item_similarity``). Everything is built on first use (about 1 s for ml-latest-small) and
then only read.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from flask import current_app

from movierec.data import Catalog, dataset_dir
from movierec.imports import Matcher
from movierec.recommend import RecommendService
from movierec.search import TitleIndex
from movierec.similar import SimilarMovies

log = logging.getLogger(__name__)
EXTENSION = "movierec.catalogue"
TOP_TAGS = 12


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
        #: model name -> (the service it was built from, its neighbour finder)
        self._similar: dict[str, tuple[RecommendService, SimilarMovies]] = {}
        self._lock = threading.Lock()

    def imdb_url(self, movie_id: int) -> str | None:
        imdb = self.imdb_of.get(movie_id)
        return f"https://www.imdb.com/title/tt{imdb:07d}/" if imdb else None

    def similar_for(self, name: str, service: RecommendService) -> SimilarMovies:
        """The neighbour finder of model ``name`` (built once per model, and again when a
        newer file of it is swapped in: ``service`` is then another object)."""
        found = self._similar.get(name)
        if found is None or found[0] is not service:
            with self._lock:
                found = self._similar.get(name)
                if found is None or found[0] is not service:
                    found = (service, SimilarMovies(service.model, service.catalog))
                    self._similar[name] = found
        return found[1]


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
