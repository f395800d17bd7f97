"""Peers: Surprise's algorithms and the original app's method, behind :class:`Method`.

- ``surprise-svd``, ``surprise-svdpp`` (``cache_ratings=True``), ``surprise-nmf``:
  Surprise's own ``fit``. Its ``estimate`` is evaluated from the fitted ``pu``/``qi``/
  ``bu``/``bi`` (and SVD++'s implicit ``y_j`` sum) in matrix products, for every item
  (top-N) and for the test pairs (clipped to the scale as Surprise's ``predict`` does;
  unknown ids go through ``predict`` itself). Checked equal to Surprise in the tests.
- ``surprise-knnbaseline``: item-based, ``pearson_baseline`` similarity (what Surprise's
  docs recommend for KNNBaseline). Top-N re-implements its ``estimate`` for all items of
  a user at once (``k`` most similar rated items, positive similarities only); on large
  catalogues that costs ``n_items x ratings`` per fold, so it is skipped above a budget.
- ``original``: the app this project replaces. scikit-learn ``NMF`` fitted on the dense
  user x movie matrix with blanks filled with 3 stars (20 components, scikit-learn's
  other defaults); predictions are ``W @ components_``, and a visitor is folded in as
  the app did it: ``transform(their filled row) @ components_``.

Surprise cannot score a user it was not trained on, so its peers sit out the onboarding
protocol.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from movierec.data.arrays import Float64Array, FloatArray, IndexArray, Int64Array
from movierec.data.ratings import Ratings
from movierec.errors import InvalidInput, ModelError
from movierec.evaluate.adapters import Method

SURPRISE_PEERS = ("surprise-svd", "surprise-svdpp", "surprise-nmf", "surprise-knnbaseline")
ORIGINAL = "original"
PEERS = (*SURPRISE_PEERS, ORIGINAL)

#: hyper-parameters Surprise's algorithms keep as attributes (shown in reports)
_SURPRISE_PARAMS = (
    "n_factors",
    "n_epochs",
    "biased",
    "init_mean",
    "init_std_dev",
    "init_low",
    "init_high",
    "lr_bu",
    "lr_bi",
    "lr_pu",
    "lr_qi",
    "lr_yj",
    "reg_bu",
    "reg_bi",
    "reg_pu",
    "reg_qi",
    "reg_yj",
    "k",
    "min_k",
    "sim_options",
    "bsl_options",
    "random_state",
)

#: above this many (items x training ratings) per fold, KNNBaseline top-N is skipped
KNN_TOP_N_BUDGET = 4e8


def import_surprise() -> Any:
    """The ``surprise`` module, or ``InvalidInput`` saying how to install it."""
    try:
        return importlib.import_module("surprise")
    except ImportError:
        raise InvalidInput(
            "the peers need scikit-surprise, which is not installed; install it with "
            "`pip install 'movierec[bench]'` (or `pip install scikit-surprise`), or run "
            "without --peers",
            field="peers",
        ) from None


def create_peer(
    name: str,
    scale: tuple[float, float],
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> Method:
    """A peer by name (see :data:`PEERS`); ``scale`` is the data set's (lowest, highest) stars."""
    classes: dict[str, type[Method]] = {
        "surprise-svd": SurpriseSVD,
        "surprise-svdpp": SurpriseSVDpp,
        "surprise-nmf": SurpriseNMF,
        "surprise-knnbaseline": SurpriseKNNBaseline,
        ORIGINAL: OriginalNMF,
    }
    try:
        klass = classes[name]
    except KeyError:
        raise InvalidInput(f"unknown peer {name!r}; known: {', '.join(PEERS)}", "peers") from None
    if issubclass(klass, SurpriseMethod):
        return klass(name, scale=scale, seed=seed, params=params)
    return klass(name, seed=seed, params=params)


# -- Surprise ------------------------------------------------------------------------------


class SurpriseMethod(Method):
    """A Surprise algorithm fitted on the fold's training ratings."""

    kind = "peer"
    can_fold_in = False
    algorithm: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        name: str,
        scale: tuple[float, float],
        seed: int = 0,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, seed, {**self.defaults, **(params or {})})
        self.surprise = import_surprise()
        self.scale = (float(scale[0]), float(scale[1]))
        self.algo: Any = None
        # per fit: our item index -> Surprise inner iid, our user row -> inner uid
        self._inner_items = np.zeros(0, dtype=np.int64)
        self._inner_users = np.zeros(0, dtype=np.int64)

    def _fit(self, train: Ratings) -> None:
        surprise = self.surprise
        reader = surprise.Reader(rating_scale=self.scale)
        data = surprise.Dataset.load_from_df(train.to_frame(), reader)
        trainset = data.build_full_trainset()
        self.algo = self._make_algorithm()
        self.algo.fit(trainset)
        self._inner_items = np.array([trainset.to_inner_iid(int(m)) for m in train.movie_ids])
        self._inner_users = np.array([trainset.to_inner_uid(int(u)) for u in train.user_ids])

    def describe(self) -> dict[str, Any]:
        """As :meth:`Method.describe`, with the algorithm's effective hyper-parameters."""
        out = super().describe()
        if self.algo is not None:
            shown = {k: getattr(self.algo, k) for k in _SURPRISE_PARAMS if hasattr(self.algo, k)}
            out["params"] = {**shown, **self.params}
        return out

    def _make_algorithm(self) -> Any:
        klass = getattr(self.surprise, self.algorithm)
        return klass(random_state=self.seed, verbose=False, **self.params)

    def predict(self, user_ids: IndexArray, movie_ids: IndexArray) -> Float64Array:
        """Surprise's ``predict``: its estimate clipped to the scale, its fallbacks.

        Pairs of known ids take :meth:`_pair_estimates` (vectorised, the same formula)
        where a subclass has one; the rest go through ``algo.predict`` one by one.
        """
        train = self.train
        if train is None:
            raise ModelError(f"{self.name} is not fitted")
        users = self._inner(train.users_of(user_ids), self._inner_users)
        items = self._inner(train.items_of(movie_ids), self._inner_items)
        out = np.empty(users.size, dtype=np.float64)
        known = (users >= 0) & (items >= 0)
        fast = self._pair_estimates(users[known], items[known])
        if fast is not None:
            out[known] = np.clip(fast, *self.scale)
        slow = ~known if fast is not None else np.ones(users.size, dtype=bool)
        predict = self.algo.predict
        for n in np.flatnonzero(slow):
            out[n] = predict(int(user_ids[n]), int(movie_ids[n])).est
        return out

    @staticmethod
    def _inner(ours: Int64Array, inner_of: Int64Array) -> Int64Array:
        inner: Int64Array = np.where(ours >= 0, inner_of[np.maximum(ours, 0)], -1)
        return inner

    def _pair_estimates(self, users: Int64Array, items: Int64Array) -> Float64Array | None:
        """``(n,)`` Surprise's unclipped ``estimate`` for known inner ids, or None."""
        return None

    def score_users(self, users: IndexArray) -> Float64Array:
        inner = self._inner_users[np.asarray(users, dtype=np.int64)]
        return self._estimates(inner)[:, self._inner_items]

    def _estimates(self, inner_users: Int64Array) -> Float64Array:
        """``(len(inner_users), n_inner_items)`` Surprise's unclipped ``estimate``."""
        raise NotImplementedError


class SurpriseSVD(SurpriseMethod):
    """``surprise.SVD`` (defaults: 100 factors, 20 epochs, biased)."""

    algorithm = "SVD"

    def _estimates(self, inner_users: Int64Array) -> Float64Array:
        return _biased_mf(self.algo, inner_users)

    def _pair_estimates(self, users: Int64Array, items: Int64Array) -> Float64Array:
        return _biased_mf_pairs(self.algo, users, items)


class SurpriseSVDpp(SurpriseMethod):
    """``surprise.SVDpp`` with ``cache_ratings=True`` (defaults: 20 factors, 20 epochs)."""

    algorithm = "SVDpp"
    defaults: ClassVar[dict[str, Any]] = {"cache_ratings": True}

    def _estimates(self, inner_users: Int64Array) -> Float64Array:
        a = self.algo
        implicit = self._implicit_matrix() @ a.yj  # (n_users, k): |I_u|^-1/2 sum_j y_j
        user_vec = a.pu[inner_users] + implicit[inner_users]
        est: Float64Array = user_vec @ a.qi.T
        est += a.trainset.global_mean + a.bu[inner_users, None] + a.bi[None, :]
        return est

    def _pair_estimates(self, users: Int64Array, items: Int64Array) -> Float64Array:
        a = self.algo
        user_vec = a.pu + self._implicit_matrix() @ a.yj  # (n_users, k)
        est: Float64Array = np.einsum("ij,ij->i", user_vec[users], a.qi[items])
        pairs: Float64Array = est + a.trainset.global_mean + a.bu[users] + a.bi[items]
        return pairs

    def _implicit_matrix(self) -> sp.csr_matrix:
        """``(n_users, n_items)`` rows ``1/sqrt(|I_u|)`` on the items each user rated."""
        cached = getattr(self, "_implicit", None)
        if cached is not None and cached[0] is self.algo:
            return cached[1]
        ts = self.algo.trainset
        rows, cols = [], []
        for u in range(ts.n_users):
            items = [j for j, _ in ts.ur[u]]
            rows.extend([u] * len(items))
            cols.extend(items)
        counts = np.bincount(rows, minlength=ts.n_users).astype(np.float64)
        values = 1.0 / np.sqrt(counts[rows])
        matrix = sp.csr_matrix((values, (rows, cols)), shape=(ts.n_users, ts.n_items))
        self._implicit = (self.algo, matrix)
        return matrix


class SurpriseNMF(SurpriseMethod):
    """``surprise.NMF`` (defaults: 15 factors, 50 epochs, unbiased)."""

    algorithm = "NMF"

    def _estimates(self, inner_users: Int64Array) -> Float64Array:
        return _biased_mf(self.algo, inner_users)

    def _pair_estimates(self, users: Int64Array, items: Int64Array) -> Float64Array:
        return _biased_mf_pairs(self.algo, users, items)


def _biased_mf(a: Any, users: Int64Array) -> Float64Array:
    """SVD / NMF ``estimate`` for all items: ``[mu + b_u + b_i +] q_i . p_u``."""
    est: Float64Array = a.pu[users] @ a.qi.T
    if a.biased:
        est += a.trainset.global_mean + a.bu[users, None] + a.bi[None, :]
    return est


def _biased_mf_pairs(a: Any, users: Int64Array, items: Int64Array) -> Float64Array:
    est: Float64Array = np.einsum("ij,ij->i", a.pu[users], a.qi[items])
    if a.biased:
        est += a.trainset.global_mean + a.bu[users] + a.bi[items]
    return est


class SurpriseKNNBaseline(SurpriseMethod):
    """``surprise.KNNBaseline``, item-based with ``pearson_baseline`` similarity (k=40)."""

    algorithm = "KNNBaseline"
    defaults: ClassVar[dict[str, Any]] = {
        "k": 40,
        "sim_options": {"name": "pearson_baseline", "user_based": False},
    }

    def _make_algorithm(self) -> Any:
        return self.surprise.KNNBaseline(verbose=False, **self.params)

    @property
    def can_rank(self) -> bool:  # per fold: from its size
        if self.train is None:
            return True
        return float(self.train.n_items) * self.train.nnz <= KNN_TOP_N_BUDGET

    def _fit(self, train: Ratings) -> None:
        super()._fit(train)
        if not self.can_rank:
            note = (
                "top-N metrics skipped: scoring every movie for every user costs "
                f"{train.n_items:,} items x {train.nnz:,} ratings per fold"
            )
            if note not in self.notes:
                self.notes.append(note)

    def _estimates(self, inner_users: Int64Array) -> Float64Array:
        a = self.algo
        if a.sim_options.get("user_based", True):
            raise NotImplementedError("top-N is implemented for item-based KNNBaseline only")
        mu = a.trainset.global_mean
        sim, bu, bi = a.sim, a.bu, a.bi  # sim is symmetric: sim[items] holds the columns
        k, min_k = int(a.k), int(a.min_k)
        out = np.empty((len(inner_users), a.trainset.n_items), dtype=np.float64)
        for row, u in enumerate(inner_users):
            rated = a.trainset.ur[u]
            items = np.fromiter((j for j, _ in rated), dtype=np.int64, count=len(rated))
            stars = np.fromiter((r for _, r in rated), dtype=np.float64, count=len(rated))
            deviation = stars - (mu + bi[items] + bu[u])
            s = np.ascontiguousarray(sim[items].T)  # (n_items, m): item vs rated items
            use = s > 0  # Surprise averages over the k most similar, positive ones only
            if items.size > k:  # keep the k largest per row (ties at the k-th: all kept)
                kth = np.partition(s, items.size - k, axis=1)[:, items.size - k]
                use &= s >= kth[:, None]
            weights = np.where(use, s, 0.0)
            sum_sim = weights.sum(axis=1)
            sum_dev = weights @ deviation
            sum_dev[use.sum(axis=1) < min_k] = 0.0
            with np.errstate(divide="ignore", invalid="ignore"):
                adjust = np.where(sum_sim > 0, sum_dev / sum_sim, 0.0)
            out[row] = mu + bu[u] + bi + adjust
        return out


# -- the original app ---------------------------------------------------------------------


class OriginalNMF(Method):
    """The original app's recommender: scikit-learn NMF on the blank-filled matrix.

    fit: dense ``(n_users, n_items)`` matrix of stars with every blank set to ``fill``
    (3 stars), ``NMF(n_components, init, max_iter, random_state=seed).fit``.
    A training user's scores: ``W[u] @ components_`` with ``W`` from the fit (their trained
    state, as our models use theirs); a visitor's: ``transform(their filled row) @
    components_``, which is how the app folded a visitor in. Unknown movies: the
    training mean.
    """

    kind = "peer"
    defaults: ClassVar[dict[str, Any]] = {
        "n_components": 20,
        "init": "nndsvda",
        "max_iter": 200,
        "fill": 3.0,
    }

    def __init__(self, name: str, seed: int = 0, params: dict[str, Any] | None = None) -> None:
        super().__init__(name, seed, {**self.defaults, **(params or {})})
        unknown = sorted(set(self.params) - set(self.defaults))
        if unknown:
            raise InvalidInput(
                f"unknown parameter(s) for {name!r}: {', '.join(unknown)}", field=unknown[0]
            )
        self.nmf: Any = None
        self.user_weights = np.zeros((0, 0))  # (n_users, n_components)
        self._user_index: dict[int, int] = {}
        self._item_index: dict[int, int] = {}

    def _filled(self, matrix: sp.csr_matrix) -> Float64Array:
        dense = np.full(matrix.shape, float(self.params["fill"]), dtype=np.float64)
        coo = matrix.tocoo()
        dense[coo.row, coo.col] = coo.data
        return dense

    def _fit(self, train: Ratings) -> None:
        from sklearn.decomposition import NMF

        p = self.params
        self.nmf = NMF(
            n_components=int(p["n_components"]),
            init=p["init"],
            max_iter=int(p["max_iter"]),
            random_state=self.seed,
        )
        filled = self._filled(train.matrix)
        with _quiet():
            self.user_weights = self.nmf.fit_transform(filled)
        self._user_index = {int(u): i for i, u in enumerate(train.user_ids)}
        self._item_index = {int(m): i for i, m in enumerate(train.movie_ids)}
        self._global_mean = train.global_mean

    def predict(self, user_ids: IndexArray, movie_ids: IndexArray) -> Float64Array:
        users = np.array([self._user_index.get(int(u), -1) for u in user_ids], dtype=np.int64)
        items = np.array([self._item_index.get(int(m), -1) for m in movie_ids], dtype=np.int64)
        h = self.nmf.components_
        out = np.full(users.size, self._global_mean, dtype=np.float64)
        known = (users >= 0) & (items >= 0)
        out[known] = np.einsum("ij,ji->i", self.user_weights[users[known]], h[:, items[known]])
        new_user = (users < 0) & (items >= 0)  # nothing rated: the all-blank row
        if new_user.any():
            with _quiet():
                blank = self.nmf.transform(np.full((1, h.shape[1]), float(self.params["fill"])))
            out[new_user] = (blank @ h)[0, items[new_user]]
        return out

    def score_users(self, users: IndexArray) -> Float64Array:
        scores: Float64Array = (
            self.user_weights[np.asarray(users, dtype=np.int64)] @ self.nmf.components_
        )
        return scores

    def score_visitor(self, items: IndexArray, stars: FloatArray) -> tuple[FloatArray, FloatArray]:
        row = np.full((1, self.n_items), float(self.params["fill"]))
        row[0, items] = stars
        with _quiet():
            weights = self.nmf.transform(row)
        scores: Float64Array = (weights @ self.nmf.components_)[0]
        return scores, scores


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence scikit-learn's ConvergenceWarning (the app ran NMF with its defaults too)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield
