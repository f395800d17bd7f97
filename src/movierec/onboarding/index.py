"""``OnboardingIndex``: what the onboarding strategies know of each movie, from training data.

Built once per (training ratings, model, catalogue) and shared by every request; the
strategies (:mod:`movierec.onboarding.strategies`) only read it.

Per movie (``n`` = movies covered, the catalogue's or the training data's, in ``movie_ids``
order): rating count, rating entropy (bits, over the ten half-star values), year, genres,
the column of the binary "who rated it" matrix, and the model's item factors when it has
any (rows of zeros for movies the model does not know).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from movierec.data.arrays import BoolArray, Float64Array, IndexArray, Int64Array
from movierec.data.catalog import Catalog
from movierec.data.ratings import Ratings
from movierec.models.base import Recommender
from movierec.onboarding.simulate import Simulator

#: ten half-star values 0.5 .. 5
N_STAR_BINS = 10
#: P(seen) looks at this many training users at most (a seeded sample beyond it), so a
#: 25 M-rating data set costs what a small one does
MAX_USERS = 20_000
#: default ridge weight of the folded-in user's factors (the prior's precision)
DEFAULT_PRIOR = 1.0


@dataclass
class OnboardingIndex:
    """Per-movie arrays the strategies choose from (see the module doc).

    movie_ids: ``(n,)`` int64 raw ids. counts: ``(n,)`` int64 training ratings.
    mean_stars: ``(n,)`` float64 (0 if unrated). entropy: ``(n,)`` float64 bits.
    years: ``(n,)`` float64, NaN if unknown. genres: ``n`` tuples of genre names.
    seen: ``(n_users, n)`` float32 CSR, 1 where a training user rated the movie.
    item_factors: ``(n, k)`` float64 or None. prior: ridge weight of the user factors.
    simulator: the training users simulated through ``ease``'s ranking (``adaptive``'s
    GreedyExtend, :mod:`.simulate`), or None for models without an item-item matrix.
    popularity_order: ``(n,)`` item positions, most rated first (ties: higher mean stars,
    then lower movieId): the order "show me more" pages down.
    """

    movie_ids: Int64Array
    counts: Int64Array
    mean_stars: Float64Array
    entropy: Float64Array
    years: Float64Array
    genres: list[tuple[str, ...]]
    seen: sp.csr_matrix
    item_factors: Float64Array | None = None
    prior: float = DEFAULT_PRIOR
    simulator: Simulator | None = None
    popularity_order: Int64Array = field(init=False)
    position: dict[int, int] = field(init=False, repr=False)
    _genre_masks: dict[str, BoolArray] = field(init=False, repr=False)
    #: ``(answers key, training users' weights, P(seen))`` of the latest ``adaptive`` call
    #: (strategies)
    last_posterior: tuple[tuple[tuple[int, bool], ...], Float64Array, Float64Array] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self.popularity_order = np.lexsort((self.movie_ids, -self.mean_stars, -self.counts))
        self.position = {int(m): i for i, m in enumerate(self.movie_ids)}
        masks: dict[str, BoolArray] = {}
        for item, names in enumerate(self.genres):
            for name in names:
                masks.setdefault(name, np.zeros(self.n_items, dtype=bool))[item] = True
        masks.pop("(no genres listed)", None)
        self._genre_masks = masks
        self.seen_t = self.seen.T.tocsr()  # (n, n_users): a movie's raters as one row

    @property
    def n_items(self) -> int:
        return int(self.movie_ids.size)

    @property
    def n_users(self) -> int:
        return int(self.seen.shape[0])

    @property
    def genre_names(self) -> list[str]:
        """Every genre some movie has, sorted."""
        return sorted(self._genre_masks)

    def genre_mask(self, genre: str) -> BoolArray | None:
        """``(n,)`` bool: movies of ``genre`` (None if no movie has it)."""
        return self._genre_masks.get(genre)

    def items_of(self, movie_ids: Sequence[int]) -> Int64Array:
        """Positions of the known ``movie_ids`` (unknown ones dropped), int64."""
        out = [self.position.get(int(m), -1) for m in movie_ids]
        return np.array([i for i in out if i >= 0], dtype=np.int64)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def build(
        cls,
        train: Ratings,
        model: Recommender | None = None,
        catalog: Catalog | None = None,
        movie_ids: IndexArray | None = None,
        seed: int = 0,
        max_users: int = MAX_USERS,
    ) -> OnboardingIndex:
        """The index over ``movie_ids`` (default: the catalogue's if given, else the
        training data's), from ``train`` only; ``model`` gives item factors (via
        ``item_vectors()``) and ``catalog`` years and genres."""
        if movie_ids is None:
            movie_ids = catalog.frame.index.to_numpy() if catalog is not None else train.movie_ids
        movie_ids = np.asarray(movie_ids, dtype=np.int64)
        n = movie_ids.size
        columns = train.items_of(movie_ids)  # (n,) training column or -1
        known = columns >= 0
        matrix = train.matrix.tocsr()
        user_rows = np.arange(matrix.shape[0])
        if matrix.shape[0] > max_users:  # seeded sample of users for P(seen)
            user_rows = np.sort(
                np.random.default_rng(seed).choice(matrix.shape[0], max_users, False)
            )
            matrix = matrix[user_rows]
        # training columns -> our positions (movies outside movie_ids dropped)
        to_ours = np.full(train.n_items, -1, dtype=np.int64)
        to_ours[columns[known]] = np.flatnonzero(known)
        coo = matrix.tocoo()
        keep = to_ours[coo.col] >= 0
        seen = sp.csr_matrix(
            (np.ones(int(keep.sum()), np.float32), (coo.row[keep], to_ours[coo.col[keep]])),
            shape=(matrix.shape[0], n),
        )
        # counts, means and entropy from all training ratings (not the sample)
        full = train.matrix.tocoo()
        ours = to_ours[full.col]
        ok = ours >= 0
        ours, stars = ours[ok], full.data[ok].astype(np.float64)
        counts = np.bincount(ours, minlength=n).astype(np.int64)
        sums = np.bincount(ours, weights=stars, minlength=n)
        mean_stars = sums / np.maximum(counts, 1)
        bins = np.clip(np.rint(stars * 2).astype(np.int64) - 1, 0, N_STAR_BINS - 1)
        hist = np.bincount(ours * N_STAR_BINS + bins, minlength=n * N_STAR_BINS)
        entropy = rating_entropy(hist.reshape(n, N_STAR_BINS))
        years = np.full(n, np.nan)
        genres: list[tuple[str, ...]] = [()] * n
        if catalog is not None:
            frame = catalog.frame.reindex(movie_ids)
            years = frame["year"].astype("Float64").fillna(np.nan).to_numpy(np.float64)
            genres = [tuple(g) if isinstance(g, tuple | list) else () for g in frame["genres"]]
        factors, prior = None, DEFAULT_PRIOR
        vectors = model.item_vectors() if model is not None else None
        if vectors is not None and model is not None and model.movie_ids is not None:
            factors = np.zeros((n, vectors.shape[1]), dtype=np.float64)
            index = {int(m): i for i, m in enumerate(model.movie_ids)}
            rows = np.array([index.get(int(m), -1) for m in movie_ids])
            factors[rows >= 0] = vectors[rows[rows >= 0]]
            prior = _factor_prior(model)
        simulator = (
            Simulator.build(train, model, movie_ids, user_rows, seed) if model is not None else None
        )
        return cls(
            movie_ids=movie_ids,
            counts=counts,
            mean_stars=mean_stars,
            entropy=entropy,
            years=years,
            genres=genres,
            seen=seen,
            item_factors=factors,
            prior=prior,
            simulator=simulator,
        )


def rating_entropy(histogram: IndexArray) -> Float64Array:
    """``(n,)`` Shannon entropy in bits of each row of a ``(n, bins)`` count histogram
    (0 for a row without counts)."""
    counts = np.asarray(histogram, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    share = counts / np.maximum(totals, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bits = np.where(share > 0, -share * np.log2(share), 0.0)
    entropy: Float64Array = bits.sum(axis=1)
    return entropy


def _factor_prior(model: Recommender) -> float:
    """The ridge weight the model folds a visitor in with (its ``reg_all``), if it says."""
    reg = model.fold_in_reg()
    return float(reg) if reg is not None and reg > 0 else DEFAULT_PRIOR
