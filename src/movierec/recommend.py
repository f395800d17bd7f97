"""The recommend service: a visitor's ratings + a year preference -> ranked, explained picks.

``recommend(model, catalog, ratings={movieId: stars}, year="any", n=5)`` is the one-shot
function; :class:`RecommendService` does the same with per-(model, catalog) work
(aligning the catalogue to the model's items) done once, which is what the web app and
the CLI keep around.

**Order and numbers.** Picks come from the model's *rank* score (``model.rank``: for
EASE its relevance x predicted-stars blend, for factor models the predicted stars), the
model's first few in its order, the rest chosen among its best candidates to follow the
visitor's genre mix and to avoid the genres they disliked
(:func:`movierec.rerank.personal_order`, the same call for every model and in
``movierec evaluate``), while ``predicted_stars`` comes from ``model.score``; neither
need fall down the list. A visitor who rated movies but liked none of them (nothing at
``LIKED_FROM`` stars or more) is told so (``liked_nothing``, ``message``).

Each pick carries ``like_probability``: the chance, calibrated on held-out users
at train time, that a person with these ratings gives the movie 4 stars or more
(:mod:`movierec.models.calibration`, from the pick's predicted stars and its place in
this visitor's ranking). It means the same for every visitor, so it need not fall down
the list either, and a visitor who liked nothing sees low figures. It is None (and not
shown) where it cannot be calibrated: a model file without calibration, and the popular
fallback for a visitor with no usable rating.

**Faithful explanations.** ``because`` names the rated movies whose removal lowers the
pick's rank score most, in the model that ranked it: each rated movie is left out in
turn, the visitor is folded in again without it and the pick re-scored
(``Recommender.explain``: ``rank_at`` over the leave-one-out states, one batched
product at the picks).
Only movies whose removal lowers the score count, at most ``MAX_BECAUSE``, largest drop
first, and never a dislike (under ``DISLIKE_BELOW`` stars): a movie the visitor hated is
not a reason to watch anything, even where leaving it out lowers a pick (a 1-star
rating also lowers the visitor's bias). This is
exact for every model (EASE's relevance and star gain, the factor models' ridge and
non-negative fold-ins), not a similarity proxy. A visitor with more than
``MAX_EXPLAINED`` usable ratings has the ``MAX_EXPLAINED`` highest-starred (most recent
first among equals) tried. A model that ranks alike for everyone (``popular``) moves
every movie's score equally with each rating, so it explains nothing.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from movierec.data.arrays import BoolArray, Float32Array, Float64Array, Int64Array
from movierec.data.catalog import Catalog, Movie
from movierec.errors import InvalidInput
from movierec.inputs import MAX_N as MAX_N  # the rules of every input (re-exported)
from movierec.inputs import STARS_RULE, is_stars, year_preference
from movierec.inputs import YEAR_CHOICES as YEAR_CHOICES
from movierec.models.base import DISLIKE_BELOW, LIKED_FROM, Recommender, UserState, top_indices
from movierec.models.calibration import share_at_or_above
from movierec.new_movies import NEW_EVERY, NewMovies, share_of
from movierec.rerank import Calibration, GenreMix, personal_order

DEFAULT_SPLIT_YEAR = 2010  # old < 2010 <= new, as in the original app
#: movies with fewer ratings (the catalogue's, or the model's training counts where larger)
#: are never recommended
DEFAULT_MIN_RATINGS = 20
POPULAR_DAMPING = 10.0  # prior weight (in ratings) of the Bayesian average fallback
MAX_BECAUSE = 3
#: rated movies tried (left out in turn) when explaining picks
MAX_EXPLAINED = 40


@dataclass(frozen=True)
class Recommendation:
    """One pick: the movie, its predicted stars and the rated movies behind it."""

    movie: Movie
    predicted_stars: float
    because: tuple[Movie, ...] = ()
    personal: bool = True  # False for the popular fallback
    #: the model's rank score (what the order comes from)
    score: float = 0.0
    #: the calibrated chance (0-1) of 4+ stars from this visitor; None: not calibrated
    like_probability: float | None = None
    #: the reason of a pick made another way (an added movie matched on its genres)
    note: str | None = None

    @property
    def reason(self) -> str:
        """One sentence saying why this movie was chosen."""
        if self.note:
            return self.note
        if self.because:
            titles = [m.display_title for m in self.because]
            return "Because you rated " + _join_titles(titles) + "."
        if self.personal:
            return "Predicted from your ratings as a whole."
        return "Popular and well rated by MovieLens viewers."

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields."""
        return {
            **self.movie.to_dict(),
            "predicted_stars": round(self.predicted_stars, 2),
            "like_probability": None
            if self.like_probability is None
            else round(self.like_probability, 3),
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
    #: True when the visitor rated movies but none ``LIKED_FROM`` stars or more: the picks
    #: only avoid what they disliked, and ``message`` asks for a movie they enjoyed
    liked_nothing: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "year": self.year,
            "fallback": self.fallback,
            "message": self.message,
            "liked_nothing": self.liked_nothing,
            "ignored": self.ignored,
            "recommendations": [r.to_dict() for r in self.items],
        }


def validate_year(year: str) -> str:
    """The year preference, or ``InvalidInput`` naming the bad value (one rule:
    :func:`movierec.inputs.year_preference`)."""
    return year_preference(year)


def validate_n(n: int) -> int:
    """The number of picks (1-100), or ``InvalidInput`` naming the bad value."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_N:
        raise InvalidInput(f"n must be a whole number from 1 to {MAX_N}, got {n!r}", field="n")
    return int(n)


def validate_ratings(
    ratings: Mapping[Any, object], catalog: Catalog | Container[int]
) -> dict[int, float]:
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
        stars = float(value)  # type: ignore[arg-type]  # any object: TypeError caught
    except (TypeError, ValueError):
        stars = float("nan")
    if not is_stars(stars):
        raise InvalidInput(
            f"stars for movieId {movie_id} must be {STARS_RULE}, got {value!r}",
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
        calibration: Calibration | None = None,
    ) -> None:
        self.model = model
        self.catalog = catalog
        #: how picks follow the visitor's genre mix (:mod:`movierec.rerank`)
        self.calibration = calibration or Calibration.of(model)
        self.min_ratings = int(min_ratings)
        self.split_year = int(split_year)
        model_movies = model.movie_ids
        assert model_movies is not None, "model must be fitted"
        frame = catalog.frame.reindex(model_movies)
        #: (n_items,) raw movie ids of the model's columns
        self.movie_ids = model_movies
        self._in_catalog: BoolArray = frame["title"].notna().to_numpy()
        self._year: Float64Array = (
            frame["year"].astype("Float64").fillna(np.nan).to_numpy(np.float64)
        )
        self._n_ratings: Int64Array = frame["n_ratings"].fillna(0).to_numpy(np.int64)
        if model.item_counts is not None:  # trained with visitors' ratings: it knows more
            self._n_ratings = np.maximum(self._n_ratings, model.item_counts)
        #: year preference -> (n_items,) bool: may be recommended before exclusions
        self._allowed_items: dict[str, BoolArray] = {
            y: self._allowed(self._year, self._n_ratings, y) & self._in_catalog
            for y in YEAR_CHOICES
        }
        self._genre_names: list[str] | None = None
        #: (genre, id of the ids array) -> bool mask over it (see _genre_mask)
        self._genre_masks: dict[tuple[str, int], BoolArray] = {}
        #: every movie id of the catalogue (validation without pandas look-ups)
        self._catalog_ids = frozenset(catalog.frame.index.tolist())
        #: movie id -> Movie, filled on first use (thread-safe: a racing duplicate is equal)
        self._movies: dict[int, Movie] = {}
        #: the genres of the model's items, for :func:`~movierec.rerank.personal_order`
        self._mix = GenreMix.of(catalog, model_movies)
        #: the catalogue's added movies, matched on genres until a model learns them
        self._new = NewMovies(catalog, self.split_year) if catalog.added_ids else None
        #: added movies the model has learned well enough to rank (a retrain with
        #: visitors' ratings): they leave the genre matching for the model's own ranking
        self._learned = frozenset(
            int(m)
            for m in (self.movie_ids[self._allowed_items["any"]] if catalog.added_ids else ())
            if int(m) in catalog.added_ids
        )
        #: whether picks are explained (models with item vectors rank per movie)
        # Popular fallback over the whole catalogue (movies the model may not know too)
        cat = catalog.frame
        counts: Float64Array = cat["n_ratings"].to_numpy(np.float64)
        means: Float64Array = cat["mean_rating"].fillna(0.0).to_numpy(np.float64)
        prior = float(np.nansum(means * counts) / max(counts.sum(), 1.0))
        self._pop_ids: Int64Array = cat.index.to_numpy(np.int64)
        self._pop_score = (means * counts + prior * POPULAR_DAMPING) / (counts + POPULAR_DAMPING)
        self._pop_year: Float64Array = (
            cat["year"].astype("Float64").fillna(np.nan).to_numpy(np.float64)
        )
        self._pop_counts = counts

    # -- public -----------------------------------------------------------------
    def recommend(
        self,
        ratings: Mapping[Any, object],
        year: str = "any",
        n: int = 5,
        exclude: Iterable[int] = (),
        only: Iterable[int] | None = None,
        genre: str | None = None,
        keep: int | None = None,
    ) -> RecommendationList:
        """Top ``n`` movies for a visitor who gave ``ratings`` ({movieId: stars}).

        ``exclude``: movie ids never to recommend (e.g. marked "not interested").
        ``only``: rank just these movie ids (e.g. the visitor's watchlist: "which of
        these first?"); chosen by the visitor, they skip the year preference and the
        popularity floor. Movies the model does not know are left out.
        ``genre``: only movies of this genre (one of :attr:`genres`, else ``InvalidInput``
        naming ``genre``), e.g. "only Horror".
        ``keep``: return only the first ``keep`` of the ``n`` (a page showing the first 5
        of 50): they are ranked, re-ranked and placed as among ``n``, so every page size
        shows the same order, but only they are explained and calibrated.
        """
        year = validate_year(year)
        n = validate_n(n)
        shown = n if keep is None else min(validate_n(keep), n)
        if genre is not None and genre not in self.genres:
            raise InvalidInput(
                f"unknown genre {genre!r}; choose from {', '.join(self.genres)}", field="genre"
            )
        clean = validate_ratings(ratings, self._catalog_ids)
        excluded = {int(m) for m in exclude}
        chosen = None if only is None else {int(m) for m in only} - excluded
        usable = {m: s for m, s in clean.items() if self.model.has_movie(m)}
        ignored = sorted(set(clean) - set(usable))
        if not usable:
            found = self._popular(clean, year, n, ignored, excluded, chosen, genre)
            if chosen is None:
                found = self._with_new(found, n, clean, excluded, genre)
            return _first(found, shown)
        state = self.model.fold_in(list(usable), list(usable.values()))
        ranking, stars = self.model.rank_and_score(state)  # ease: one pass of its member
        if chosen is None:
            allowed = self._allowed_items[year].copy()
        else:
            allowed = np.zeros_like(self._in_catalog)
            known = [m for m in chosen if self.model.has_movie(m)]
            allowed[self.model.items_of(known)] = True
            allowed &= self._in_catalog
        if genre is not None:
            allowed &= self._genre_mask(genre, self.movie_ids)
        allowed[state.items] = False
        hidden = [self.model.items_of([m])[0] for m in excluded if self.model.has_movie(m)]
        allowed[hidden] = False
        picks = personal_order(
            ranking, np.flatnonzero(allowed), state.items, state.stars, n, self._mix,
            self.calibration, first=shown,
        )  # fmt: skip
        chances = self._like_probabilities(state, ranking, stars, picks)
        because = self._because(usable, state, picks)
        items = [
            Recommendation(
                movie=self._movie(int(self.movie_ids[i])),
                predicted_stars=min(max(float(stars[i]), 0.5), 5.0),  # np.clip, cheaper
                because=because[k],
                score=float(ranking[i]),
                like_probability=chances[k],
            )
            for k, i in enumerate(picks)
        ]
        liked_nothing = max(usable.values()) < LIKED_FROM
        message = LIKED_NOTHING if liked_nothing else None
        if not items:
            message = _nothing_left(year, genre)
        found = RecommendationList(
            items=items,
            model=self.model.name,
            year=year,
            message=message,
            ignored=ignored,
            liked_nothing=liked_nothing,
        )
        if chosen is None:
            found = self._with_new(found, n, clean, excluded, genre)
        return _first(found, shown)

    def _with_new(
        self,
        found: RecommendationList,
        n: int,
        ratings: dict[int, float],
        excluded: set[int],
        genre: str | None,
    ) -> RecommendationList:
        """``found`` with added movies the model cannot rank yet matched on their genres
        (:mod:`movierec.new_movies`): at most ``share_of(n)``, in the 5th, 10th, ...
        places (or last, in a shorter list), so a page showing the first 5 of 50 picks
        shows the first of them."""
        if self._new is None:
            return found
        shown = {r.movie.movie_id for r in found.items}
        skip = excluded | shown | self._learned
        new = self._new.picks(ratings, share_of(n), found.year, skip, genre)
        if not new:
            return found
        extra = [
            Recommendation(
                movie=self._movie(p.movie_id),
                predicted_stars=p.predicted_stars,
                because=(self._movie(p.like),),
                personal=True,
                score=p.similarity,
                note=p.reason(self._movie(p.like).display_title),
            )
            for p in new
        ]
        items = list(found.items[: max(n - len(extra), 0)])
        for j, pick in enumerate(extra):  # 5th, 10th, ...: the same places in any prefix
            items.insert(min(NEW_EVERY * j + NEW_EVERY - 1, len(items)), pick)
        message = found.message if found.items else None  # "nothing left" no more
        return replace(found, items=items, message=message)

    @property
    def genres(self) -> list[str]:
        """The catalogue's genre names, sorted (without "(no genres listed)")."""
        if self._genre_names is None:
            names = {g for genres in self.catalog.frame["genres"] for g in genres}
            self._genre_names = sorted(g for g in names if g and not g.startswith("("))
        return self._genre_names

    # -- helpers ------------------------------------------------------------------
    def _genre_mask(self, genre: str, movie_ids: Int64Array) -> BoolArray:
        """``(len(movie_ids),)`` bool: which of ``movie_ids`` (the model's columns or the
        catalogue's order) are of ``genre``; built once per (genre, array)."""
        key = (genre, id(movie_ids))
        mask = self._genre_masks.get(key)
        if mask is None:
            genres = self.catalog.frame["genres"].reindex(movie_ids)
            mask = np.array([isinstance(g, tuple | list) and genre in g for g in genres])
            self._genre_masks[key] = mask
        return mask

    def _allowed(
        self, years: Float64Array, counts: Int64Array | Float64Array, year: str
    ) -> BoolArray:
        mask = counts >= self.min_ratings
        if year == "old":
            mask &= years < self.split_year  # NaN (no year) compares False
        elif year == "new":
            mask &= years >= self.split_year
        return mask

    def _popular(
        self,
        clean: dict[int, float],
        year: str,
        n: int,
        ignored: list[int],
        excluded: AbstractSet[int] = frozenset(),
        chosen: set[int] | None = None,
        genre: str | None = None,
    ) -> RecommendationList:
        if chosen is None:
            allowed = self._allowed(self._pop_year, self._pop_counts, year)
        else:
            allowed = np.isin(self._pop_ids, list(chosen))
        if genre is not None:
            allowed &= self._genre_mask(genre, self._pop_ids)
        allowed &= ~np.isin(self._pop_ids, [*clean, *excluded])
        candidates = np.flatnonzero(allowed)
        picks = candidates[top_indices(self._pop_score[candidates], n)]
        items = [
            Recommendation(
                movie=self._movie(int(self._pop_ids[i])),
                predicted_stars=float(self._pop_score[i]),
                personal=False,
                score=float(self._pop_score[i]),
            )
            for k, i in enumerate(picks)
        ]
        message = (
            "None of your ratings could be used, so these are popular, well-rated movies."
            if clean
            else "You have not rated any movie yet, so these are popular, well-rated movies."
        )
        if not items:
            message = _nothing_left(year, genre)
        return RecommendationList(
            items=items,
            model="popular",
            year=year,
            fallback=True,
            message=message,
            ignored=ignored,
        )

    def _like_probabilities(
        self, state: UserState, ranking: Float32Array, stars: Float32Array, picks: Int64Array
    ) -> list[float | None]:
        """Per pick (``(n_picks,)`` item indices), the calibrated chance of 4+ stars for the
        folded-in ``state`` given its ``ranking`` and ``stars`` ``(n_items,)``; None for
        every pick when the model carries no calibration."""
        calibration = self.model.calibration
        if calibration is None or not picks.size:
            return [None] * int(picks.size)
        share = share_at_or_above(ranking, state.items, picks)
        chances = calibration.probability(stars[picks], share, int(state.items.size))
        return [None if np.isnan(p) else float(p) for p in chances]

    def _movie(self, movie_id: int) -> Movie:
        """The catalogue's movie, built once per service (``Catalog.get`` is a pandas row
        look-up, the largest single cost of a request before this cache)."""
        movie = self._movies.get(movie_id)
        if movie is None:
            movie = self._movies[movie_id] = self.catalog.get(movie_id)
        return movie

    def _because(
        self, usable: dict[int, float], state: UserState, picks: Int64Array
    ) -> list[tuple[Movie, ...]]:
        """Per pick, the rated movies whose removal lowers its rank score most
        (``Recommender.explain``), never a dislike.

        ``usable``: the visitor's ratings the model knows; ``state``: their fold-in;
        ``picks``: ``(n_picks,)`` item indices. See the module doc.
        """
        if not picks.size:
            return [()] * int(picks.size)
        # a dislike is never a reason, whatever leaving it out does to the pick
        liked = [m for m, stars in usable.items() if stars >= DISLIKE_BELOW]
        if len(liked) > MAX_EXPLAINED:  # the highest-starred, most recent first among equals
            liked = sorted(liked, key=lambda m: -usable[m])[:MAX_EXPLAINED]
        reasons = self.model.explain(state, picks, liked, MAX_BECAUSE)
        return [tuple(self._movie(m) for m in named) for named in reasons]

    def leave_one_out_drops(self, ratings: Mapping[Any, object], movie_id: int) -> dict[int, float]:
        """``{rated movieId: rank score of movie_id with them minus without them}``.

        What ``because`` is ranked by, exposed for tests and diagnostics (a fold-in and a
        full ``rank`` per rated movie; not for the request path).
        """
        usable = {
            m: s
            for m, s in validate_ratings(ratings, self._catalog_ids).items()
            if self.model.has_movie(m)
        }
        item = int(self.model.items_of([movie_id])[0])
        full = float(self.model.rank(self.model.fold_in(list(usable), list(usable.values())))[item])
        drops = {}
        for left_out in usable:
            rest = {m: s for m, s in usable.items() if m != left_out}
            state = self.model.fold_in(list(rest), list(rest.values()))
            drops[left_out] = full - float(self.model.rank(state)[item])
        return drops


def recommend(
    model: Recommender,
    catalog: Catalog,
    ratings: Mapping[Any, object],
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


def _first(found: RecommendationList, n: int) -> RecommendationList:
    """``found`` with only its first ``n`` items."""
    return found if len(found.items) <= n else replace(found, items=found.items[:n])


def _join_titles(titles: list[str]) -> str:
    if len(titles) == 1:
        return titles[0]
    return ", ".join(titles[:-1]) + " and " + titles[-1]


#: what a visitor who rated movies but liked none of them is told
LIKED_NOTHING = (
    "You haven't told us about a movie you liked yet: rate one you enjoyed and your picks "
    "will follow your taste. Until then these only steer clear of what you disliked."
)


def _nothing_left(year: str, genre: str | None = None) -> str:
    if genre is not None:
        return f"No {genre} movie is left to recommend for the year preference {year!r}."
    return f"No movie is left to recommend for the year preference {year!r}."
