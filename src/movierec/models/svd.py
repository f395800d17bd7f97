"""Biased matrix factorisation trained by SGD, as Surprise's ``SVD``.

``stars(u, i) = mu + b_u + b_i + p_u . q_i``, fitted by stochastic gradient descent over
the ratings in a fresh random order each epoch (see :func:`_kernels.svd_epoch`).
A new visitor is folded in by ridge least squares against the fixed item parameters.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from tqdm.auto import tqdm

from movierec.data.ratings import Ratings
from movierec.models._kernels import svd_epoch
from movierec.models.base import UserState
from movierec.models.factor import FactorModel
from movierec.models.foldin import RatedItems, check_param, ridge_with_bias


class SVD(FactorModel):
    """Biased MF (Funk SVD) with SGD; Surprise's update rule, numba speed.

    Parameters (defaults chosen by ``bench/tune.py search`` on a validation split of
    ml-100k's u1.base, never the test folds; see ``bench/README.md``):

    - ``n_factors``: latent dimensions ``k``.
    - ``n_epochs``: SGD passes over the ratings.
    - ``lr_all`` / ``reg_all``: learning rate and L2 weight of every term.
    - ``lr_bias`` / ``reg_bias``: override those two for ``b_u`` and ``b_i`` (None: same).
    - ``init_std``: factors start as ``normal(0, init_std)``; biases start at 0.

    Unknown users or movies contribute nothing (``b = 0``, ``p = 0``), as in Surprise.
    """

    name: ClassVar[str] = "svd"
    defaults: ClassVar[dict[str, Any]] = {
        "n_factors": 100,
        "n_epochs": 60,
        "lr_all": 0.005,
        "reg_all": 0.08,
        "lr_bias": None,
        "reg_bias": None,
        "init_std": 0.05,
    }

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        check_param(self.params, "n_factors", integer=True, positive=True)
        check_param(self.params, "n_epochs", integer=True)
        for name in ("lr_all", "reg_all", "init_std", "lr_bias", "reg_bias"):
            if self.params[name] is not None or name not in ("lr_bias", "reg_bias"):
                check_param(self.params, name)

    # -- hyper-parameters by term ---------------------------------------------------
    @property
    def lr_bias(self) -> float:
        lr = self.params["lr_bias"]
        return float(self.params["lr_all"] if lr is None else lr)

    @property
    def reg_bias(self) -> float:
        reg = self.params["reg_bias"]
        return float(self.params["reg_all"] if reg is None else reg)

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        rng = np.random.default_rng(self.seed)
        k = int(self.params["n_factors"])
        std = float(self.params["init_std"])
        self.user_factors = rng.normal(0.0, std, (ratings.n_users, k)).astype(np.float32)
        self.item_factors = rng.normal(0.0, std, (ratings.n_items, k)).astype(np.float32)
        self.user_bias = np.zeros(ratings.n_users, dtype=np.float32)
        self.item_bias = np.zeros(ratings.n_items, dtype=np.float32)
        self.rated = RatedItems.from_ratings(ratings)
        users, items, stars = ratings.triples()
        lr, reg = float(self.params["lr_all"]), float(self.params["reg_all"])
        epochs = range(int(self.params["n_epochs"]))
        bar = tqdm(epochs, desc="svd", unit="epoch", disable=not progress)
        for _ in bar:
            order = rng.permutation(stars.size)
            rmse = svd_epoch(
                users, items, stars, order, self.global_mean,
                self.user_bias, self.item_bias, self.user_factors, self.item_factors,
                self.lr_bias, self.lr_bias, lr, lr,
                self.reg_bias, self.reg_bias, reg, reg,
            )  # fmt: skip
            bar.set_postfix(train_rmse=f"{rmse:.4f}")

    def _fold_in(self, items: np.ndarray, stars: np.ndarray) -> UserState:
        """Ridge solve of ``(p, b_u)`` on ``r - mu - b_i`` with design ``[q_i, 1]``.

        The penalty is ``n * reg`` (``n`` = ratings given): per-rating SGD regularisation
        adds ``reg |p|^2`` once per rating, so that is the objective training minimised
        for a user with ``n`` ratings.
        """
        n = items.size
        residual = stars - self.global_mean - self.item_bias[items]
        factors, bias = ridge_with_bias(
            self.item_factors[items],
            residual,
            reg_factors=n * float(self.params["reg_all"]),
            reg_bias=n * self.reg_bias,
        )
        return UserState(items=items, stars=stars, factors=factors.astype(np.float32), bias=bias)
