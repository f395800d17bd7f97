"""Visitors' ratings merged with a data set's, for ``movierec train --with-visitors``.

Plain numpy: the caller reads the ratings (``movierec.store.training_data``) and hands
over arrays, so this module and the models never touch a database.

- **Each visitor is one more user.** Their user ids start at the data set's largest user
  id + 1, in arrival order, so they never clash with the data set's; the model file
  records the first one (``first_visitor_user_id``) and how many there are.
- **Only catalogue movies count**: the data set's movies, and those the operator added
  (``movierec catalog add``), which visitors' ratings give their first collaborative
  signal (they become model columns beside the data set's). Ratings of any other movie
  id are left out and counted.
- **A visitor counts from** :data:`MIN_VISITOR_RATINGS` **ratings** (on catalogue movies).
- **Bounded influence** (:func:`bound_influence`): a movie takes visitors' ratings from
  at most 5 % of all users (or as many as the data set has of it, if more), the earliest
  visitors first; the rest of those visitors' ratings still count. ``bench/shilling.py``
  measures what it buys: docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from movierec.data.arrays import BoolArray, FloatArray, IndexArray, Int64Array
from movierec.data.ratings import Ratings

#: fewest ratings (of catalogue movies) for a visitor to train the next model. Visitors
#: teach the models through pairs of movies rated together (EASE's co-occurrences, the
#: similar lists' co-ratings): one rating adds no pair, so it is left out; two add one,
#: which is what a group of visitors who love two movies together needs to make them
#: similar. A higher floor (MovieLens's releases keep users from 20 ratings; the first
#: page calls five plenty) would leave out many real visitors and stop no fake one, which
#: rates as many movies as it is told to: :func:`bound_influence` is what bounds those.
MIN_VISITOR_RATINGS = 2


@dataclass(frozen=True)
class Merged:
    """A data set's ratings plus the visitors' that count.

    ratings: the merged matrix; its columns are the data set's movies (the same ids), then
      any added movie visitors rated.
    dataset_users: rows from the data set (user ids as the data set's).
    visitors: rows from visitors (user ids ``first_visitor_user_id`` on).
    visitor_ratings: ratings those visitors add.
    left_out: what did not count and why: ``"few_ratings"`` (visitors below the
      minimum), ``"not_in_catalogue"`` (ratings of movies the data set lacks),
      ``"held_back"`` (ratings beyond a movie's cap, :func:`bound_influence`),
      ``"opted_out"`` (visitors, counted by the reader).
    """

    ratings: Ratings
    dataset_users: int
    visitors: int
    visitor_ratings: int
    first_visitor_user_id: int
    min_visitor_ratings: int
    left_out: dict[str, int] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        """What the model file's ``training`` metadata records of this merge (JSON)."""
        return {
            "dataset_users": self.dataset_users,
            "visitors": self.visitors,
            "visitor_ratings": self.visitor_ratings,
            "first_visitor_user_id": self.first_visitor_user_id,
            "min_visitor_ratings": self.min_visitor_ratings,
            "visitors_left_out": dict(self.left_out),
        }


def merge_visitors(
    dataset: Ratings,
    visitor: IndexArray,
    movie_ids: IndexArray,
    stars: FloatArray,
    *,
    catalogue: IndexArray | None = None,
    min_ratings: int = MIN_VISITOR_RATINGS,
    opted_out: int = 0,
    bound: bool = True,
) -> Merged:
    """``dataset`` plus the visitors' ratings that count (see the module doc).

    visitor: ``(n,)`` int64 visitor index of each rating (0 = the first to arrive).
    movie_ids: ``(n,)`` int64 raw movie ids. stars: ``(n,)`` float32, 0.5-5.
    catalogue: ``(m,)`` int64 every catalogue movie id (default: the data set's rated ones).
    opted_out: visitors the reader left out for opting out (only reported).
    bound: apply :func:`bound_influence` (False only to measure what it buys).
    """
    visitor = np.asarray(visitor, dtype=np.int64)
    movie_ids = np.asarray(movie_ids, dtype=np.int64)
    stars = np.asarray(stars, dtype=np.float32)
    known = dataset.movie_ids if catalogue is None else np.union1d(dataset.movie_ids, catalogue)
    in_catalogue = np.isin(movie_ids, known)
    not_in_catalogue = int((~in_catalogue).sum())
    visitor, movie_ids, stars = visitor[in_catalogue], movie_ids[in_catalogue], stars[in_catalogue]
    counts = np.bincount(visitor, minlength=int(visitor.max(initial=-1)) + 1)
    enough = counts >= min_ratings
    few = int(((counts > 0) & ~enough).sum())
    keep = enough[visitor]
    visitor, movie_ids, stars = visitor[keep], movie_ids[keep], stars[keep]
    held_back = bound_influence(visitor, movie_ids, dataset) if bound else np.zeros(0, bool)
    if held_back.any():
        kept = ~held_back
        visitor, movie_ids, stars = visitor[kept], movie_ids[kept], stars[kept]
    # number the visitors that still count 0..v-1 in arrival order
    counted, rows = np.unique(visitor, return_inverse=True)
    first_id = int(dataset.user_ids.max(initial=0)) + 1
    users, movies, values = dataset.triples()
    merged = Ratings.from_arrays(
        np.concatenate([dataset.user_ids[users], first_id + rows.reshape(-1)]),
        np.concatenate([dataset.movie_ids[movies], movie_ids]),
        np.concatenate([values, stars]),
    )
    left_out = {
        "opted_out": int(opted_out),
        "few_ratings": few,
        "not_in_catalogue": not_in_catalogue,
        "held_back": int(held_back.sum()),
    }
    return Merged(
        ratings=merged,
        dataset_users=dataset.n_users,
        visitors=int(counted.size),
        visitor_ratings=int(stars.size),
        first_visitor_user_id=first_id,
        min_visitor_ratings=int(min_ratings),
        left_out=left_out,
    )


#: a movie takes visitors' ratings from at most this share of all the users a model is
#: trained on (data set's and visitors'), or from as many visitors as the data set has
#: ratings of it, whichever is more (see :func:`bound_influence`)
MAX_VISITOR_SHARE = 0.05


def bound_influence(visitor: Int64Array, movie_ids: Int64Array, dataset: Ratings) -> BoolArray:
    """``(n,)`` bool: the visitors' ratings held back so that no crowd of visitors takes
    over a movie.

    visitor: ``(n,)`` int64 visitor index (arrival order); movie_ids: ``(n,)`` int64 (a
    movie ``dataset`` lacks has no ratings there). A movie keeps the ratings of its first
    ``cap`` visitors (in arrival order) and holds back the rest, with ``cap =
    max(n_data_set, ceil(MAX_VISITOR_SHARE * (data-set users + visitors)))``: a movie the
    data set knows well may gain as many visitors' ratings as it has, an obscure or new
    one those of 5 % of all users. Fakes' ratings of a movie beyond its cap count for
    nothing, and each fake raises the cap by only 0.05 of a rating, so a crowd of fakes
    cannot buy a movie a place in everyone's picks; an honest crowd keeps what a movie
    needs to be learned (its co-ratings with the other movies its visitors rate, up to
    the cap). The held-back visitors' other ratings still count.
    """
    n_data_set = np.bincount(dataset.matrix.indices, minlength=dataset.n_items)
    col = np.minimum(np.searchsorted(dataset.movie_ids, movie_ids), dataset.n_items - 1)
    known = dataset.movie_ids[col] == movie_ids
    users = dataset.n_users + np.unique(visitor).size
    cap = np.maximum(np.where(known, n_data_set[col], 0), int(np.ceil(MAX_VISITOR_SHARE * users)))
    order = np.lexsort((visitor, movie_ids))  # by movie, then arrival
    sorted_movies = movie_ids[order]
    first = np.searchsorted(sorted_movies, sorted_movies, side="left")
    place = np.arange(order.size) - first  # 0 for the first visitor to rate the movie
    held = np.zeros(visitor.shape, dtype=bool)
    held[order] = place >= cap[order]
    return held
