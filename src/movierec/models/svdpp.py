"""SVD++ (Koren 2008): biased MF plus implicit feedback from *which* movies a user rated.

``stars(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)`` where
``N(u)`` is the set of movies ``u`` rated. Fitted by SGD in numba, user by user: the
implicit sum ``z_u`` is formed once per user visit, the user's ratings are visited in a
random order with Surprise's per-rating updates of ``b_u, b_i, p_u, q_i``, and the
``y_j`` take the summed gradient of those ratings at the end of the visit. That is the
usual fast form of SVD++: the exact per-rating ``y_j`` step costs ``|N(u)| k`` per
rating, which is why Surprise's ``SVDpp`` is slow.

A visitor is folded in by forming ``z`` from the movies they rated, then a ridge solve
for ``(p, b_u)`` on the residual ``r - mu - b_i - q_i . z``. Their state's ``factors``
hold the effective vector ``p + z``, so scoring is one matrix-vector product.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numba import njit
from tqdm.auto import tqdm

from movierec.data.ratings import Ratings
from movierec.models.base import ArraySpec, UserState
from movierec.models.factor import FactorModel
from movierec.models.foldin import RatedItems, check_param, ridge_with_bias


@njit(cache=True, fastmath=True, nogil=True)
def svdpp_epoch(
    indptr: np.ndarray,
    items: np.ndarray,
    stars: np.ndarray,
    user_order: np.ndarray,
    rating_order: np.ndarray,
    global_mean: float,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    implicit_factors: np.ndarray,
    lr_bias: float,
    lr: float,
    reg_bias: float,
    reg: float,
    reg_implicit: float,
) -> float:
    """One SGD pass of SVD++, visiting users in ``user_order``.

    indptr / items / stars: the ratings as CSR by user (``(n_users + 1,)`` int64,
        ``(nnz,)`` int32, ``(nnz,)`` float32).
    rating_order: ``(nnz,)`` int64; ``rating_order[indptr[u]:indptr[u + 1]]`` is a
        permutation of that same range (the order of ``u``'s ratings).
    user_factors / item_factors / implicit_factors: ``(n_users, k)`` / ``(n_items, k)`` /
        ``(n_items, k)`` float32 ``p``, ``q``, ``y``; biases float32. Updated in place.

    Per rating: ``e = r - (mu + b_u + b_i + q_i . (p_u + z_u))``,
    ``b_u += lr_bias (e - reg_bias b_u)`` (same for ``b_i``),
    ``p_u += lr (e q_i - reg p_u)``, ``q_i += lr (e (p_u + z_u) - reg q_i)``.
    After the user's ``n`` ratings, for every rated ``j``:
    ``y_j += lr (n^-1/2 sum_e e q_i - n reg_implicit y_j)``, the sum of the ``n``
    per-rating steps SVD++ would take. Returns the training RMSE seen during the pass.
    """
    k = user_factors.shape[1]
    implicit = np.empty(k, dtype=np.float32)
    grad = np.empty(k, dtype=np.float32)
    sse = 0.0
    for t in range(user_order.shape[0]):
        u = user_order[t]
        start = indptr[u]
        end = indptr[u + 1]
        n = end - start
        if n == 0:
            continue
        norm = np.float32(1.0 / np.sqrt(n))
        implicit[:] = 0.0
        for idx in range(start, end):
            implicit += implicit_factors[items[idx]]
        implicit *= norm
        grad[:] = 0.0
        for pos in range(start, end):
            idx = rating_order[pos]
            i = items[idx]
            dot = np.float32(0.0)
            for f in range(k):
                dot += item_factors[i, f] * (user_factors[u, f] + implicit[f])
            err = stars[idx] - (global_mean + user_bias[u] + item_bias[i] + dot)
            sse += err * err
            user_bias[u] += lr_bias * (err - reg_bias * user_bias[u])
            item_bias[i] += lr_bias * (err - reg_bias * item_bias[i])
            for f in range(k):
                puf = user_factors[u, f]
                qif = item_factors[i, f]
                grad[f] += err * qif
                user_factors[u, f] = puf + lr * (err * qif - reg * puf)
                item_factors[i, f] = qif + lr * (err * (puf + implicit[f]) - reg * qif)
        shrink = np.float32(1.0 - lr * n * reg_implicit)
        for idx in range(start, end):
            j = items[idx]
            for f in range(k):
                implicit_factors[j, f] = shrink * implicit_factors[j, f] + lr * norm * grad[f]
    return np.sqrt(sse / max(stars.shape[0], 1))


class SVDpp(FactorModel):
    """SVD++ with SGD in numba.

    Parameters (defaults from ``bench/tune.py`` on a validation split of ml-100k u1.base):

    - ``n_factors``: latent dimensions ``k``.
    - ``n_epochs``: SGD passes.
    - ``lr_all`` / ``reg_all``: learning rate and L2 weight of ``p``, ``q`` (and ``y``).
    - ``lr_bias`` / ``reg_bias``: the same for ``b_u``, ``b_i`` (None: ``lr_all`` / ``reg_all``).
    - ``reg_implicit``: L2 weight of ``y`` (None: ``reg_all``).
    - ``lr_decay``: every learning rate is multiplied by this after each epoch.
    - ``init_std``: ``p``, ``q``, ``y`` start as ``normal(0, init_std)``; biases at 0.

    Unknown users or movies contribute nothing, as in Surprise.
    """

    name: ClassVar[str] = "svdpp"
    extra_arrays = ("implicit_factors",)  # y_j, saved with the shared arrays
    array_specs: ClassVar[dict[str, ArraySpec]] = {
        **FactorModel.array_specs,
        "implicit_factors": ArraySpec("float32", ("n_items", "n_factors")),
    }
    defaults: ClassVar[dict[str, Any]] = {
        "n_factors": 20,
        "n_epochs": 20,
        "lr_all": 0.007,
        "reg_all": 0.08,
        "lr_bias": None,
        "reg_bias": None,
        "reg_implicit": 0.002,
        "lr_decay": 1.0,
        "init_std": 0.1,
    }

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        check_param(self.params, "n_factors", integer=True, positive=True)
        check_param(self.params, "n_epochs", integer=True)
        check_param(self.params, "lr_decay", positive=True)
        for name in ("lr_all", "reg_all", "init_std"):
            check_param(self.params, name)
        for name in ("lr_bias", "reg_bias", "reg_implicit"):
            if self.params[name] is not None:
                check_param(self.params, name)
        self.implicit_factors = np.zeros((0, 0), dtype=np.float32)  # (n_items, k) y

    def _param(self, name: str, fallback: str) -> float:
        value = self.params[name]
        return float(self.params[fallback] if value is None else value)

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        rng = np.random.default_rng(self.seed)
        k = int(self.params["n_factors"])
        std = float(self.params["init_std"])
        self.user_factors = rng.normal(0.0, std, (ratings.n_users, k)).astype(np.float32)
        self.item_factors = rng.normal(0.0, std, (ratings.n_items, k)).astype(np.float32)
        self.implicit_factors = rng.normal(0.0, std, (ratings.n_items, k)).astype(np.float32)
        self.user_bias = np.zeros(ratings.n_users, dtype=np.float32)
        self.item_bias = np.zeros(ratings.n_items, dtype=np.float32)
        self.rated = RatedItems.from_ratings(ratings)
        indptr, items, stars = self.rated.indptr, self.rated.items, self.rated.stars
        row_of = np.repeat(np.arange(ratings.n_users), np.diff(indptr))
        lr, lr_bias = float(self.params["lr_all"]), self._param("lr_bias", "lr_all")
        reg, reg_bias = float(self.params["reg_all"]), self._param("reg_bias", "reg_all")
        reg_implicit = self._param("reg_implicit", "reg_all")
        decay = float(self.params["lr_decay"])
        epochs = range(int(self.params["n_epochs"]))
        bar = tqdm(epochs, desc="svdpp", unit="epoch", disable=not progress)
        for _ in bar:
            user_order = rng.permutation(ratings.n_users)
            rating_order = np.lexsort((rng.random(stars.size), row_of))
            rmse = svdpp_epoch(
                indptr, items, stars, user_order, rating_order, self.global_mean,
                self.user_bias, self.item_bias,
                self.user_factors, self.item_factors, self.implicit_factors,
                lr_bias, lr, reg_bias, reg, reg_implicit,
            )  # fmt: skip
            lr, lr_bias = lr * decay, lr_bias * decay
            bar.set_postfix(train_rmse=f"{rmse:.4f}")

    def _implicit_sum(self, items: np.ndarray) -> np.ndarray:
        """``(k,)`` float32 ``|N|^-1/2 sum_{j in N} y_j`` for the rated set ``items``."""
        if items.size == 0:
            return np.zeros(self.implicit_factors.shape[1], dtype=np.float32)
        total = self.implicit_factors[items].sum(axis=0, dtype=np.float64)
        return (total / np.sqrt(items.size)).astype(np.float32)

    def _effective_user_factors(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), k)`` float32 ``p_u + z_u`` of training users."""
        rated = self.rated  # type: ignore[union-attr]
        n_users = rated.indptr.size - 1
        counts = np.diff(rated.indptr).astype(np.float64)
        weights = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1.0)), np.diff(rated.indptr))
        implicit_weights = sp.csr_matrix(
            (weights, rated.items, rated.indptr), shape=(n_users, self.implicit_factors.shape[0])
        )
        implicit = implicit_weights[users] @ self.implicit_factors.astype(np.float64)
        return (self.user_factors[users] + implicit).astype(np.float32)

    def _fold_in(self, items: np.ndarray, stars: np.ndarray) -> UserState:
        """``z`` from the rated set, then ridge of ``(p, b_u)`` on ``r - mu - b_i - q_i . z``
        with penalties ``n * reg_all`` and ``n * reg_bias`` (the per-rating SGD penalties
        summed over the visitor's ``n`` ratings). ``factors`` is ``p + z``."""
        n = items.size
        implicit = self._implicit_sum(items)
        q = self.item_factors[items]
        residual = stars - self.global_mean - self.item_bias[items] - q @ implicit
        factors, bias = ridge_with_bias(
            q,
            residual,
            reg_factors=n * float(self.params["reg_all"]),
            reg_bias=n * self._param("reg_bias", "reg_all"),
        )
        effective = (factors + implicit).astype(np.float32)
        return UserState(items=items, stars=stars, factors=effective, bias=bias)

    def _factors_of_users(self, users: np.ndarray) -> np.ndarray:
        """``(n, k)`` float32 ``p_u + |N(u)|^-1/2 sum_j y_j``: the implicit term folded in."""
        return self._effective_user_factors(users)
