"""Which movies to ask a visitor to rate, round after round (issue 11, issue 8 part 2).

Example::

    onboarding = Onboarding.build(train_ratings, model, catalog)
    first = onboarding.next_movies({}, [], n=15)                 # list[Movie]
    after = onboarding.next_movies({356: 4.5}, [m.movie_id for m in first], n=15)

- :mod:`.index`: per-movie arrays from training data (:class:`OnboardingIndex`).
- :mod:`.strategies`: ``random-top``, ``popular``, ``pop-entropy``, ``adaptive``.

Filters: a genre, a year preference (old / new / any, split at 2010 as the recommend
service does) and, with ``min_new``, a year mix: at least ``min_new`` of the movies from
2010 on while there are such candidates (the original app drew from the most rated
before *and* after 2010). Movies shown or answered are never asked again.

:meth:`Onboarding.catalogue_page` pages through the whole catalogue (or one genre) by
popularity with the same year mix, for clients that keep no answers (``GET
/api/v1/onboarding?genre=&page=``).
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from movierec.data.arrays import BoolArray, Int64Array
from movierec.data.catalog import Catalog, Movie
from movierec.data.ratings import Ratings
from movierec.errors import InvalidInput
from movierec.inputs import year_preference
from movierec.models.base import Recommender
from movierec.onboarding.index import OnboardingIndex
from movierec.onboarding.strategies import STRATEGIES, seen_probability
from movierec.recommend import DEFAULT_SPLIT_YEAR

__all__ = [
    "DEFAULT_STRATEGY",
    "FIRST_PAGES",
    "MAX_CARDS",
    "NEW_SHARE",
    "min_new_for",
    "ORIGINAL_STRATEGY",
    "STRATEGIES",
    "Batch",
    "Onboarding",
    "OnboardingIndex",
    "candidate_mask",
    "choose_items",
    "decode_positions",
    "encode_positions",
    "next_movies",
    "seen_probability",
]

#: the strategy that measured best (bench/onboarding_strategies.py, README)
DEFAULT_STRATEGY = "adaptive"
#: the original app's draw, still selectable
ORIGINAL_STRATEGY = "random-top"
#: the app's year mix: a third of the cards (5 of 15) from DEFAULT_SPLIT_YEAR on
NEW_SHARE = 1 / 3


def min_new_for(n: int) -> int:
    """How many of ``n`` cards the app takes from DEFAULT_SPLIT_YEAR on (5 of 15)."""
    return math.ceil(n * NEW_SHARE)


MAX_CARDS = 100
#: a first page (nothing answered or shown yet) is one of this many draws per strategy and
#: filters, each remembered once drawn: a new visitor's page then costs a look-up instead
#: of a choice (``bench/load.py``: the rating page's server CPU 19.7 -> 14.2 ms), and over
#: 256 draws the first pages still vary as the strategy's own draws do
FIRST_PAGES = 256
#: most first pages remembered (strategies x filters x sizes x FIRST_PAGES could be more)
MAX_FIRST_PAGES_KEPT = 8192
#: longest shown-set text accepted back from a cookie (the bitmap of 60k movies, zlib'd,
#: is at most ~10 kB; the visits that matter are a few hundred bytes)
MAX_SHOWN_TEXT = 12_000


def validate_strategy(strategy: object) -> str:
    """The strategy name, or ``InvalidInput`` naming ``strategy``."""
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        shown = repr(strategy)[:100]
        raise InvalidInput(
            f"unknown strategy {shown}; choose from {', '.join(STRATEGIES)}", field="strategy"
        )
    return strategy


def candidate_mask(
    index: OnboardingIndex,
    answers: Mapping[int, float | None],
    shown: Iterable[int],
    *,
    genre: str | None = None,
    year: str = "any",
    split_year: int = DEFAULT_SPLIT_YEAR,
) -> BoolArray:
    """``(n_items,)`` bool: movies that may be asked (not shown nor answered, within the
    genre and year preference). Unknown genre/year -> ``InvalidInput`` naming the field."""
    year_preference(year)  # InvalidInput naming "year" unless old, new or any
    candidates = np.ones(index.n_items, dtype=bool)
    gone = np.fromiter((int(i) for i in (*shown, *answers)), dtype=np.int64)
    candidates[gone[(gone >= 0) & (gone < index.n_items)]] = False
    if genre is not None:
        mask = index.genre_mask(genre)
        if mask is None:
            raise InvalidInput(
                f"unknown genre {genre[:100]!r}; choose from {', '.join(index.genre_names)}",
                field="genre",
            )
        candidates &= mask
    if year == "old":
        candidates &= index.years < split_year  # NaN compares False
    elif year == "new":
        candidates &= index.years >= split_year
    return candidates


def choose_items(
    index: OnboardingIndex,
    answers: Mapping[int, float | None],
    shown: Iterable[int],
    n: int,
    strategy: str = DEFAULT_STRATEGY,
    *,
    seed: int = 0,
    genre: str | None = None,
    year: str = "any",
    min_new: int = 0,
    split_year: int = DEFAULT_SPLIT_YEAR,
) -> Int64Array:
    """Up to ``n`` item positions to ask next (fewer when the candidates run out).

    answers: item position -> stars, or None for "shown, not seen".
    shown: item positions already offered (answered or not); never asked again.
    Unknown ``strategy``/``genre``/``year`` -> ``InvalidInput`` naming the field.
    """
    choose = STRATEGIES[validate_strategy(strategy)]
    candidates = candidate_mask(
        index, answers, shown, genre=genre, year=year, split_year=split_year
    )
    is_new = index.years >= split_year  # NaN compares False
    rng = np.random.default_rng(seed)
    if min_new <= 0 or year != "any":
        return choose(index, answers, candidates, n, rng)
    new, old = candidates & is_new, candidates & ~is_new
    k_new, k_old = _split(n, min(min_new, n), int(new.sum()), int(old.sum()))
    picks_new = choose(index, answers, new, k_new, rng) if k_new else np.zeros(0, np.int64)
    picks_old = choose(index, answers, old, k_old, rng) if k_old else np.zeros(0, np.int64)
    return _interleave(picks_old, picks_new)


@dataclass(frozen=True)
class Batch:
    """The movies to ask next and whether the candidates ran out with them."""

    movies: list[Movie]
    exhausted: bool  # True: nothing is left to ask after these (within the filters)


class Onboarding:
    """The strategies over one index, answering in catalogue :class:`Movie` objects.

    Built once per (training ratings, model, catalogue); thread-safe (reads only, plus
    caches of ``Movie`` objects and of first pages where a racing duplicate is equal).
    """

    def __init__(self, index: OnboardingIndex, catalog: Catalog) -> None:
        self.index = index
        self.catalog = catalog
        self._movies: dict[int, Movie] = {}
        #: (strategy, draw, genre, year, min_new, n) -> that first page
        self._first_pages: dict[tuple[str, int, str | None, str, int, int], Batch] = {}

    @classmethod
    def build(
        cls, train: Ratings, model: Recommender | None, catalog: Catalog, seed: int = 0
    ) -> Onboarding:
        """Index the whole catalogue (movies without ratings last in popularity order)."""
        return cls(OnboardingIndex.build(train, model, catalog, seed=seed), catalog)

    @property
    def genres(self) -> list[str]:
        return self.index.genre_names

    def batch(
        self,
        ratings: Mapping[int, float],
        shown: Iterable[int],
        n: int = 15,
        strategy: str = DEFAULT_STRATEGY,
        *,
        seed: int = 0,
        genre: str | None = None,
        year: str = "any",
        min_new: int = 0,
    ) -> Batch:
        """The next ``n`` movies for a visitor who gave ``ratings`` ({movieId: stars})
        and was shown ``shown`` (movieIds; shown but unrated = not seen)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CARDS:
            raise InvalidInput(f"n must be a whole number from 1 to {MAX_CARDS}, got {n!r}", "n")
        position = self.index.position
        answers: dict[int, float | None] = {}
        shown_items = [position[m] for m in map(int, shown) if m in position]
        for item in shown_items:
            answers[item] = None
        for movie_id, stars in ratings.items():
            rated = position.get(int(movie_id))
            if rated is not None:
                answers[rated] = float(stars)
        strategy = validate_strategy(strategy)
        if answers or not isinstance(genre, str | None) or not isinstance(year, str):
            return self._batch(answers, shown_items, n, strategy, seed, genre, year, min_new)
        # a first page: one of FIRST_PAGES draws, each chosen once
        key = (strategy, seed % FIRST_PAGES, genre, year, min_new, n)
        first = self._first_pages.get(key)
        if first is None:
            first = self._batch({}, [], n, strategy, seed % FIRST_PAGES, genre, year, min_new)
            if len(self._first_pages) < MAX_FIRST_PAGES_KEPT:
                self._first_pages[key] = first
        return Batch(list(first.movies), first.exhausted)

    def prepare_first_pages(
        self, n: int = 15, strategy: str = DEFAULT_STRATEGY, *, year: str = "any"
    ) -> int:
        """Draw every first page a new visitor can get (all ``FIRST_PAGES`` seeds, no
        genre, the app's year mix) now, so no visitor's request makes one: ``serve``
        calls it before forking, and the workers share the pages. Returns how many were
        drawn (about 9 ms each with ``adaptive`` on ml-latest-small)."""
        drawn = 0
        for seed in range(FIRST_PAGES):
            key = (strategy, seed, None, year, min_new_for(n), n)
            if key not in self._first_pages:
                self.batch({}, [], n, strategy, seed=seed, year=year, min_new=min_new_for(n))
                drawn += 1
        return drawn

    def _batch(
        self,
        answers: dict[int, float | None],
        shown_items: list[int],
        n: int,
        strategy: str,
        seed: int,
        genre: str | None,
        year: str,
        min_new: int,
    ) -> Batch:
        """:meth:`batch` given the answers and shown movies as item positions."""
        picks = choose_items(
            self.index,
            answers,
            shown_items,
            n,
            strategy,
            seed=seed,
            min_new=min_new,
            genre=genre,
            year=year,
        )
        left = candidate_mask(self.index, answers, shown_items, genre=genre, year=year)
        left[picks] = False
        exhausted = not left.any()
        return Batch([self.movie(int(self.index.movie_ids[i])) for i in picks], exhausted)

    def catalogue_page(
        self, page: int, n: int = 15, *, genre: str | None = None, min_new: int = 0
    ) -> tuple[list[Movie], int]:
        """Page ``page`` (1-based) of the catalogue (or ``genre``) by popularity, each page
        ``min_new`` movies from 2010 on and the rest older while both last; returns the
        movies (empty past the end) and the number of pages."""
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise InvalidInput(f"page must be a whole number >= 1, got {page!r}", field="page")
        candidates = candidate_mask(self.index, {}, [], genre=genre)
        is_new = self.index.years >= DEFAULT_SPLIT_YEAR
        order = self.index.popularity_order
        queues = order[(candidates & is_new)[order]], order[(candidates & ~is_new)[order]]
        n_pages = -(-int(candidates.sum()) // n)
        if page > n_pages:
            return [], n_pages
        used_new = used_old = 0
        for _ in range(page):
            k_new, k_old = _split(
                n, min(min_new, n), queues[0].size - used_new, queues[1].size - used_old
            )
            used_new, used_old = used_new + k_new, used_old + k_old
        picks = _interleave(
            queues[1][used_old - k_old : used_old], queues[0][used_new - k_new : used_new]
        )
        return [self.movie(int(self.index.movie_ids[i])) for i in picks], n_pages

    def next_movies(
        self,
        ratings: Mapping[int, float],
        shown: Iterable[int],
        n: int = 15,
        strategy: str = DEFAULT_STRATEGY,
        *,
        seed: int = 0,
        genre: str | None = None,
        year: str = "any",
        min_new: int = 0,
    ) -> list[Movie]:
        """:meth:`batch`'s movies only."""
        found = self.batch(
            ratings, shown, n, strategy, seed=seed, genre=genre, year=year, min_new=min_new
        )
        return found.movies

    def encode_shown(self, movie_ids: Iterable[int]) -> str:
        """The movies shown this visit as compact cookie text (:func:`encode_positions`)."""
        return encode_positions(self.index.items_of(list(movie_ids)), self.index.n_items)

    def decode_shown(self, text: object) -> list[int]:
        """:meth:`encode_shown` reversed (movieIds); anything else -> []."""
        if not isinstance(text, str) or len(text) > MAX_SHOWN_TEXT:
            return []
        positions = decode_positions(text, self.index.n_items)
        return [int(m) for m in self.index.movie_ids[positions]]

    def movie(self, movie_id: int) -> Movie:
        movie = self._movies.get(movie_id)
        if movie is None:
            movie = self._movies[movie_id] = self.catalog.get(movie_id)
        return movie


def next_movies(
    model: Recommender,
    catalog: Catalog,
    ratings: Mapping[int, float],
    shown: Sequence[int],
    n: int = 15,
    strategy: str = DEFAULT_STRATEGY,
    *,
    train: Ratings,
    seed: int = 0,
    genre: str | None = None,
    year: str = "any",
    min_new: int = 0,
) -> list[Movie]:
    """One-shot :meth:`Onboarding.next_movies` (builds the index from ``train``; keep an
    :class:`Onboarding` instead when asking more than once)."""
    onboarding = Onboarding.build(train, model, catalog, seed=seed)
    return onboarding.next_movies(
        ratings, shown, n, strategy, seed=seed, genre=genre, year=year, min_new=min_new
    )


def encode_positions(positions: Iterable[int], size: int) -> str:
    """A compact cookie-safe text for a set of item positions in ``[0, size)``: a bitmap,
    zlib-compressed, base64url (a run of consecutive positions costs almost nothing)."""
    bits = np.zeros(max(size, 0), dtype=bool)
    values = np.fromiter((int(p) for p in positions), dtype=np.int64)
    bits[values[(values >= 0) & (values < size)]] = True
    packed = zlib.compress(np.packbits(bits).tobytes(), 9)
    return base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


def decode_positions(text: str, size: int) -> list[int]:
    """:func:`encode_positions` reversed; damaged or foreign text -> no positions."""
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, zlib.error):
        return []
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[:size]
    return np.flatnonzero(bits).tolist()


def _split(n: int, min_new: int, n_new: int, n_old: int) -> tuple[int, int]:
    """``(k_new, k_old)``: ``min_new`` new movies if there are, the rest old, and either
    side filling in when the other runs out."""
    k_new = min(min_new, n_new)
    k_old = min(n - k_new, n_old)
    return min(n - k_old, n_new), k_old


def _interleave(first: Int64Array, second: Int64Array) -> Int64Array:
    """``first`` with ``second``'s items spread evenly among them (orders kept)."""
    if not second.size:
        return first
    if not first.size:
        return second
    total = first.size + second.size
    slots = np.round(np.linspace(1, total - 1, second.size)).astype(np.int64)
    slots = np.minimum(slots, total - 1)
    out = np.empty(total, dtype=np.int64)
    is_second = np.zeros(total, dtype=bool)
    is_second[np.unique(slots)] = True
    # unique() may merge slots when second is dense; fill the rest in order
    extra = second.size - int(is_second.sum())
    free = np.flatnonzero(~is_second)
    is_second[free[free.size - extra :] if extra > 0 else []] = True
    out[is_second] = second
    out[~is_second] = first
    return out
