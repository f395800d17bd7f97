"""Movies like a given one: the model's collaborative similarity blended with content.

For a movie ``a`` and every candidate ``j`` of the catalogue:

``score_j = w_j * collab_j + (1 - w_j) * content_j``,
``w_j = COLLAB_MAX * m / (m + SHRINK)``, ``m = min(n_a, n_j)``

- ``collab``: the model's public :meth:`~movierec.models.Recommender.item_similarity`
  (``ease``: shrunk cosine of co-rating counts; factor models: cosine of item factors),
  divided by its largest value over the candidates so that every model speaks on the
  same 0-1 scale as the content term;
- ``content``: cosine of TF-IDF rows over each movie's genres and tags (tags.csv), as
  :mod:`movierec.models.content` builds them;
- ``n``: rating counts from the catalogue (or the model's training counts where larger:
  a model trained with visitors' ratings, ``train --with-visitors``, has seen more). A
  pair with few ratings between them has a noisy collaborative similarity, so it leans
  on content (at ``m = SHRINK`` the model has half its full weight); a movie the model
  does not know is matched on content alone. Even for the most-rated pairs content keeps
  ``1 - COLLAB_MAX``: co-rating alone puts the era's blockbusters beside anything of the
  era (*Toy Story* -> *Independence Day, Star Wars*), and a share of genres and tags is
  what brings *Toy Story 2, A Bug's Life, Monsters, Inc.* up.

Candidates are movies with at least ``min_ratings`` ratings (fewer: nobody has seen
them) and a positive score; ``TIEBREAK * log1p(n_j)`` lets the better known of two
equally similar movies come first. A year preference (``old``: released before
``split_year``, ``new``: from it on, as the picks apply it; a movie without a year is
neither) only leaves candidates out: the order of those kept does not change.

Why blend here and not inside a model: the collaborative part is the model's own
(``item_similarity``, so no caller reads a model's arrays), but content needs the
catalogue's text, which a loaded model does not carry; this module is the layer above
models that has both. Per catalogue the TF-IDF rows are built once (about 0.3 s for
ml-latest-small); a look-up is then one sparse row product, one model similarity and a
partial sort (1-4 ms with ``ease`` on ml-latest-small, on the shared 2-core machine).

``SHRINK`` and ``COLLAB_MAX`` were chosen with ``bench/similar.py --validate`` (validation
users carved out of the training users, seeds 0 and 1, pooled; the test users never
looked at), ``ease``. The page's previous lists (EASE's raw ``B`` row) gave co-liked@10
0.284, genre coherence 0.259, popularity lift 0.290 with ``B`` over movies with 50+
ratings, 0.326 / 0.290 / 0.434 over movies with 20+ (``min_count`` 20):

| COLLAB_MAX | SHRINK | co-liked@10 | genre coherence | popularity lift |
|---:|---:|---:|---:|---:|
| 0.7 | 10 | 0.292 | 0.630 | 0.101 |
| **0.7** | **5** | **0.325** | **0.584** | **0.277** |
| 0.85 | 10 | 0.326 | 0.582 | 0.247 |
| 0.85 | 5 | 0.363 | 0.510 | 0.431 |

0.7 / 5: co-liked as high as the old lists' with either ``B``, coherence more than
double, less drift to famous movies. 0.85 / 10 scores the same but gives *Toy Story* ->
*Jurassic Park, Independence Day, Forrest Gump, Star Wars* first, the lists the change
set out to fix; co-liked rewards that drift (famous movies are liked by most people),
so it is held level, not maximised.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movierec.data import Catalog
from movierec.data.arrays import BoolArray, Float64Array, Int64Array
from movierec.inputs import year_preference
from movierec.models import Recommender
from movierec.models.base import top_indices
from movierec.models.content import movie_tokens, tfidf_rows

#: fewest ratings a movie needs to be offered as similar (fewer: noisy neighbours)
SIMILAR_MIN_RATINGS = 5
#: pair rating count at which the collaborative weight is half of ``COLLAB_MAX``
SHRINK = 5.0
#: the collaborative weight for movies with many ratings (content keeps the rest)
COLLAB_MAX = 0.7
#: tokens on fewer movies are dropped from the content rows
MIN_DF = 2
#: weight of tag columns relative to genre columns in the content rows
TAG_WEIGHT = 1.0
#: weight of ``log1p(n_j)`` added to break ties (between equally similar movies only)
TIEBREAK = 1e-4
#: "old" is before this release year, "new" from it on: ``recommend.DEFAULT_SPLIT_YEAR``
#: (a layer above; tests/test_similar.py checks the two agree)
SPLIT_YEAR = 2010


def content_rows(catalog: Catalog, movie_ids: Int64Array) -> sp.csr_matrix:
    """``(len(movie_ids), vocab)`` float32 CSR of L2-normalised TF-IDF rows over genres
    and tags; a movie with neither gets a zero row."""
    documents = [
        [t for t in tokens if t != "genre:(no genres listed)"]
        for tokens in movie_tokens(catalog, movie_ids)
    ]
    rows, _ = tfidf_rows(documents, MIN_DF, TAG_WEIGHT)
    return rows


class SimilarMovies:
    """Similar movies over one catalogue, from one fitted model (see the module doc).

    model: a fitted :class:`~movierec.models.Recommender`; only its public methods are
    used. catalog: the movies and their rating counts (``n_ratings``) and tags.
    """

    def __init__(
        self,
        model: Recommender,
        catalog: Catalog,
        *,
        shrink: float = SHRINK,
        collab_max: float = COLLAB_MAX,
        min_ratings: int = SIMILAR_MIN_RATINGS,
    ) -> None:
        self.model = model
        self.catalog = catalog
        self.shrink = float(shrink)
        self.collab_max = float(collab_max)
        frame = catalog.frame
        #: (n_movies,) int64 raw ids of every catalogue movie, in catalogue order
        self.movie_ids = frame.index.to_numpy(np.int64)
        self._position = pd.Index(self.movie_ids)
        # the model's columns -> catalogue positions (-1: not in the catalogue)
        model_ids = np.asarray(model.movie_ids, dtype=np.int64)
        where = self._position.get_indexer(model_ids)
        self._model_cols = np.flatnonzero(where >= 0)  # (k,) model columns in the catalogue
        self._model_rows = where[self._model_cols]  # (k,) their catalogue positions
        #: (n_movies,) float64 rating counts: the catalogue's, or the model's training
        #: counts where larger (a model trained with visitors' ratings knows more)
        self.counts = frame["n_ratings"].fillna(0).to_numpy(np.float64, copy=True)
        if model.item_counts is not None:
            trained = model.item_counts[self._model_cols].astype(np.float64)
            self.counts[self._model_rows] = np.maximum(self.counts[self._model_rows], trained)
        self.allowed = self.counts >= min_ratings  # (n_movies,) bool
        #: (n_movies,) float64 release years, NaN where unknown
        self.years = frame["year"].astype("Float64").fillna(np.nan).to_numpy(np.float64)
        self.text = content_rows(catalog, self.movie_ids)  # (n_movies, vocab)
        self._text_t = self.text.T.tocsr()  # (vocab, n_movies): one row product per look-up
        self.tiebreak = TIEBREAK * np.log1p(self.counts)

    def scores(self, movie_id: int) -> Float64Array:
        """``(n_movies,)`` float64 blended similarity of every catalogue movie to
        ``movie_id`` (catalogue order; the movie itself included). ``KeyError`` if the
        catalogue lacks it."""
        a = int(self._position.get_loc(int(movie_id)))
        content = np.asarray((self.text[a] @ self._text_t).toarray(), dtype=np.float64).ravel()
        collab = np.zeros(self.movie_ids.size, dtype=np.float64)
        if self.model.has_movie(movie_id):
            similarity = self.model.item_similarity(movie_id)
            collab[self._model_rows] = similarity[self._model_cols]
            collab[a] = 0.0
            top = float(collab[self.allowed].max(initial=0.0))
            collab = collab / top if top > 0 else np.zeros_like(collab)
        pair = np.minimum(self.counts[a], self.counts) if self.model.has_movie(movie_id) else 0.0
        weight = pair / (pair + self.shrink) if self.shrink > 0 else np.ones_like(self.counts)
        weight = self.collab_max * weight
        return weight * collab + (1.0 - weight) * content

    def similar(
        self,
        movie_id: int,
        n: int,
        exclude: Collection[int] = (),
        *,
        year: str = "any",
        split_year: int = SPLIT_YEAR,
    ) -> list[int]:
        """Up to ``n`` movieIds most like ``movie_id``, best first; never itself or
        ``exclude``, only movies with a positive score and of the ``year`` preference
        (``old``: released before ``split_year``, ``new``: from it on, ``any``). Empty for
        a movie the catalogue lacks; ``InvalidInput`` for an unknown ``year``."""
        year = year_preference(year)
        if int(movie_id) not in self._position or n <= 0:
            return []
        score = self.scores(movie_id)
        keep = self.allowed & (score > 0) & self._of_year(year, split_year)
        keep[self._position.get_loc(int(movie_id))] = False
        if exclude:
            banned = self._position.get_indexer(np.fromiter(exclude, np.int64, len(exclude)))
            keep[banned[banned >= 0]] = False
        candidates = np.flatnonzero(keep)
        ranked = candidates[top_indices(score[candidates] + self.tiebreak[candidates], n)]
        return [int(m) for m in self.movie_ids[ranked]]

    def _of_year(self, year: str, split_year: int) -> BoolArray:
        """``(n_movies,)`` bool: released within the year preference (NaN: never old or new)."""
        mask: BoolArray
        if year == "old":
            mask = self.years < split_year  # NaN compares False
        elif year == "new":
            mask = self.years >= split_year
        else:
            mask = np.ones(self.years.size, dtype=bool)
        return mask
