"""Movies added to the catalogue, recommended by their genres until they have ratings.

An added movie (``movierec catalog add``) has no ratings in the data set, so no model has
learned it: collaborative filtering cannot rank it, and the models' popularity floor
(``DEFAULT_MIN_RATINGS``) keeps it out anyway. Until a retrain with visitors' ratings
gives it that signal, :class:`NewMovies` matches it to the visitor on content:

- its similarity to each movie the visitor liked (``LIKED_FROM`` stars or more; the
  ``LIKED_TRIED`` best-rated) is the Jaccard index of their genre sets (shared genres
  over all genres of the two), so the reason can say exactly what they share;
- it is offered when its best similarity reaches ``CONTENT_MIN`` (half or more of the
  genres in common);
- its predicted stars are the similarity-weighted mean of the visitor's stars over the
  rated movies it shares a genre with (dislikes included: a content-based neighbour
  estimate), and no like probability is given (nothing calibrated it).

Genres only, not tags: an added movie carries no tags (nobody has tagged it), so tags
could only ever lower its similarity. :class:`movierec.recommend.RecommendService`
merges these picks into the model's, at most ``share_of(n)`` of them, in the 5th, 10th,
... places (the last of a shorter list), each with the reason "New to the catalogue;
shares Horror with Alien." Fixed places, not the last ones: the pages rank 50 picks and
show the first 5, 10, ... ("Show 5 more"), so every prefix keeps its share.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from movierec.data.arrays import BoolArray, Float64Array
from movierec.data.catalog import Catalog
from movierec.models.base import LIKED_FROM

#: Jaccard index of genre sets a liked movie must share with an added one (0-1)
CONTENT_MIN = 0.5
#: liked movies compared (the best-rated, most recent first among equals)
LIKED_TRIED = 40
#: rated movies whose stars feed the estimate (the most recent)
RATED_TRIED = 500


#: one pick in this many may be an added movie (the last of each run of this many)
NEW_EVERY = 5


def share_of(n: int) -> int:
    """How many of ``n`` picks may be added movies: one in five, at least one."""
    return max(1, n // NEW_EVERY)


@dataclass(frozen=True)
class NewPick:
    """An added movie for one visitor: its estimate (stars 0.5-5), its best Jaccard
    similarity (0-1), the liked movie it is most like and the genres they share."""

    movie_id: int
    predicted_stars: float
    similarity: float
    like: int
    shared: tuple[str, ...]

    def reason(self, like_title: str) -> str:
        genres = list(self.shared)
        named = genres[0] if len(genres) == 1 else ", ".join(genres[:-1]) + " and " + genres[-1]
        return f"New to the catalogue; shares {named} with {like_title}."


class NewMovies:
    """The added movies of one catalogue as genre rows, for :meth:`picks`.

    ``(n_movies, n_genres)`` bool rows of every catalogue movie over its genre vocabulary
    (about 10 ms and 0.2 MB for ml-latest-small), built once per catalogue, so a visitor's
    rated movies are a row look-up each.
    """

    def __init__(self, catalog: Catalog, split_year: int) -> None:
        self.catalog = catalog
        self.split_year = int(split_year)
        frame = catalog.frame
        self.movie_ids = np.array(sorted(catalog.added_ids), dtype=np.int64)
        names = sorted({g for genres in frame["genres"] for g in genres})
        self.genre_names = names
        self._column = {g: j for j, g in enumerate(names)}
        #: (n_movies, n_genres) bool genre rows of every catalogue movie, and where each is
        self._all_rows = self._rows(frame["genres"].tolist())
        self._row_of = {int(m): i for i, m in enumerate(frame.index.tolist())}
        added = [self._row_of[int(m)] for m in self.movie_ids]
        self.rows = self._all_rows[added]  # (n_added, n_genres) bool
        self._added_pos = {int(m): i for i, m in enumerate(self.movie_ids.tolist())}
        years: Float64Array = frame["year"].astype("Float64").fillna(np.nan).to_numpy(np.float64)
        self.years = years[added]

    def __len__(self) -> int:
        return int(self.movie_ids.size)

    def picks(
        self,
        ratings: Mapping[int, float],
        k: int,
        year: str = "any",
        exclude: Collection[int] = (),
        genre: str | None = None,
    ) -> list[NewPick]:
        """Up to ``k`` added movies for a visitor with ``ratings`` ({movieId: stars},
        catalogue movies), best first; never one rated or in ``exclude``, only of
        ``genre`` if given, and within the ``year`` preference (old/new/any)."""
        if not len(self) or k <= 0:
            return []
        rated = list(ratings.items())[-RATED_TRIED:]
        # the best-rated liked movies (a stable sort: the most recent first among equals)
        liked = sorted(
            (k_ for k_, (_, s) in enumerate(rated) if s >= LIKED_FROM), key=lambda k_: -rated[k_][1]
        )[:LIKED_TRIED]
        if not liked:
            return []
        keep = np.ones(len(self), dtype=bool)
        gone = [self._added_pos[m] for m in (*ratings, *exclude) if m in self._added_pos]
        keep[gone] = False
        if year == "old":
            keep &= self.years < self.split_year
        elif year == "new":
            keep &= self.years >= self.split_year
        if genre is not None:
            column = self._column.get(genre)
            keep &= self.rows[:, column] if column is not None else False
        candidates = np.flatnonzero(keep)
        if not candidates.size:
            return []
        rated_rows = self._rated_rows([m for m, _ in rated])
        similarity = _jaccard(self.rows[candidates], rated_rows)  # (n_candidates, n_rated)
        liked_sim = similarity[:, liked]
        best = liked_sim.argmax(axis=1)
        best_sim = liked_sim[np.arange(candidates.size), best]
        good = np.flatnonzero(best_sim >= CONTENT_MIN)
        if not good.size:
            return []
        stars = np.array([s for _, s in rated], dtype=np.float64)
        weight = similarity[good].sum(axis=1)
        estimate = (similarity[good] @ stars) / np.maximum(weight, 1e-12)
        order = sorted(range(good.size), key=lambda i: (-best_sim[good[i]], -estimate[i]))
        picks = []
        for i in order[:k]:
            row = good[i]
            like = liked[int(best[row])]
            shared = self.rows[candidates[row]] & rated_rows[like]
            picks.append(
                NewPick(
                    movie_id=int(self.movie_ids[candidates[row]]),
                    predicted_stars=min(max(float(estimate[i]), 0.5), 5.0),
                    similarity=float(best_sim[row]),
                    like=int(rated[like][0]),
                    shared=tuple(self.genre_names[j] for j in np.flatnonzero(shared)),
                )
            )
        return picks

    def _rows(self, genre_lists: list[object]) -> BoolArray:
        """``(len(genre_lists), n_genres)`` bool: each entry's genres (a tuple or list;
        anything else, e.g. NaN for a missing movie, has none)."""
        rows = np.zeros((len(genre_lists), len(self.genre_names)), dtype=bool)
        for i, genres in enumerate(genre_lists):
            if isinstance(genres, tuple | list):
                rows[i, [self._column[g] for g in genres if g in self._column]] = True
        return rows

    def _rated_rows(self, movie_ids: list[int]) -> BoolArray:
        """``(len(movie_ids), n_genres)`` bool genre rows of catalogue movies."""
        return self._all_rows[[self._row_of[int(m)] for m in movie_ids]]


def _jaccard(a: BoolArray, b: BoolArray) -> Float64Array:
    """``(len(a), len(b))`` Jaccard indices of bool genre rows (0 where both are empty)."""
    a_i, b_i = a.astype(np.float64), b.astype(np.float64)
    shared = a_i @ b_i.T
    union = a_i.sum(axis=1)[:, None] + b_i.sum(axis=1)[None, :] - shared
    jaccard: Float64Array = np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)
    return jaccard


__all__ = ["CONTENT_MIN", "NEW_EVERY", "NewMovies", "NewPick", "share_of"]
