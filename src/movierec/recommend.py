"""The recommend service: a visitor's ratings + a year preference -> ranked, explained picks.

``recommend(model, catalog, ratings={movieId: stars}, year="any", n=5)`` is the one-shot
function; :class:`RecommendService` does the same with per-(model, catalog) work
(aligning the catalogue to the model's items, normalising item vectors) done once,
which is what the web app and the CLI keep around.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field

import numpy as np

from movierec.data.catalog import Catalog, Movie
from movierec.errors import InvalidInput
from movierec.models.base import Recommender

YEAR_CHOICES = ("old", "new", "any")
DEFAULT_SPLIT_YEAR = 2010  # old < 2010 <= new, as in the original app
DEFAULT_MIN_RATINGS = 20  # movies with fewer ratings are never recommended
POPULAR_DAMPING = 10.0  # prior weight (in ratings) of the Bayesian average fallback
MAX_N = 100
MAX_BECAUSE = 3


@dataclass(frozen=True)
class Recommendation:
    """One pick: the movie, its predicted stars and the rated movies behind it."""

    movie: Movie
    predicted_stars: float
    because: tuple[Movie, ...] = ()
    personal: bool = True  # False for the popular fallback

    @property
    def reason(self) -> str:
        """One sentence saying why this movie was chosen."""
        if self.because:
            titles = [m.display_title for m in self.because]
            return "Because you rated " + _join_titles(titles) + "."
        if self.personal:
            return "Predicted from your ratings as a whole."
        return "Popular and well rated by MovieLens viewers."

    def to_dict(self) -> dict:
        """Plain JSON-able fields."""
        return {
            **self.movie.to_dict(),
            "predicted_stars": round(self.predicted_stars, 2),
            "because": [{"movieId": m.movie_id, "title": m.title} for m in self.because],
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RecommendationList:
    """The ranked picks and how they were made."""

    items: list[Recommendation]
    model: str
    year: str
    fallback: bool = False  # True when no usable rating: popular movies instead
    message: str | None = None
    ignored: list[int] = field(default_factory=list)  # rated movieIds the model cannot use

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "year": self.year,
            "fallback": self.fallback,
            "message": self.message,
            "ignored": self.ignored,
            "recommendations": [r.to_dict() for r in self.items],
        }


def validate_year(year: str) -> str:
    """The year preference, or ``InvalidInput`` naming the bad value."""
    if year not in YEAR_CHOICES:
        raise InvalidInput(
            f"unknown year preference {year!r}; choose old, new or any", field="year"
        )
    return year


def validate_n(n: int) -> int:
    """The number of picks (1-100), or ``InvalidInput`` naming the bad value."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_N:
        raise InvalidInput(f"n must be a whole number from 1 to {MAX_N}, got {n!r}", field="n")
    return int(n)


def validate_ratings(ratings: Mapping, catalog: Catalog | Container[int]) -> dict[int, float]:
    """``{movieId: stars}`` checked: known movies, stars 0.5-5 in half steps.

    Keys may be ints or digit strings (as from JSON). ``catalog`` is the catalogue or any
    container of its movie ids (the service passes a set: a pandas index look-up per
    rating costs more than the rest of the check). Raises ``InvalidInput`` naming the
    first bad movieId or star value.
    """
    if not isinstance(ratings, Mapping):
        raise InvalidInput("ratings must be a mapping of movieId to stars", field="ratings")
    clean: dict[int, float] = {}
    for key, value in ratings.items():
        try:
            movie_id = int(key)
        except (TypeError, ValueError):
            raise InvalidInput(f"movieId must be a whole number, got {key!r}", "ratings") from None
        if isinstance(key, float) and not float(key).is_integer():
            raise InvalidInput(f"movieId must be a whole number, got {key!r}", "ratings")
        if movie_id not in catalog:
            raise InvalidInput(f"unknown movieId {key}", field="ratings")
        clean[movie_id] = _check_stars(value, movie_id)
    return clean


def _check_stars(value: object, movie_id: int) -> float:
    if isinstance(value, bool):
        value = None  # True/False are not stars
    try:
        stars = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        stars = float("nan")
    if not (0.5 <= stars <= 5.0) or (stars * 2) != int(stars * 2):
        raise InvalidInput(
            f"stars for movieId {movie_id} must be 0.5 to 5 in half steps, got {value!r}",
            field="ratings",
        )
    return stars


class RecommendService:
    """Ranks the catalogue for visitors with one fitted model.

    Built once per (model, catalog); ``recommend`` then costs one fold-in, one
    ``(n_items,)`` scoring pass and a partial sort. Per-request Python is kept small
    (it is most of a request's CPU on a busy server): movie ids are checked against a
    set, the year/popularity filters are precomputed per year preference, and
    :class:`Movie` objects are built once per movie and kept.
    """

    def __init__(
        self,
        model: Recommender,
        catalog: Catalog,
        min_ratings: int = DEFAULT_MIN_RATINGS,
        split_year: int = DEFAULT_SPLIT_YEAR,
    ) -> None:
        self.model = model
        self.catalog = catalog
        self.min_ratings = int(min_ratings)
        self.split_year = int(split_year)
        model_movies = model.movie_ids
        assert model_movies is not None, "model must be fitted"
        frame = catalog.frame.reindex(model_movies)
        #: (n_items,) raw movie ids of the model's columns
        self.movie_ids = model_movies
        self._in_catalog = frame["title"].notna().to_numpy()
        self._year = frame["year"].astype("Float64").fillna(np.nan).to_numpy(np.float64)
        self._n_ratings = frame["n_ratings"].fillna(0).to_numpy(np.int64)
        #: year preference -> (n_items,) bool: may be recommended before exclusions
        self._allowed_items = {
            y: self._allowed(self._year, self._n_ratings, y) & self._in_catalog
            for y in YEAR_CHOICES
        }
        #: every movie id of the catalogue (validation without pandas look-ups)
        self._catalog_ids = frozenset(catalog.frame.index.tolist())
        #: movie id -> Movie, filled on first use (thread-safe: a racing duplicate is equal)
        self._movies: dict[int, Movie] = {}
        vectors = model.item_vectors()
        if vectors is not None:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            self._unit_vectors = (vectors / np.maximum(norms, 1e-9)).astype(np.float32)
        else:
            self._unit_vectors = None
        # Popular fallback over the whole catalogue (movies the model may not know too)
        cat = catalog.frame
        counts = cat["n_ratings"].to_numpy(np.float64)
        means = cat["mean_rating"].fillna(0.0).to_numpy(np.float64)
        prior = float(np.nansum(means * counts) / max(counts.sum(), 1.0))
        self._pop_ids = cat.index.to_numpy(np.int64)
        self._pop_score = (means * counts + prior * POPULAR_DAMPING) / (counts + POPULAR_DAMPING)
        self._pop_year = cat["year"].astype("Float64").fillna(np.nan).to_numpy(np.float64)
        self._pop_counts = counts

    # -- public -----------------------------------------------------------------
    def recommend(self, ratings: Mapping, year: str = "any", n: int = 5) -> RecommendationList:
        """Top ``n`` movies for a visitor who gave ``ratings`` ({movieId: stars})."""
        year = validate_year(year)
        n = validate_n(n)
        clean = validate_ratings(ratings, self._catalog_ids)
        usable = {m: s for m, s in clean.items() if self.model.has_movie(m)}
        ignored = sorted(set(clean) - set(usable))
        if not usable:
            return self._popular(clean, year, n, ignored)
        state = self.model.fold_in(list(usable), list(usable.values()))
        ranking = self.model.rank(state)
        stars = self.model.score(state)
        allowed = self._allowed_items[year].copy()
        allowed[state.items] = False
        candidates = np.flatnonzero(allowed)
        picks = candidates[_top_k(ranking[candidates], n)]
        explain = self._explainer(state.items, state.stars)
        items = [
            Recommendation(
                movie=self._movie(int(self.movie_ids[i])),
                predicted_stars=min(max(float(stars[i]), 0.5), 5.0),  # np.clip, cheaper
                because=explain(int(i)),
            )
            for i in picks
        ]
        message = None if items else _nothing_left(year)
        return RecommendationList(
            items=items, model=self.model.name, year=year, message=message, ignored=ignored
        )

    # -- helpers ------------------------------------------------------------------
    def _allowed(self, years: np.ndarray, counts: np.ndarray, year: str) -> np.ndarray:
        mask = counts >= self.min_ratings
        if year == "old":
            mask &= years < self.split_year  # NaN (no year) compares False
        elif year == "new":
            mask &= years >= self.split_year
        return mask

    def _popular(
        self, clean: dict[int, float], year: str, n: int, ignored: list[int]
    ) -> RecommendationList:
        allowed = self._allowed(self._pop_year, self._pop_counts, year)
        allowed &= ~np.isin(self._pop_ids, list(clean))
        candidates = np.flatnonzero(allowed)
        picks = candidates[_top_k(self._pop_score[candidates], n)]
        items = [
            Recommendation(
                movie=self._movie(int(self._pop_ids[i])),
                predicted_stars=float(self._pop_score[i]),
                personal=False,
            )
            for i in picks
        ]
        message = (
            "None of your ratings could be used, so these are popular, well-rated movies."
            if clean
            else "You have not rated any movie yet, so these are popular, well-rated movies."
        )
        if not items:
            message = _nothing_left(year)
        return RecommendationList(
            items=items,
            model="popular",
            year=year,
            fallback=True,
            message=message,
            ignored=ignored,
        )

    def _movie(self, movie_id: int) -> Movie:
        """The catalogue's movie, built once per service (``Catalog.get`` is a pandas row
        look-up, the largest single cost of a request before this cache)."""
        movie = self._movies.get(movie_id)
        if movie is None:
            movie = self._movies[movie_id] = self.catalog.get(movie_id)
        return movie

    def _explainer(
        self, rated_items: np.ndarray, rated_stars: np.ndarray
    ) -> Callable[[int], tuple[Movie, ...]]:
        """``because(item)`` for one visitor: what does not depend on the item is done once."""
        if self._unit_vectors is None or rated_items.size == 0:
            return lambda item: ()
        rated_vectors = self._unit_vectors[rated_items]
        centre = float(rated_stars.mean()) if rated_stars.size > 1 else 2.5
        liked = rated_stars >= max(centre, 3.0)
        weight = rated_stars - centre + 0.5
        unit_vectors = self._unit_vectors

        def because(item: int) -> tuple[Movie, ...]:
            """Rated movies that pull ``item`` up most: liked and similar in factor space."""
            similarity = rated_vectors @ unit_vectors[item]
            pull = similarity * weight
            order = np.argsort(-pull)
            order = order[(liked & (similarity > 0) & (pull > 0))[order]][:MAX_BECAUSE]
            return tuple(self._movie(int(self.movie_ids[rated_items[j]])) for j in order)

        return because


def recommend(
    model: Recommender,
    catalog: Catalog,
    ratings: Mapping,
    year: str = "any",
    n: int = 5,
    min_ratings: int = DEFAULT_MIN_RATINGS,
    split_year: int = DEFAULT_SPLIT_YEAR,
) -> RecommendationList:
    """Top ``n`` movies for ``ratings`` ({movieId: stars}) within the year preference.

    Excludes rated movies and movies with fewer than ``min_ratings`` ratings; "old" is
    before ``split_year``, "new" from it on. No usable rating -> popular movies, said so
    in ``message``. Bad movieId, stars or year -> ``InvalidInput`` (a ``ValueError``).
    """
    service = RecommendService(model, catalog, min_ratings=min_ratings, split_year=split_year)
    return service.recommend(ratings, year=year, n=n)


def _top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, best first (ties: lower index first)."""
    if values.size <= k:
        return np.argsort(-values, kind="stable")
    part = np.argpartition(-values, k - 1)[:k]
    return part[np.argsort(-values[part], kind="stable")]


def _join_titles(titles: list[str]) -> str:
    if len(titles) == 1:
        return titles[0]
    return ", ".join(titles[:-1]) + " and " + titles[-1]


def _nothing_left(year: str) -> str:
    return f"No movie is left to recommend for the year preference {year!r}."
