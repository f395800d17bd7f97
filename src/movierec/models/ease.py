"""EASE item-item relevance for top-N, with a biased-MF member for the stars shown.

Top-N (``rank``) and predicted stars (``score``) come from two parts fitted together:

- **Relevance** (Steck 2019, "Embarrassingly Shallow Autoencoders"): on the binary
  user x movie matrix ``X`` ("has rated", whatever the stars), restricted to the
  ``kept`` movies with at least ``min_count`` training ratings (at most ``max_items``,
  most-rated first), the closed form ``P = (X'X + l2 I)^-1``,
  ``B = I - P diag(1 / diag(P))``: ``B[i, j]`` is how much having rated ``i`` says a user
  rates ``j`` (``diag(B) = 0``, so no movie explains itself). A user who gave ``stars`` to
  ``items`` gets relevance ``s = w @ B[items]`` with ``w = stars - like_offset``: a movie
  rated above the offset pulls its companions up, one rated below it ("seen, but
  disliked") pushes them down, in proportion. ``popularity * log1p(n_j) / log1p(n_max)``
  (``n_j`` training ratings of ``j``) is added: a tie-breaker, and the whole ranking for a
  visitor who rated nothing.
- **Stars**: a :class:`~movierec.models.svd.SVD` member fitted on the same ratings gives
  ``predict``, ``score`` and the fold-in of a visitor's factors.

``rank = s * (stars / 5) ** star_power`` where ``s > 0`` (liked-and-likely movies rise;
a movie the user is predicted to dislike sinks), ``s`` itself where ``s <= 0``; movies
outside ``kept`` rank below every kept one, by predicted stars.

Fold-in costs the member's ridge solve plus, when ranking, a weighted sum of one row of
``B`` per rated movie (``(m,)`` each, ``m`` = kept movies).

Defaults chosen by ``bench/onboarding_tune.py``: the onboarding protocol (15 of the 50
most-rated movies shown, about 5 ratings revealed) on validation users carved out of
ml-latest-small's training users only; there NDCG@10 0.438 against ``popular``'s 0.265.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from movierec.data.ratings import Ratings
from movierec.models.base import STAR_MAX, ArraySpec, Recommender, UserState
from movierec.models.foldin import check_param
from movierec.models.svd import SVD

#: member (SVD) parameters this model passes through, with SVD's defaults
MEMBER_PARAMS = ("n_factors", "n_epochs", "lr_all", "reg_all")
MEMBER_PREFIX = "svd_"


def kept_items(counts: np.ndarray, min_count: int, max_items: int) -> np.ndarray:
    """``(m,)`` int64 sorted indices of the items with ``counts >= min_count``; at most
    ``max_items`` of them, the most counted first (ties: lower index)."""
    counts = np.asarray(counts, dtype=np.int64)
    eligible = np.flatnonzero(counts >= min_count)
    if eligible.size > max_items:
        order = np.lexsort((eligible, -counts[eligible]))
        eligible = np.sort(eligible[order[:max_items]])
    return eligible.astype(np.int64)


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """``(m, m)`` float64 EASE item-item weights ``B = I - P diag(1 / diag(P))``.

    gram: ``(m, m)`` ``X'X`` of the (binary) interaction matrix; ``P = (gram + l2 I)^-1``.
    ``B`` minimises ``||X - X B||^2 + l2 ||B||^2`` subject to ``diag(B) = 0``.
    """
    m = gram.shape[0]
    if m == 0:
        return np.zeros((0, 0), dtype=np.float64)
    regularised = np.array(gram, dtype=np.float64)
    regularised[np.diag_indices(m)] += l2
    precision = np.linalg.inv(regularised)
    weights = precision / -np.diag(precision)[None, :]
    weights[np.diag_indices(m)] = 0.0
    return weights


def weighted_rows(item_item: np.ndarray, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(m,)`` float64 ``weights @ item_item[rows]``.

    Summed row by row (``r`` axpys of length ``m``) rather than as a matrix-vector
    product, which BLAS may hand to its thread pool (see ``bench/README.md``).
    """
    out = np.zeros(item_item.shape[1], dtype=np.float64)
    for row, weight in zip(rows.tolist(), weights.tolist(), strict=True):
        out += weight * item_item[row]
    return out


class EASE(Recommender):
    """EASE relevance x predicted-stars ranking; stars from a biased-MF member.

    Parameters (see the module doc):

    - ``l2``: ridge weight ``lambda`` of the item-item regression.
    - ``min_count`` / ``max_items``: which movies the item-item matrix covers.
    - ``like_offset``: stars at which a rated movie neither pulls nor pushes.
    - ``star_power``: exponent of ``stars / 5`` multiplying positive relevance (0: off).
    - ``popularity``: weight of the normalised log rating count added to relevance.
    - ``n_factors``, ``n_epochs``, ``lr_all``, ``reg_all``: the SVD member's.
    """

    name: ClassVar[str] = "ease"
    defaults: ClassVar[dict[str, Any]] = {
        "l2": 500.0,
        "min_count": 50,
        "max_items": 5000,
        "like_offset": 1.5,
        "star_power": 3.0,
        "popularity": 0.01,
        **{k: SVD.defaults[k] for k in MEMBER_PARAMS},
    }
    #: plus the SVD member's arrays, prefixed ``svd.``
    array_specs: ClassVar[dict[str, ArraySpec]] = {
        "kept": ArraySpec("int64", ("n_kept",)),
        "item_item": ArraySpec("float32", ("n_kept", "n_kept")),
        "popularity": ArraySpec("float32", ("n_items",)),
    }

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        check_param(self.params, "l2", positive=True)
        check_param(self.params, "min_count", integer=True)
        check_param(self.params, "max_items", integer=True, positive=True)
        for name in ("like_offset", "star_power", "popularity"):
            check_param(self.params, name)
        self.member = self._new_member()  # bad member parameters fail here
        self.kept = np.zeros(0, dtype=np.int64)  # (m,) item indices covered by B
        self.item_item = np.zeros((0, 0), dtype=np.float32)  # (m, m) B
        self.popularity = np.zeros(0, dtype=np.float32)  # (n_items,) log1p(n)/log1p(n_max)
        self._position = np.zeros(0, dtype=np.int64)  # (n_items,) row in B, -1 if not kept

    def _new_member(self) -> SVD:
        return SVD(seed=self.seed, **{k: self.params[k] for k in MEMBER_PARAMS})

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        self.member = self._new_member().fit(ratings, progress=progress)
        counts = ratings.item_counts()
        kept = kept_items(counts, int(self.params["min_count"]), int(self.params["max_items"]))
        seen = ratings.matrix[:, kept].astype(bool).astype(np.float64)  # (n_users, m) binary
        gram = sp.csr_matrix(seen.T @ seen).toarray()
        weights = ease_weights(gram, float(self.params["l2"]))
        log_counts = np.log1p(counts.astype(np.float64))
        self._set_relevance(
            kept,
            weights.astype(np.float32),
            (log_counts / max(float(log_counts.max(initial=0.0)), 1e-12)).astype(np.float32),
        )

    def _set_relevance(self, kept: np.ndarray, item_item: np.ndarray, pop: np.ndarray) -> None:
        self.kept = np.asarray(kept, dtype=np.int64)
        self.item_item = np.ascontiguousarray(item_item, dtype=np.float32)
        self.popularity = np.asarray(pop, dtype=np.float32)
        self._position = np.full(self.n_items, -1, dtype=np.int64)
        self._position[self.kept] = np.arange(self.kept.size)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.member._predict(users, items)

    def _fold_in(self, items: np.ndarray, stars: np.ndarray) -> UserState:
        return self.member._fold_in(items, stars)

    def _user_state(self, user: int) -> UserState:
        return self.member._user_state(user)

    def _score(self, state: UserState) -> np.ndarray:
        """``(n_items,)`` float32 the member's predicted stars, 0.5-5."""
        return self.member._score(state)

    def relevance(self, state: UserState) -> np.ndarray:
        """``(m,)`` float64 EASE relevance of the kept movies (``self.kept`` order)."""
        self._check_fitted()
        position = self._position[np.asarray(state.items, dtype=np.int64)]
        known = position >= 0
        weights = np.asarray(state.stars, dtype=np.float64)[known] - self.params["like_offset"]
        out = weighted_rows(self.item_item, position[known], weights)
        out += float(self.params["popularity"]) * self.popularity[self.kept]
        return out

    def _rank(self, state: UserState) -> np.ndarray:
        """``(n_items,)``: relevance x (stars / 5) ** star_power for the kept movies (see
        the module doc); the rest below them all, by predicted stars."""
        stars = self.member.score(state).astype(np.float64)  # clipped to 0.5-5
        rank = stars - STAR_MAX - 1.0  # not kept: -5.5 to -1, then shifted below the kept
        if self.kept.size:
            s = self.relevance(state)
            gain = (stars[self.kept] / STAR_MAX) ** float(self.params["star_power"])
            kept_rank = np.where(s > 0, s * gain, s)
            rank += min(float(kept_rank.min()), 0.0)
            rank[self.kept] = kept_rank
        return rank.astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        """``(n_items, k)`` float32 the member's item factors (to explain picks)."""
        self._check_fitted()
        return self.member.item_factors

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "kept": self.kept,
            "item_item": self.item_item,
            "popularity": self.popularity,
            **{MEMBER_PREFIX + k: v for k, v in self.member._arrays().items()},
        }

    def _check_arrays(
        self, arrays: Mapping[str, np.ndarray], sizes: dict[str, int], prefix: str = ""
    ) -> None:
        super()._check_arrays(arrays, sizes, prefix)
        self.member._check_arrays(arrays, sizes, prefix + MEMBER_PREFIX)

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.member = self._new_member()
        self.member._set_ids(self.user_ids, self.movie_ids)  # type: ignore[arg-type]
        self.member.global_mean = self.global_mean
        n = len(MEMBER_PREFIX)
        self.member._set_arrays(
            {k[n:]: v for k, v in arrays.items() if k.startswith(MEMBER_PREFIX)}
        )
        self._set_relevance(arrays["kept"], arrays["item_item"], arrays["popularity"])
