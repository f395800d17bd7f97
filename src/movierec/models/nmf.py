"""Non-negative matrix factorisation on the observed ratings only, as Surprise's ``NMF``.

``stars(u, i) = p_u . q_i`` with ``p_u, q_i >= 0`` (or ``mu + b_u + b_i + p_u . q_i`` with
``biased``), fitted by the multiplicative updates of Luo et al. (2014) over the ratings
given, never over blanks (see :func:`_kernels.nmf_epoch`). A new visitor is folded in by
non-negative ridge least squares against the fixed item factors.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from tqdm.auto import tqdm

from movierec.data.ratings import Ratings
from movierec.models._kernels import nmf_epoch
from movierec.models.base import UserState
from movierec.models.factor import FactorModel
from movierec.models.foldin import RatedItems, check_param, nnls_ridge


class NMF(FactorModel):
    """Surprise-style NMF; factors stay non-negative, so they read as "how much of each taste".

    Parameters (defaults chosen by ``bench/tune.py search`` on a validation split of
    ml-100k's u1.base, never the test folds; see ``bench/README.md``):

    - ``n_factors``: latent dimensions ``k``.
    - ``n_epochs``: passes of multiplicative updates.
    - ``reg_pu`` / ``reg_qi``: L2 weights of user / item factors (per rating, as Surprise).
    - ``init_high``: factors start as ``uniform(0, init_high)``.
    - ``biased``: add ``mu + b_u + b_i`` (SGD steps ``lr_bias``, L2 ``reg_bias``). Surprise
      warns this variant overfits easily; off by default.

    Unknown users or movies get the global mean (unbiased) or the biases known (biased).
    """

    name: ClassVar[str] = "nmf"
    defaults: ClassVar[dict[str, Any]] = {
        "n_factors": 20,
        "n_epochs": 150,
        "reg_pu": 0.15,
        "reg_qi": 0.12,
        "init_high": 1.0,
        "biased": False,
        "lr_bias": 0.005,
        "reg_bias": 0.02,
    }

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        check_param(self.params, "n_factors", integer=True, positive=True)
        check_param(self.params, "n_epochs", integer=True)
        for name in ("reg_pu", "reg_qi", "lr_bias", "reg_bias"):
            check_param(self.params, name)
        check_param(self.params, "init_high", positive=True)
        self.params["biased"] = bool(self.params["biased"])

    @property
    def biased(self) -> bool:
        return bool(self.params["biased"])

    @property
    def _offset(self) -> float:
        """The constant term of the model: the global mean if biased, else 0."""
        return self.global_mean if self.biased else 0.0

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        rng = np.random.default_rng(self.seed)
        k = int(self.params["n_factors"])
        high = float(self.params["init_high"])
        # trained in float64 (the multiplicative ratios are sensitive), stored as float32
        user_factors = rng.uniform(0.0, high, (ratings.n_users, k))
        item_factors = rng.uniform(0.0, high, (ratings.n_items, k))
        user_bias = np.zeros(ratings.n_users, dtype=np.float64)
        item_bias = np.zeros(ratings.n_items, dtype=np.float64)
        self.rated = RatedItems.from_ratings(ratings)
        users, items, stars = ratings.triples()
        user_counts = np.diff(ratings.matrix.indptr).astype(np.int64)
        item_counts = ratings.item_counts()
        epochs = range(int(self.params["n_epochs"]))
        bar = tqdm(epochs, desc="nmf", unit="epoch", disable=not progress)
        for _ in bar:
            rmse = nmf_epoch(
                users, items, stars, self._offset,
                user_bias, item_bias, user_factors, item_factors,
                user_counts, item_counts,
                float(self.params["reg_pu"]), float(self.params["reg_qi"]),
                self.biased, float(self.params["lr_bias"]), float(self.params["lr_bias"]),
                float(self.params["reg_bias"]), float(self.params["reg_bias"]),
            )  # fmt: skip
            bar.set_postfix(train_rmse=f"{rmse:.4f}")
        self.user_factors = user_factors.astype(np.float32)
        self.item_factors = item_factors.astype(np.float32)
        self.user_bias = user_bias.astype(np.float32)
        self.item_bias = item_bias.astype(np.float32)

    def _fold_in(self, items: np.ndarray, stars: np.ndarray) -> UserState:
        """Non-negative ridge solve of ``p`` (and ``b_u`` if biased) against fixed ``q_i``.

        The penalty is ``n * reg_pu`` (``n`` = ratings given), the weight training's
        update ``den += n_u reg_pu p_u`` puts on a user with ``n`` ratings.
        """
        n = items.size
        target = stars - self._offset - self.item_bias[items]
        factors, bias = nnls_ridge(
            self.item_factors[items],
            target,
            reg_factors=n * float(self.params["reg_pu"]),
            reg_bias=n * float(self.params["reg_bias"]) if self.biased else None,
        )
        return UserState(items=items, stars=stars, factors=factors.astype(np.float32), bias=bias)
