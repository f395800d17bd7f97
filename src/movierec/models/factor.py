"""Shared parts of the latent-factor models (svd, nmf, als, svdpp).

They all estimate ``offset + b_u + b_i + q_i . p_u`` and keep the same fitted arrays;
only how the factors are fitted and folded in differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from movierec.models._kernels import score_items
from movierec.models.base import ArraySpec, Recommender, UserState
from movierec.models.foldin import RatedItems


class FactorModel(Recommender):
    """A :class:`Recommender` whose state is user factors ``p`` and bias ``b_u``.

    Fitted arrays: ``user_factors`` ``(n_users, k)``, ``item_factors`` ``(n_items, k)``,
    ``user_bias`` ``(n_users,)``, ``item_bias`` ``(n_items,)`` (float32, stars) and
    ``rated`` (what each training user rated). Subclasses set them in ``_fit``.
    """

    #: extra ``(name -> float32 array)`` attributes a subclass saves besides the shared ones
    extra_arrays: tuple[str, ...] = ()
    array_specs: ClassVar[dict[str, ArraySpec]] = {
        "user_factors": ArraySpec("float32", ("n_users", "n_factors")),
        "item_factors": ArraySpec("float32", ("n_items", "n_factors")),
        "user_bias": ArraySpec("float32", ("n_users",)),
        "item_bias": ArraySpec("float32", ("n_items",)),
        **RatedItems.specs,
    }

    def __init__(self, seed: int = 0, **params) -> None:
        super().__init__(seed=seed, **params)
        self.user_factors = np.zeros((0, 0), dtype=np.float32)  # (n_users, k)
        self.item_factors = np.zeros((0, 0), dtype=np.float32)  # (n_items, k)
        self.user_bias = np.zeros(0, dtype=np.float32)  # (n_users,) stars
        self.item_bias = np.zeros(0, dtype=np.float32)  # (n_items,) stars
        self.rated: RatedItems | None = None

    @property
    def _offset(self) -> float:
        """The constant term of the estimate (the global mean; 0 for unbiased NMF)."""
        return self.global_mean

    def _factors_of_users(self, users: np.ndarray) -> np.ndarray:
        """``(n, k)`` float32 factors of trained users (row indices) used in estimates."""
        return self.user_factors[users]

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Estimates for index pairs; an unknown user or movie adds no bias and no factors."""
        known_u, known_i = users >= 0, items >= 0
        both = known_u & known_i
        est = np.full(users.shape, self.global_mean, dtype=np.float64)
        est[known_u] += self.user_bias[users[known_u]]
        est[known_i] += self.item_bias[items[known_i]]
        distinct, inverse = np.unique(users[both], return_inverse=True)
        p = self._factors_of_users(distinct)[inverse]
        q = self.item_factors[items[both]]
        # the constant is the global mean only where both are known (0 for unbiased NMF)
        est[both] += (self._offset - self.global_mean) + np.einsum(
            "nk,nk->n", p, q, dtype=np.float64
        )
        return est

    def _user_state(self, user: int) -> UserState:
        items, stars = self.rated.row(user)  # type: ignore[union-attr]
        return UserState(
            items=items,
            stars=stars,
            factors=self._factors_of_users(np.array([user]))[0],
            bias=float(self.user_bias[user]),
        )

    def _score(self, state: UserState) -> np.ndarray:
        """``(n_items,)`` float32: ``offset + b_u + b_i + Q p``; unclipped.

        A numba loop rather than ``item_factors @ p``: the matrix-vector product wakes
        OpenBLAS's thread pool, which stalls for tens of ms on a busy machine.
        """
        factors = np.ascontiguousarray(state.factors, dtype=np.float32)
        offset = self._offset + state.bias
        return score_items(self.item_factors, self.item_bias, offset, factors, -np.inf, np.inf)

    def rank_users(self, states: Sequence[UserState]) -> np.ndarray:
        """``(len(states), n_items)`` float32 ``offset + b_u + b_i + P Q'``: one matrix
        product (float32 throughout) for many users; rows equal ``rank``'s."""
        self._check_fitted()
        overridden = type(self)._rank is not Recommender._rank
        if overridden or type(self)._score is not FactorModel._score or not len(states):
            return super().rank_users(states)
        factors = np.stack([np.asarray(s.factors, dtype=np.float32) for s in states])
        out = factors @ self.item_factors.T  # (n, n_items) float32
        out += self.item_bias[None, :]
        out += np.array([self._offset + s.bias for s in states], dtype=np.float32)[:, None]
        return out

    def item_vectors(self) -> np.ndarray:
        """``(n_items, k)`` float32 item factors ``q_i``."""
        self._check_fitted()
        return self.item_factors

    def _arrays(self) -> dict[str, np.ndarray]:
        names = ("user_factors", "item_factors", "user_bias", "item_bias", *self.extra_arrays)
        return {
            **{name: getattr(self, name) for name in names},
            **self.rated.arrays(),  # type: ignore[union-attr]
        }

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        names = ("user_factors", "item_factors", "user_bias", "item_bias", *self.extra_arrays)
        for name in names:
            setattr(self, name, arrays[name].astype(np.float32))
        self.rated = RatedItems.from_arrays(arrays)
