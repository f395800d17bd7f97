"""Picks in the visitor's genre mix: one re-ranking step after every model's ranking.

A model ranks movies by how likely the visitor is to rate and like them; on MovieLens that
favours the canon, and five ratings say little about the genres someone watches. The
picks are therefore re-ordered after the model, the same way for every model (``ease``,
``svd``, ``nmf``, ``popular``), in the web app, the library and ``movierec evaluate``
(:func:`personal_order` is the one call):

1. The model's first ``keep`` picks stay first (what the visitor is most likely to love).
2. The rest are chosen greedily among the model's ``pool`` best candidates (Steck 2018,
   "Calibrated recommendations"): each next pick maximises ``(1 - weight) * score -
   weight * KL(p || q~) - hate_weight * hate``, with ``score`` the model's rank score
   scaled to 0-1 over the pool, ``q~ = 0.99 q + 0.01 p`` the genre mix of the picks so
   far plus the candidate, and ``p`` the genre mix of the movies the visitor liked
   (:data:`~movierec.models.base.LIKED_FROM` stars or more; none liked: no KL term).
   ``hate`` is how much of the candidate's genres the visitor disliked more than liked
   (genre mix of the dislikes minus that of the likes, where positive). Shrinking ``p``
   towards the genre mix of all ratings was tried and left out: on validation users it
   raised the miscalibration ``movierec evaluate`` measures (against the genres of the
   ratings revealed) and let the canon back into a children's-movie lover's list.
3. Genre mixes weigh each movie's genres ``1 / |genres|`` (Steck's ``p(g|i)``).

Greedy choice is prefix-stable: the first 5 of 10 picks are the 5 picks ("show 5 more"
adds below, never reshuffles), as long as ``n`` stays within the pool.

Defaults chosen on validation users carved out of ml-latest-small's training users
(``bench/personal_picks.py --validate``, seeds 1-2; the figures are in
:mod:`movierec.models.ease`'s doc): ``weight`` 0.6 / 0.7 gave NDCG@10 0.417 / 0.414 and
miscalibration 0.526 / 0.485, ``keep`` 5 / 4 the same within 0.001, ``pool`` 30 / 40
NDCG 0.416 / 0.414 and 169 / 170 distinct movies. Cost: about 0.2 ms of CPU a request
for 5 picks (``bench/latency.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data.arrays import Float64Array, FloatArray, IndexArray, Int64Array
from movierec.data.catalog import Catalog
from movierec.models.base import DISLIKE_BELOW, LIKED_FROM, Recommender, top_indices

#: ``q~ = (1 - SMOOTHING) q + SMOOTHING p`` keeps the KL finite (Steck's alpha)
SMOOTHING = 0.01
#: the pool of a model that ranks every visitor alike: its 200 best hold the crowd's
#: favourites of every genre (the top 40 of ``popular`` are dramas and crime films)
ALIKE_POOL = 200


@dataclass(frozen=True)
class Calibration:
    """How strongly picks follow the visitor's genre mix (module doc); ``weight`` 0: off.

    weight: Steck's lambda, 0-1. keep: leading picks left in the model's order.
    pool: the model's best candidates the rest are chosen from. hate_weight: penalty per
    unit of disliked genre.
    """

    weight: float = 0.7
    keep: int = 4
    pool: int = 40
    hate_weight: float = 1.0

    @classmethod
    def off(cls) -> Calibration:
        return cls(weight=0.0)

    @classmethod
    def of(cls, model: Recommender) -> Calibration:
        """The settings for ``model``: its ``genre_weight`` parameter where it declares
        one (:class:`~movierec.models.base.GenreWeightParams`), the default weight otherwise.
        A model that ranks every visitor alike (``popular``) keeps none of its picks
        first and offers a wider pool: the crowd's favourites in the visitor's genres."""
        weight = float(model.params.get("genre_weight", cls.weight))
        if model.ranks_alike:
            return cls(weight=weight, keep=0, pool=ALIKE_POOL)
        return cls(weight=weight)


class GenreMix:
    """The genres of a model's items, for :func:`personal_order`.

    genres: ``(n_items, n_genres)`` float64 ``p(g|i)`` (rows sum to 1, or 0 for a movie
    without genres).
    """

    def __init__(self, genres: FloatArray) -> None:
        self.genres = np.asarray(genres, dtype=np.float64)

    @classmethod
    def of(cls, catalog: Catalog, movie_ids: Int64Array) -> GenreMix:
        """The mix of the items ``movie_ids`` (a model's columns; unknown movies: none)."""
        frame = catalog.frame
        names = sorted({g for genres in frame["genres"] for g in genres})
        column = {g: j for j, g in enumerate(names)}
        out = np.zeros((len(movie_ids), len(names)))
        for i, genres in enumerate(frame["genres"].reindex(movie_ids)):
            if isinstance(genres, tuple | list) and genres:
                out[i, [column[g] for g in genres]] = 1.0 / len(genres)
        return cls(out)

    def target(self, items: Int64Array, stars: FloatArray) -> tuple[Float64Array, Float64Array]:
        """``(p, hate)``, each ``(n_genres,)``, for a visitor who gave ``stars`` to
        ``items`` (module doc, step 2); ``p`` is all zeros if they liked nothing."""
        stars = np.asarray(stars, dtype=np.float64)
        liked = self.genres[items[stars >= LIKED_FROM]].sum(axis=0)
        disliked = self.genres[items[stars < DISLIKE_BELOW]].sum(axis=0)
        target = liked / max(float(liked.sum()), 1e-12)
        hate = np.maximum(disliked / max(float(disliked.sum()), 1e-12) - target, 0.0)
        return target, hate


def personal_order(
    scores: FloatArray,
    candidates: IndexArray,
    items: IndexArray,
    stars: FloatArray,
    n: int,
    mix: GenreMix | None,
    settings: Calibration = Calibration(),  # noqa: B008 (frozen)
    first: int | None = None,
) -> Int64Array:
    """``(min(n, len(candidates)),)`` int64 picks among ``candidates``, best first.

    scores: ``(n_items,)`` the model's rank scores; candidates: the item indices that may
    be picked; items / stars: the visitor's ratings (item indices, stars); mix: the
    genres of the model's items (None, or ``settings.weight`` 0: the model's order).
    first: only the first ``first`` of the ``n`` picks, the same as the ``n``'s first
    (each greedy step depends only on the steps before it; the pool is ``n``'s).
    """
    first = n if first is None else min(first, n)
    columns = np.asarray(candidates, dtype=np.int64)
    values = scores[columns]
    if mix is None or settings.weight <= 0 or n <= settings.keep:
        return columns[top_indices(values, first)]
    pool = columns[top_indices(values, max(settings.pool, n))]
    if pool.size <= settings.keep:
        return pool[:first]
    target, hate = mix.target(np.asarray(items, dtype=np.int64), stars)
    s = scores[pool].astype(np.float64)
    low, high = float(s[-1]), float(s[0])
    s = (s - low) / (high - low) if high > low else np.zeros_like(s)
    genres = mix.genres[pool]  # (pool, n_genres)
    # fixed per candidate: the score side and the disliked-genre penalty
    base = (1.0 - settings.weight) * s - settings.hate_weight * (genres @ hate)
    has = target > 0
    p = target[has]  # KL(p || q~) = sum p log p - sum p log q~ over the liked genres
    liked = (1.0 - SMOOTHING) * genres[:, has]  # (pool, liked genres)
    so_far = liked[: settings.keep].sum(axis=0)
    chosen = list(range(settings.keep))
    taken = np.zeros(pool.size, dtype=bool)
    taken[: settings.keep] = True
    for size in range(settings.keep + 1, min(first, pool.size) + 1):
        q = (so_far[None, :] + liked) / size + SMOOTHING * p[None, :]
        objective = base + settings.weight * (np.log(q) @ p)  # - weight * KL + const
        objective[taken] = -np.inf
        best = int(np.argmax(objective))
        chosen.append(best)
        taken[best] = True
        so_far += liked[best]
    return pool[np.asarray(chosen[:first], dtype=np.int64)]
