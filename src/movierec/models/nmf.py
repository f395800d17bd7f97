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

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from tqdm.auto import tqdm

from movierec.data.arrays import Float32Array, Int64Array
from movierec.data.ratings import Ratings
from movierec.models._kernels import ByRow, SGDRates, Triples, nmf_epoch, nmf_half_step
from movierec.models.base import GenreWeightParams, UserState
from movierec.models.factor import FactorModel, FactorParams, ThreadedParams, numba_threads
from movierec.models.foldin import nnls_ridge
from movierec.models.params import ModelParams, param


@dataclass(frozen=True)
class NMFParams(FactorParams, ThreadedParams, GenreWeightParams):
    """The typed parameters of :class:`NMF` (documented there)."""

    n_factors: int = param(20, strict=True)
    n_epochs: int = param(150)
    reg_pu: float = param(0.15)
    reg_qi: float = param(0.12)
    init_high: float = param(1.0, strict=True)
    biased: bool = param(False)
    lr_bias: float = param(0.005)
    reg_bias: float = param(0.02)


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
    params_type: ClassVar[type[ModelParams]] = NMFParams
    config: NMFParams

    @property
    def biased(self) -> bool:
        return self.config.biased

    @property
    def _offset(self) -> float:
        """The constant term of the model: the global mean if biased, else 0."""
        return self.global_mean if self.biased else 0.0

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        rng = np.random.default_rng(self.seed)
        high = self.config.init_high
        # trained in float64 (the multiplicative ratios are sensitive), stored as float32
        draw = lambda shape: rng.uniform(0.0, high, shape)  # noqa: E731
        model = self._start(ratings.n_users, ratings.n_items, draw, dtype=np.float64)
        lr_b, reg_b = self.config.lr_bias, self.config.reg_bias
        rates = SGDRates(lr_b, lr_b, 0.0, 0.0, reg_b, reg_b,
                         self.config.reg_pu, self.config.reg_qi)  # fmt: skip
        epochs = range(self.config.n_epochs)
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

    def _fold_in(self, items: Int64Array, stars: Float32Array) -> UserState:
        """Non-negative ridge solve of ``p`` (and ``b_u`` if biased) against fixed ``q_i``.

        The penalty is ``n * reg_pu`` (``n`` = ratings given), the weight training's
        update ``den += n_u reg_pu p_u`` puts on a user with ``n`` ratings.
        """
        n = items.size
        target = stars - self._offset - self.item_bias[items]
        factors, bias = nnls_ridge(
            self.item_factors[items],
            target,
            reg_factors=n * self.config.reg_pu,
            reg_bias=n * self.config.reg_bias if self.biased else None,
        )
        return UserState(items=items, stars=stars, factors=factors.astype(np.float32), bias=bias)
