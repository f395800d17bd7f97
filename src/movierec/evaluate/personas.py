"""Simulated visitors who love one genre and hate another, built from the data.

Example::

    from movierec.evaluate.personas import genre_personas, taste_shares

    personas = genre_personas(train, catalog)  # 90 personas: ordered pairs of 10 genres
    tops = [my_top_10(p.ratings) for p in personas]  # raw movieIds, best first
    loved, hated = taste_shares(tops, personas, catalog)

A persona rates ``n_loved`` well-known movies of its loved genre 5 stars and ``n_hated``
of its hated genre 1 star; a recommender that listens puts the loved genre in the top 10
and keeps the hated one out. The movies come from the ``pool`` most-rated training movies,
so every model knows them and a visitor of the web app could have rated them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import permutations
from typing import Any

import numpy as np

from movierec.data.ratings import Ratings

LOVED_STARS = 5.0
HATED_STARS = 1.0
N_GENRES = 10
POOL = 300

#: a Catalog (``frame["genres"]``), or a mapping or callable ``movieId -> genre names``
GenreSource = Any


@dataclass(frozen=True)
class Persona:
    """One simulated visitor.

    ratings: raw movieId -> stars (loved movies ``LOVED_STARS``, hated ``HATED_STARS``);
    every loved movie is in ``loved_genre`` and not in ``hated_genre``, and vice versa.
    """

    loved_genre: str
    hated_genre: str
    ratings: dict[int, float] = field(hash=False)

    @property
    def loved(self) -> list[int]:
        """The raw movieIds rated ``LOVED_STARS``."""
        return [m for m, s in self.ratings.items() if s == LOVED_STARS]

    @property
    def hated(self) -> list[int]:
        """The raw movieIds rated ``HATED_STARS``."""
        return [m for m, s in self.ratings.items() if s == HATED_STARS]


def movie_genres(source: GenreSource, movie_ids: Iterable[int]) -> list[frozenset[str]]:
    """The genre set of each raw movieId (empty for a movie the source does not know).

    source: a :class:`~movierec.data.catalog.Catalog` (its ``frame["genres"]``), a mapping
    ``movieId -> genre names`` or a callable ``movieId -> genre names``.
    """
    ids = [int(m) for m in movie_ids]
    frame = getattr(source, "frame", None)
    if frame is not None:  # a Catalog: one vectorised look-up
        genres = frame["genres"].reindex(ids)
        return [frozenset(g) if isinstance(g, tuple | list) else frozenset() for g in genres]
    get: Callable[[int], Collection[str] | None]
    get = source if callable(source) else source.get
    return [frozenset(get(m) or ()) for m in ids]


def genre_personas(
    train: Ratings,
    catalog_or_genres: GenreSource,
    n_loved: int = 8,
    n_hated: int = 6,
    genres: Sequence[str] | None = None,
    seed: int = 0,
    pool: int = POOL,
) -> list[Persona]:
    """One persona per ordered pair of distinct genres: ``len(genres) * (len(genres) - 1)``
    (90 for the default 10).

    train: the ratings the personas are drawn from (popularity and genre ranking).
    catalog_or_genres: genres of the movies (see :func:`movie_genres`).
    genres: the genres to pair; default the ``N_GENRES`` genres with most training
        ratings (ties by name).
    pool: loved and hated movies are drawn from the ``pool`` most-rated training movies
        (ties: lower movieId). Loved: ``n_loved`` of those in the loved genre and not in
        the hated one; hated: ``n_hated`` in the hated genre and not in the loved one (all
        of them when fewer are eligible; a pair with no eligible loved or hated movie is
        left out).
    seed: each pair draws from ``numpy.random.default_rng((seed, i, j))``, ``i, j`` the
        genres' positions in ``genres``, so one persona does not depend on the others.

    Personas come in the order of ``itertools.permutations(genres, 2)``.
    """
    counts = train.item_counts()
    item_genres = movie_genres(catalog_or_genres, train.movie_ids)
    if genres is None:
        per_genre: dict[str, int] = {}
        for item_set, count in zip(item_genres, counts.tolist(), strict=True):
            for g in item_set:
                per_genre[g] = per_genre.get(g, 0) + count
        genres = sorted(per_genre, key=lambda g: (-per_genre[g], g))[:N_GENRES]
    genres = list(genres)
    popular = np.lexsort((train.movie_ids, -counts))[:pool]
    popular = popular[counts[popular] > 0]
    movie_ids = train.movie_ids
    personas = []
    position = {g: i for i, g in enumerate(genres)}
    for loved_genre, hated_genre in permutations(genres, 2):
        loved_pool = [i for i in popular if _only(item_genres[i], loved_genre, hated_genre)]
        hated_pool = [i for i in popular if _only(item_genres[i], hated_genre, loved_genre)]
        if not loved_pool or not hated_pool:
            continue
        rng = np.random.default_rng((seed, position[loved_genre], position[hated_genre]))
        loved = rng.choice(loved_pool, size=min(n_loved, len(loved_pool)), replace=False)
        hated = rng.choice(hated_pool, size=min(n_hated, len(hated_pool)), replace=False)
        ratings = {int(movie_ids[i]): LOVED_STARS for i in loved}
        ratings.update({int(movie_ids[i]): HATED_STARS for i in hated})
        personas.append(Persona(loved_genre, hated_genre, ratings))
    return personas


def taste_shares(
    top_lists_movie_ids: Sequence[Sequence[int]],
    personas: Sequence[Persona],
    genres_of: GenreSource,
    k: int = 10,
) -> tuple[float, float]:
    """``(loved_share, hated_share)``: over personas, the mean share (0-1) of the first
    ``k`` movies of each persona's list that are in its loved / hated genre.

    top_lists_movie_ids: one list of raw movieIds per persona (same order), best first.
    genres_of: genres of the movies (see :func:`movie_genres`). Empty lists are left out;
    a list shorter than ``k`` is a share of its length. nan if no list is left.
    """
    if len(top_lists_movie_ids) != len(personas):
        raise ValueError(f"{len(top_lists_movie_ids)} lists for {len(personas)} personas")
    tops = [[int(m) for m in list(top)[:k]] for top in top_lists_movie_ids]
    listed = sorted({m for top in tops for m in top})
    lookup = dict(zip(listed, movie_genres(genres_of, listed), strict=True))
    loved, hated = [], []
    for top, persona in zip(tops, personas, strict=True):
        if not top:
            continue
        loved.append(np.mean([persona.loved_genre in lookup[m] for m in top]))
        hated.append(np.mean([persona.hated_genre in lookup[m] for m in top]))
    if not loved:
        return float("nan"), float("nan")
    return float(np.mean(loved)), float(np.mean(hated))


def _only(item_genres: frozenset[str], wanted: str, unwanted: str) -> bool:
    return wanted in item_genres and unwanted not in item_genres
