"""Content-based model: TF-IDF over each movie's genres and tags, on top of baselines.

Each movie is a document of tokens ``genre:<name>`` and ``tag:<tag>`` (lower-cased);
scikit-learn's ``TfidfVectorizer`` turns them into L2-normalised rows ``x_i``. A user's
profile is the mean of the vectors of the movies they rated, each weighted by how much
they liked it beyond the baseline:

``profile_u = sum_j (r_uj - b_uj) x_j / (n_u + profile_reg)``

and ``stars(u, i) = b_ui + scale * x_i . profile_u`` with ``b_ui = mu + b_u + b_i``
(Surprise-style ALS baselines). ``scale`` is the least-squares fit of the training
residuals on leave-one-out profile similarities (a rating never explains itself).

The model needs movie text, which ``Ratings`` does not carry: pass the catalogue with
``fit(ratings, catalog=catalog)`` or ``ContentModel().with_catalog(catalog)``. Movies the
catalogue does not describe have no content term; fitted without any catalogue the
model is its baselines alone (with a warning). After fitting, the text is not needed
again: the TF-IDF rows are saved with the model.

Meant for visitors whose movies carry little collaborative signal (few ratings), and
as a blend member.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numba import njit
from sklearn.feature_extraction.text import TfidfVectorizer

from movierec.data.arrays import (
    AnyArray,
    Float32Array,
    Float64Array,
    FloatArray,
    IndexArray,
    Int64Array,
    StrArray,
)
from movierec.data.catalog import Catalog
from movierec.data.ratings import Ratings
from movierec.models.base import Recommender, UserState
from movierec.models.baselines import als_baselines, user_baseline_bias
from movierec.models.files import ArraySpec
from movierec.models.foldin import RatedItems
from movierec.models.params import ModelParams, param

#: dense profile cells (users x vocabulary, float64) built at a time: 256 MB
PROFILE_BLOCK_CELLS = 32 * 1024 * 1024


def movie_tokens(catalog: Catalog, movie_ids: Int64Array) -> list[list[str]]:
    """One token list per movie: ``genre:<name>`` then ``tag:<tag>``, lower-cased.

    Movies the catalogue lacks get an empty list.
    """
    genres = catalog.frame["genres"].reindex(movie_ids)
    documents = []
    for movie_id, movie_genres in zip(movie_ids, genres, strict=True):
        tokens = [] if not isinstance(movie_genres, tuple | list) else list(movie_genres)
        tokens = ["genre:" + g.strip().lower() for g in tokens]
        tokens += ["tag:" + t.strip().lower() for t in catalog.tags.get(int(movie_id), [])]
        documents.append(sorted(set(tokens)))
    return documents


@njit(cache=True, nogil=True)
def sparse_row_dots(
    indptr: Int64Array,
    indices: IndexArray,
    data: Float32Array,
    dense: Float64Array,
    rows: Int64Array,
    items: Int64Array,
) -> Float64Array:
    """``(n,)`` float64: row ``items[t]`` of a CSR matrix dotted with ``dense[rows[t]]``."""
    out = np.zeros(items.shape[0])
    for t in range(items.shape[0]):
        item = items[t]
        row = rows[t]
        total = 0.0
        for p in range(indptr[item], indptr[item + 1]):
            total += data[p] * dense[row, indices[p]]
        out[t] = total
    return out


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def tfidf_rows(
    documents: list[list[str]], min_df: int, tag_weight: float
) -> tuple[sp.csr_matrix, StrArray]:
    """``(n_docs, vocab)`` float32 CSR of L2-normalised TF-IDF rows, and the vocabulary.

    Tag columns are multiplied by ``tag_weight`` before normalising. Documents whose
    tokens are all rarer than ``min_df`` (or that are empty) give zero rows.
    """
    if not any(documents):
        return sp.csr_matrix((len(documents), 0), dtype=np.float32), np.zeros(0, dtype=str)
    vectorizer = TfidfVectorizer(analyzer=_identity, min_df=min_df, norm=None, dtype=np.float64)
    try:
        rows = vectorizer.fit_transform(documents).tocsr()
    except ValueError:  # min_df prunes every token
        return sp.csr_matrix((len(documents), 0), dtype=np.float32), np.zeros(0, dtype=str)
    vocabulary = np.asarray(vectorizer.get_feature_names_out(), dtype=str)
    column_weight = np.where(np.char.startswith(vocabulary, "tag:"), tag_weight, 1.0)
    rows = rows @ sp.diags(column_weight)
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
    rows = sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ rows
    return sp.csr_matrix(rows, dtype=np.float32), vocabulary


@dataclass(frozen=True)
class ContentParams(ModelParams):
    """The typed parameters of :class:`ContentModel` (documented there)."""

    min_df: int = param(2)
    tag_weight: float = param(1.0)
    profile_reg: float = param(25.0)
    reg_user: float = param(15.0)
    reg_item: float = param(2.0)
    bias_epochs: int = param(10)


class ContentModel(Recommender):
    """TF-IDF (genres + tags) profile model with baselines.

    Parameters (defaults from ``bench/tune.py`` on a validation split of ml-100k u1.base):

    - ``min_df``: tokens on fewer movies are dropped.
    - ``tag_weight``: weight of tag columns relative to genre columns.
    - ``profile_reg``: pseudo-ratings in the profile mean's denominator (shrinks the
      profiles of users with few ratings).
    - ``reg_user`` / ``reg_item`` / ``bias_epochs``: the baseline ALS.
    """

    name: ClassVar[str] = "content"
    params_type: ClassVar[type[ModelParams]] = ContentParams
    config: ContentParams
    array_specs: ClassVar[dict[str, ArraySpec]] = {
        "text_indptr": ArraySpec("int64", ("n_items+1",)),
        "text_indices": ArraySpec("int32", ("n_text",)),
        "text_data": ArraySpec("float32", ("n_text",)),
        "vocabulary": ArraySpec("str", ("n_tokens",)),
        "scale": ArraySpec("float64", (1,)),
        "user_bias": ArraySpec("float32", ("n_users",)),
        "item_bias": ArraySpec("float32", ("n_items",)),
        **RatedItems.specs,
    }

    @property
    def needs_catalog(self) -> bool:
        """True: fit needs movie text (``fit(ratings, catalog=...)`` or ``with_catalog``)."""
        return True

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        self.item_text = sp.csr_matrix((0, 0), dtype=np.float32)  # (n_items, vocab) rows x_i
        self.vocabulary = np.zeros(0, dtype=str)  # (vocab,) token of each column
        self.scale = 0.0  # stars per unit of x_i . profile_u
        self.user_bias = np.zeros(0, dtype=np.float32)  # (n_users,) stars
        self.item_bias = np.zeros(0, dtype=np.float32)  # (n_items,) stars
        self.rated: RatedItems | None = None

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        if self.catalog is None:
            warnings.warn(
                "content model fitted without a catalogue: it has no movie text and "
                "predicts baselines only; pass fit(ratings, catalog=dataset.catalog)",
                stacklevel=3,
            )
            documents: list[list[str]] = [[] for _ in range(ratings.n_items)]
        else:
            documents = movie_tokens(self.catalog, ratings.movie_ids)
        self.item_text, self.vocabulary = tfidf_rows(
            documents, self.config.min_df, self.config.tag_weight
        )
        user_bias, item_bias = als_baselines(
            ratings,
            reg_user=self.config.reg_user,
            reg_item=self.config.reg_item,
            n_epochs=self.config.bias_epochs,
        )
        self.user_bias = user_bias.astype(np.float32)
        self.item_bias = item_bias.astype(np.float32)
        self.rated = RatedItems.from_ratings(ratings)
        self.scale = self._fit_scale(ratings)

    def _fit_scale(self, ratings: Ratings) -> float:
        """Least-squares ``scale`` of training residuals on leave-one-out similarities."""
        if self.item_text.shape[1] == 0:
            return 0.0
        users, items, stars = ratings.triples()
        weights = self._weights(users, items, stars)
        weighted = sp.csr_matrix((weights, (users, items)), shape=ratings.matrix.shape)
        own = np.asarray(self.item_text.multiply(self.item_text).sum(axis=1)).ravel()
        counts = np.bincount(users, minlength=ratings.n_users)
        feature = np.empty(weights.size, dtype=np.float64)
        # sums of w_j x_j are (n_users, vocab) dense: 162k users x thousands of tags would
        # be gigabytes at 25 M ratings, so a block of users at a time (triples are by user)
        block = max(1, PROFILE_BLOCK_CELLS // max(self.item_text.shape[1], 1))
        starts = np.searchsorted(users, np.arange(0, ratings.n_users + block, block))
        for first, (lo, hi) in enumerate(zip(starts[:-1], starts[1:], strict=True)):
            if lo == hi:
                continue
            sums = (weighted[first * block : (first + 1) * block] @ self.item_text).toarray()
            feature[lo:hi] = self._row_dots(sums, users[lo:hi] - first * block, items[lo:hi])
        feature -= weights * own[items]
        feature /= counts[users] - 1 + self.config.profile_reg
        denom = float(feature @ feature)
        return float(feature @ weights / denom) if denom > 0 else 0.0

    def _weights(self, users: IndexArray, items: IndexArray, stars: FloatArray) -> Float64Array:
        """``r - (mu + b_u + b_i)`` of training ratings, float64."""
        base = self.global_mean + self.user_bias[users] + self.item_bias[items]
        weights: Float64Array = np.subtract(stars, base.astype(np.float64), dtype=np.float64)
        return weights

    def _row_dots(self, dense: Float64Array, rows: IndexArray, items: IndexArray) -> Float64Array:
        """``(n,)`` float64 ``x_{items[t]} . dense[rows[t]]``."""
        text = self.item_text
        return sparse_row_dots(
            text.indptr.astype(np.int64), text.indices, text.data,
            np.ascontiguousarray(dense, dtype=np.float64),
            rows.astype(np.int64), items.astype(np.int64),
        )  # fmt: skip

    def _training_profiles(self, users: Int64Array) -> Float64Array:
        """``(len(users), vocab)`` float64 profiles of training users."""
        rated = self._rated_items()
        users = np.asarray(users, dtype=np.int64)
        counts = np.diff(rated.indptr)[users]
        take = (
            np.concatenate([np.arange(rated.indptr[u], rated.indptr[u + 1]) for u in users])
            if users.size
            else np.zeros(0, np.int64)
        )  # only these users' ratings: a full (n_users, n_items) table is 25 M entries
        owners = np.repeat(users, counts)
        items = rated.items[take]
        weights = self._weights(owners, items, rated.stars[take].astype(np.float64))
        indptr = np.r_[0, np.cumsum(counts)]
        weighted = sp.csr_matrix((weights, items, indptr), (users.size, self.n_items))
        sums: Float64Array = (weighted @ self.item_text).toarray()
        return sums / (counts + self.config.profile_reg)[:, None]

    def _profile(self, items: Int64Array, residual: FloatArray) -> Float32Array:
        """``(vocab,)`` float32 ``sum r_j x_j / (n + profile_reg)``."""
        total: Float64Array = self.item_text[items].T @ residual.astype(np.float64)
        return (total / (items.size + self.config.profile_reg)).astype(np.float32)

    def _predict(self, users: Int64Array, items: Int64Array) -> Float64Array:
        known_u, known_i = users >= 0, items >= 0
        est = np.full(users.shape, self.global_mean, dtype=np.float64)
        est[known_u] += self.user_bias[users[known_u]]
        est[known_i] += self.item_bias[items[known_i]]
        both = np.flatnonzero(known_u & known_i)
        if both.size == 0 or self.item_text.shape[1] == 0:
            return est
        distinct, inverse = np.unique(users[both], return_inverse=True)
        block = max(1, PROFILE_BLOCK_CELLS // max(self.item_text.shape[1], 1))
        for first in range(0, distinct.size, block):  # (block, vocab) dense profiles at a time
            pairs = np.flatnonzero((inverse >= first) & (inverse < first + block))
            profiles = self._training_profiles(distinct[first : first + block])
            est[both[pairs]] += self.scale * self._row_dots(
                profiles, inverse[pairs] - first, items[both[pairs]]
            )
        return est

    def _state(self, items: Int64Array, stars: Float32Array, bias: float) -> UserState:
        residual = stars - (self.global_mean + bias + self.item_bias[items]).astype(np.float64)
        return UserState(
            items=items, stars=stars, factors=self._profile(items, residual), bias=bias
        )

    def _fold_in(self, items: Int64Array, stars: Float32Array) -> UserState:
        """Baseline bias ``sum (r - mu - b_i) / (reg_user + n)``, then the profile."""
        bias = user_baseline_bias(
            stars - self.global_mean - self.item_bias[items], self.config.reg_user
        )
        return self._state(items, stars, bias)

    def _user_state(self, user: int) -> UserState:
        items, stars = self._rated_items().row(user)
        return self._state(items, stars, float(self.user_bias[user]))

    def _score(self, state: UserState) -> Float32Array:
        """``(n_items,)`` float32: ``mu + b_u + b_i + scale X profile``; unclipped."""
        scores = self.global_mean + state.bias + self.item_bias.astype(np.float64)
        if self.item_text.shape[1]:
            scores += self.scale * (self.item_text @ np.asarray(state.factors, np.float64))
        return scores.astype(np.float32)

    def item_vectors(self) -> Float32Array | None:
        """``(n_items, vocab)`` float32 TF-IDF rows, or None without any movie text."""
        self._check_fitted()
        if self.item_text.shape[1] == 0:
            return None
        dense: Float32Array = self.item_text.toarray()
        return dense

    def item_similarity(self, movie_id: int) -> Float32Array:
        """``(n_items,)`` float32 cosine of TF-IDF rows (they are L2-normalised), from the
        sparse rows: no dense ``(n_items, vocab)`` copy as ``item_vectors`` makes."""
        self._check_fitted()
        item = int(self.items_of([movie_id])[0])
        if self.item_text.shape[1] == 0:
            return np.zeros(self.n_items, dtype=np.float32)
        cosine = self.item_text @ self.item_text[item].T
        return np.asarray(cosine.toarray(), dtype=np.float32).ravel()

    def _arrays(self) -> dict[str, AnyArray]:
        text = self.item_text
        return {
            "text_indptr": text.indptr.astype(np.int64),
            "text_indices": text.indices.astype(np.int32),
            "text_data": text.data.astype(np.float32),
            "vocabulary": self.vocabulary.astype(str),
            "scale": np.asarray([self.scale], dtype=np.float64),
            "user_bias": self.user_bias,
            "item_bias": self.item_bias,
            **self._rated_items().arrays(),
        }

    def _set_arrays(self, arrays: dict[str, AnyArray]) -> None:
        self.vocabulary = arrays["vocabulary"].astype(str)
        self.item_text = sp.csr_matrix(
            (arrays["text_data"], arrays["text_indices"], arrays["text_indptr"]),
            shape=(self.n_items, self.vocabulary.size),  # one column per token
            dtype=np.float32,
        )
        self.item_text.check_format(full_check=True)  # columns within the vocabulary
        self.scale = float(arrays["scale"][0])
        self.user_bias = arrays["user_bias"].astype(np.float32)
        self.item_bias = arrays["item_bias"].astype(np.float32)
        self.rated = RatedItems.from_arrays(arrays)
