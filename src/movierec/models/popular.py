"""The non-personalised baseline: each movie's damped mean (Bayesian average).

``item_mean_i = (sum of its stars + damping * mu) / (n_i + damping)``: a movie with few
ratings is pulled towards the global mean ``mu``, so one 5-star vote does not top the list.

Design choice: a user also gets a damped bias,
``b_u = sum_i (r_ui - item_mean_i) / (n_u + user_damping)``, and predicted stars are
``item_mean_i + b_u``. The bias shifts every movie by the same amount, so the *ranking*
is the same for everyone (the point of this baseline), while ``predict`` and ``score``
agree on stars and a generous rater sees generous predictions. A large
``user_damping`` (e.g. ``1e9``) turns the bias off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from movierec.data.arrays import Float32Array, Float64Array, Int64Array
from movierec.data.ratings import Ratings
from movierec.models.base import GenreWeightParams, Recommender, UserState
from movierec.models.baselines import damped_means
from movierec.models.files import ArraySpec
from movierec.models.foldin import RatedItems
from movierec.models.params import ModelParams, param


@dataclass(frozen=True)
class PopularParams(GenreWeightParams):
    """The typed parameters of :class:`Popular` (documented there)."""

    damping: float = param(10.0)
    user_damping: float = param(10.0)


class Popular(Recommender):
    """Damped mean per movie plus a damped user bias; the same ranking for everyone.

    Parameters:

    - ``damping``: prior weight of the global mean, in pseudo-ratings per movie.
    - ``user_damping``: prior weight of a zero bias, in pseudo-ratings per user.
    - ``genre_weight``: how strongly picks follow the visitor's genre mix
      (:mod:`movierec.rerank`; 0: off): the crowd's favourites in the visitor's genres.
    """

    name: ClassVar[str] = "popular"
    ranks_alike: ClassVar[bool] = True
    params_type: ClassVar[type[ModelParams]] = PopularParams
    config: PopularParams
    array_specs: ClassVar[dict[str, ArraySpec]] = {
        "item_mean": ArraySpec("float32", ("n_items",)),
        "user_bias": ArraySpec("float32", ("n_users",)),
        **RatedItems.specs,
    }

    def _fit(self, ratings: Ratings, progress: bool) -> None:
        matrix = ratings.matrix
        totals = np.bincount(matrix.indices, weights=matrix.data, minlength=ratings.n_items)
        self.item_mean = damped_means(
            totals, ratings.item_counts(), self.global_mean, self.config.damping
        ).astype(np.float32)
        residual = matrix.data - self.item_mean[matrix.indices]
        rows = np.repeat(np.arange(ratings.n_users), np.diff(matrix.indptr))
        user_totals = np.bincount(rows, weights=residual, minlength=ratings.n_users)
        self.user_bias = damped_means(
            user_totals, np.diff(matrix.indptr), 0.0, self.config.user_damping
        ).astype(np.float32)

    def _predict(self, users: Int64Array, items: Int64Array) -> Float64Array:
        est = np.full(users.shape, self.global_mean, dtype=np.float64)
        known_i = items >= 0
        est[known_i] = self.item_mean[items[known_i]]
        known_u = users >= 0
        est[known_u] += self.user_bias[users[known_u]]
        return est

    def _fold_in(self, items: Int64Array, stars: Float32Array) -> UserState:
        residual = stars.astype(np.float64) - self.item_mean[items]
        bias = damped_means(
            np.array([residual.sum()]), np.array([items.size]), 0.0,
            self.config.user_damping,
        )[0]  # fmt: skip
        return UserState(items=items, stars=stars, factors=None, bias=float(bias))

    def _score(self, state: UserState) -> Float32Array:
        """``(n_items,)`` float32 ``item_mean + b_u``; unclipped."""
        scores = self.item_mean + np.float32(state.bias)
        return scores

    def rank_users(self, states: Sequence[UserState]) -> Float32Array:
        """``(len(states), n_items)`` float32 ``item_mean + b_u`` (one broadcast)."""
        self._check_fitted()
        bias = np.array([state.bias for state in states], dtype=np.float32)
        return self.item_mean[None, :] + bias[:, None]
