"""Non-negative matrix factorisation on the observed ratings only, as Surprise's ``NMF``.

``stars(u, i) = p_u . q_i`` with ``p_u, q_i >= 0`` (or ``mu + b_u + b_i + p_u . q_i`` with
``biased``), fitted by the multiplicative updates of Luo et al. (2014) over the ratings
given, never over blanks (see :func:`_kernels.nmf_epoch`). The unbiased model's update
reads only the factors as they were at the start of the epoch, so it runs as two
half-steps over rows in parallel (:func:`_kernels.nmf_half_step`, users then items from
a copy of the old user factors): the same maths on every core. A new visitor is folded
in by non-negative ridge least squares against the fixed item factors.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from tqdm.auto import tqdm

from movierec.data.ratings import Ratings
from movierec.models._kernels import ByRow, SGDRates, Triples, nmf_epoch, nmf_half_step
from movierec.models.base import GENRE_WEIGHT, UserState
from movierec.models.factor import FactorModel, numba_threads, threads_param
from movierec.models.foldin import nnls_ridge
from movierec.models.params import Param


class NMF(FactorModel):
    """Surprise-style NMF; factors stay non-negative, so they read as "how much of each taste".

    Parameters (defaults chosen by ``bench/tune.py search`` on a validation split of
    ml-100k's u1.base, never the test folds; see ``bench/README.md``):

    - ``n_factors``: latent dimensions ``k``.
    - ``n_epochs``: passes of multiplicative updates.
    - ``reg_pu`` / ``reg_qi``: L2 weights of user / item factors (per rating, as Surprise).
    - ``init_high``: factors start as ``uniform(0, init_high)``.
    - ``biased``: add ``mu + b_u + b_i`` (SGD steps ``lr_bias``, L2 ``reg_bias``). Surprise
      warns this variant overfits easily; off by default. Its bias steps go rating by
      rating, so it runs on one core.
    - ``n_threads``: 0 = every core from 500,000 ratings up; the result does not depend on it.
    - ``genre_weight``: how strongly picks follow the visitor's genre mix
      (:mod:`movierec.rerank`; 0: off).

    Unknown users or movies get the global mean (unbiased) or the biases known (biased).
    """

    name: ClassVar[str] = "nmf"
    param_specs: ClassVar[tuple[Param, ...]] = (
        Param("n_factors", 20, int, strict=True),
        Param("n_epochs", 150, int),
        Param("reg_pu", 0.15),
        Param("reg_qi", 0.12),
        Param("init_high", 1.0, strict=True),
        Param("biased", False, bool),
        Param("lr_bias", 0.005),
        Param("reg_bias", 0.02),
        threads_param(),
        GENRE_WEIGHT,
    )

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
        high = float(self.params["init_high"])
        # trained in float64 (the multiplicative ratios are sensitive), stored as float32
        draw = lambda shape: rng.uniform(0.0, high, shape)  # noqa: E731
        model = self._start(ratings.n_users, ratings.n_items, draw, dtype=np.float64)
        lr_b, reg_b = float(self.params["lr_bias"]), float(self.params["reg_bias"])
        rates = SGDRates(lr_b, lr_b, 0.0, 0.0, reg_b, reg_b,
                         float(self.params["reg_pu"]), float(self.params["reg_qi"]))  # fmt: skip
        epochs = range(int(self.params["n_epochs"]))
        bar = tqdm(epochs, desc="nmf", unit="epoch", disable=not progress)
        if self.biased:
            triples = Triples(*ratings.triples())
            user_counts = np.diff(ratings.matrix.indptr).astype(np.int64)
            item_counts = ratings.item_counts()
            for _ in bar:
                rmse = nmf_epoch(triples, self._offset, model, user_counts, item_counts, rates,
                                 True)  # fmt: skip
                bar.set_postfix(train_rmse=f"{rmse:.4f}")
        else:
            by_user = ratings.matrix
            by_item = by_user.tocsc()  # column-major = CSR of the transpose
            user_rows = ByRow(by_user.indptr.astype(np.int64), by_user.indices, by_user.data)
            item_rows = ByRow(by_item.indptr.astype(np.int64), by_item.indices, by_item.data)
            with numba_threads(self._threads(ratings.nnz)):
                for _ in bar:
                    old_users = model.user_factors.copy()
                    sse = nmf_half_step(user_rows, model.user_factors, model.item_factors, 0.0,
                                        model.user_bias, model.item_bias, rates.reg_pu)  # fmt: skip
                    nmf_half_step(item_rows, model.item_factors, old_users, 0.0,
                                  model.item_bias, model.user_bias, rates.reg_qi)  # fmt: skip
                    bar.set_postfix(train_rmse=f"{np.sqrt(sse / max(ratings.nnz, 1)):.4f}")
        self._keep(model)

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
