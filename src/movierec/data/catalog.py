"""``Catalog``: what we know of each movie, independent of any model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pandas as pd

from movierec.data.titles import alternative_titles, display_title
from movierec.errors import InvalidInput

CATALOG_COLUMNS = ["title", "year", "genres", "tmdb_id", "n_ratings", "mean_rating"]


@dataclass(frozen=True)
class Movie:
    """One catalogue entry as plain Python values (safe to hand to templates/JSON)."""

    movie_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    tmdb_id: int | None
    n_ratings: int
    mean_rating: float | None

    @cached_property  # a picks answer shows ~90 titles, its Movies cached by the service
    def display_title(self) -> str:
        """The title as people say it: ``"The Matrix"`` for ``"Matrix, The (1999)"``,
        without the alternative titles MovieLens adds in parentheses."""
        return display_title(self.title)

    @property
    def alternative_titles(self) -> list[str]:
        """Other titles MovieLens gives in parentheses (``[]`` for most movies)."""
        return alternative_titles(self.title)

    def to_dict(self) -> dict[str, Any]:
        return {
            "movieId": self.movie_id,
            "title": self.title,
            "display_title": self.display_title,
            "year": self.year,
            "genres": list(self.genres),
            "tmdbId": self.tmdb_id,
            "n_ratings": self.n_ratings,
            "mean_rating": self.mean_rating,
        }


class Catalog:
    """Movies indexed by raw ``movieId``.

    frame: DataFrame indexed by ``movieId`` (int64) with columns
    ``title`` (str), ``year`` (nullable Int64), ``genres`` (tuple of str),
    ``tmdb_id`` (nullable Int64), ``n_ratings`` (int64), ``mean_rating`` (float64, NaN if none).
    tags: optional ``movieId -> list of tag strings`` (ml-latest-small tags.csv).
    added: the ids of movies the operator added (:mod:`movierec.data.added`), not in the
    data set itself.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        tags: dict[int, list[str]] | None = None,
        added: Iterable[int] = (),
    ) -> None:
        missing = [c for c in CATALOG_COLUMNS if c not in frame.columns]
        if missing:
            raise InvalidInput(f"catalog frame lacks column(s) {', '.join(missing)}")
        self.frame = frame.sort_index()
        self.tags = tags or {}
        #: movie ids added by the operator (unrated in the data set)
        self.added_ids: frozenset[int] = frozenset(int(m) for m in added)

    @property
    def n_added(self) -> int:
        """How many movies the operator added to the data set's."""
        return len(self.added_ids)

    @cached_property
    def last_year(self) -> int | None:
        """The latest release year among the data set's own movies (added ones left out):
        where the catalogue ends (2018 for ml-latest-small)."""
        years = self.frame["year"]
        if self.added_ids:
            years = years[~self.frame.index.isin(list(self.added_ids))]
        years = years.dropna()
        return int(years.max()) if len(years) else None

    def without_added(self) -> Catalog:
        """The data set's own movies (this catalogue if none were added)."""
        if not self.added_ids:
            return self
        keep = ~self.frame.index.isin(list(self.added_ids))
        return Catalog(self.frame[keep], tags=self.tags)

    def __len__(self) -> int:
        return len(self.frame)

    def __contains__(self, movie_id: object) -> bool:
        try:
            return int(movie_id) in self.frame.index  # type: ignore[call-overload]  # TypeError caught
        except (TypeError, ValueError):
            return False

    def get(self, movie_id: int) -> Movie:
        """The movie with this raw id; ``InvalidInput`` naming it if unknown."""
        if movie_id not in self:
            raise InvalidInput(f"unknown movieId {movie_id}", field="movieId")
        row = self.frame.loc[int(movie_id)]
        return _movie(int(movie_id), row)

    def movies(self, movie_ids: Iterable[int]) -> list[Movie]:
        return [self.get(m) for m in movie_ids]

    def most_rated(self, n: int = 50) -> list[Movie]:
        """The ``n`` movies with most ratings (ties: higher mean, then lower id)."""
        top = self.frame.sort_values(
            ["n_ratings", "mean_rating"], ascending=[False, False], kind="mergesort"
        ).head(n)
        return [_movie(int(mid), row) for mid, row in top.iterrows()]


def _movie(movie_id: int, row: pd.Series) -> Movie:
    year = row["year"]
    tmdb = row["tmdb_id"]
    mean = row["mean_rating"]
    return Movie(
        movie_id=movie_id,
        title=str(row["title"]),
        year=None if pd.isna(year) else int(year),
        genres=tuple(row["genres"]),
        tmdb_id=None if pd.isna(tmdb) else int(tmdb),
        n_ratings=int(row["n_ratings"]),
        mean_rating=None if pd.isna(mean) else float(mean),
    )
