"""What the catalogue pages need beyond :class:`~movierec.data.Catalog`, built once per app.

:func:`get_catalogue` gives the app's :class:`CatalogueExtras`: the title search index
(:class:`movierec.search.TitleIndex`), the import matcher (:class:`movierec.imports.Matcher`),
IMDb ids from links.csv, tag counts from tags.csv, and similar movies per model
(:class:`movierec.similar.SimilarMovies`, which asks the model only through its public
``item_similarity``). Everything is built on first use (about 1 s for ml-latest-small) and
then only read; when the catalogue changes (movies added, see
:meth:`~movierec.web.services.Recommenders.refresh_catalog`) the next request builds it
again for the new catalogue (keeping links.csv's IMDb ids and the tag counts), while
requests already running keep the old one.

:func:`coverage` says where the catalogue ends ("Movies up to 2018, plus 12 added"), for
the footer and for searches that find nothing recent.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from flask import current_app

from movierec.data import Catalog, dataset_dir
from movierec.data.added import added_path, imdb_numbers, read_added
from movierec.errors import DataError
from movierec.imports import Matcher
from movierec.recommend import RecommendService
from movierec.search import TitleIndex
from movierec.similar import SimilarMovies

log = logging.getLogger(__name__)
EXTENSION = "movierec.catalogue"
TOP_TAGS = 12
#: a search with no hit from the catalogue's last this many years says where it ends
RECENT_YEARS = 3


class CatalogueExtras:
    """Search index, import matcher, IMDb ids and tag counts of one catalogue."""

    def __init__(
        self,
        catalog: Catalog,
        folder: Path | None,
        added_file: Path | None = None,
        previous: CatalogueExtras | None = None,
    ) -> None:
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
        #: movieId -> IMDb number, links.csv's (kept from ``previous``) and the added ones
        self._links: dict[int, int] = (
            previous._links if previous is not None else imdb_numbers(folder)
        )
        self.imdb_of: dict[int, int] = {**self._links, **_added_imdb(added_file, catalog)}
        self.matcher = Matcher(rows, {imdb: movie for movie, imdb in self.imdb_of.items()})
        self.tags: dict[int, list[tuple[str, int]]] = (
            previous.tags if previous is not None else _tag_counts(folder)
        )
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
    """The current app's extras for its current catalogue, built on first use and again
    when the catalogue changed (once, even with concurrent requests: while one request
    builds them for a changed catalogue, others keep the previous ones)."""
    app = current_app
    services = app.extensions["movierec"]
    catalog = services.recommenders.catalog
    extras: CatalogueExtras | None = app.extensions.get(EXTENSION)
    if extras is not None and extras.catalog is catalog:
        return extras
    lock = app.extensions.setdefault(EXTENSION + ".lock", threading.Lock())
    if extras is not None and not lock.acquire(blocking=False):
        return extras  # being built for the new catalogue by another request
    if extras is None:
        lock.acquire()
    try:
        found = app.extensions.get(EXTENSION)
        if found is None or found.catalog is not catalog:
            settings = services.settings
            found = CatalogueExtras(
                catalog,
                dataset_dir(settings.dataset, settings.home),
                added_path(settings.dataset, settings.home),
                previous=found,
            )
            app.extensions[EXTENSION] = found
        return found
    finally:
        lock.release()


def notice_added_movies() -> None:
    """Before each request: reload the catalogue if movies were added (a ``stat`` at most
    every few seconds, see :meth:`~movierec.web.services.Recommenders.refresh_catalog`)."""
    current_app.extensions["movierec"].recommenders.refresh_catalog()


@dataclass(frozen=True)
class Coverage:
    """Where the catalogue ends: the data set's last release year and how many movies
    were added to it."""

    last_year: int | None
    added: int

    @property
    def text(self) -> str:
        """``"Movies up to 2018, plus 12 added"`` (``"Movies up to 2018"`` if none)."""
        head = f"Movies up to {self.last_year}" if self.last_year else "Movies of MovieLens"
        return f"{head}, plus {self.added:,} added" if self.added else head

    @property
    def note(self) -> str:
        """What a search that found nothing recent says."""
        added = f", plus {self.added:,} movie{'s' if self.added != 1 else ''} added here"
        return (
            f"The catalogue ends in {self.last_year}{added if self.added else ''}: "
            "a newer film may not be in it yet."
        )

    def misses_recent(self, years: Iterable[int | None]) -> bool:
        """Whether hits of these ``years`` include none from the catalogue's last
        ``RECENT_YEARS`` years or later (so the visitor should know where it ends)."""
        if self.last_year is None:
            return False
        recent = self.last_year - RECENT_YEARS + 1
        return not any(y is not None and y >= recent for y in years)

    def to_dict(self) -> dict[str, Any]:
        return {"last_year": self.last_year, "added": self.added}


def coverage(catalog: Catalog) -> Coverage:
    return Coverage(catalog.last_year, catalog.n_added)


def catalogue_context() -> dict[str, Any]:
    """For every template: ``coverage`` when the catalogue is loaded (else None: an error
    page never loads it)."""
    services = current_app.extensions.get("movierec")
    catalog = services.recommenders.loaded_catalog if services is not None else None
    return {"coverage": coverage(catalog) if catalog is not None else None}


def _added_imdb(path: Path | None, catalog: Catalog) -> dict[int, int]:
    """``movieId -> IMDb number`` of the added movies in ``catalog`` (from their file)."""
    if path is None or not catalog.added_ids:
        return {}
    try:
        added = read_added(path)
    except DataError as exc:  # the catalogue was read; the links are not worth a failure
        log.warning("IMDb links of added movies not read: %s", exc)
        return {}
    return {m.movie_id: m.imdb_id for m in added if m.imdb_id and m.movie_id in catalog}


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
