"""The two evaluation protocols, one fold at a time.

**rating** (:func:`rating_fold`): fit on the fold's training ratings, then

- RMSE / MAE of ``predict`` on every test pair (clipped to the data set's star scale);
- top-N for every training user with at least one relevant test movie (test stars >=
  ``threshold``, movie known to training): rank all training movies the user did not rate
  in training by ``score_users``, and measure where the relevant ones land.

**onboarding** (:func:`onboarding_fold`): the web app's flow, simulated. Fit on the users
not held out. For each held-out user, the form shows ``n_shown`` movies drawn at random
from the ``n_popular`` most-rated training movies; the user reveals their ratings of the
shown movies they rated. The method folds those in, ranks every training movie except
the revealed ones, and is scored against the user's other ratings >= ``threshold``.
Users who reveal nothing, or have no relevant movie left, are skipped (counted).

Neither protocol filters movies by support unless ``min_ratings`` asks (the web app hides
movies with fewer than 20 ratings; ``min_ratings=20`` measures that).

Beyond accuracy, in both protocols and for every method that ranks (:meth:`_Ranking.summary`,
:func:`taste_metrics`): ``distinct@k`` and ``coverage@k`` (movies in all top-k lists),
``popularity@k`` (mean popularity percentile, 0-100), ``novelty@k`` (bits), ``overlap@k``
(mean Jaccard overlap of two users' top-k sets), and with the data set's catalogue
``diversity@k`` (intra-list genre distance), ``miscalibration@k`` (Steck's KL between the
genres of what the user liked, i.e. rated >= ``threshold`` in training or on the form, and
of the list) and ``taste_loved@10`` / ``taste_hated@10`` (the 90 genre personas of
:mod:`.personas`, folded in like onboarding visitors).

Both return a :class:`FoldOutcome`: per-method metric values and fold-level counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movierec.data.arrays import BoolArray, Float64Array, FloatArray, IndexArray, Int64Array
from movierec.data.ratings import Ratings
from movierec.evaluate import metrics
from movierec.evaluate.adapters import Method
from movierec.evaluate.calibration import (
    Person,
    like_reliability,
    onboarding_people,
    rating_people,
)
from movierec.evaluate.personas import Persona, genre_personas, taste_shares

RELEVANT_STARS = 4.0
BATCH_USERS = 256
N_POPULAR = 50  # the web form draws from the 50 most-rated movies...
N_SHOWN = 15  # ...and shows 15 of them
#: the onboarding protocol ranks at most this many held-out visitors (a seeded sample of
#: them when there are more: on a 25 M-rating set one fold holds out ~32k users)
MAX_VISITORS = 5000

#: called with (method name, phase) as work progresses, for progress bars
Reporter = Callable[[str, str], None]
#: taste share is measured on each persona's top this-many
TASTE_K = 10


@dataclass
class FoldOutcome:
    """What one fold measured.

    metrics: ``{method: {metric: value}}``.
    info: fold-level counts (ratings, users evaluated and skipped, ...).
    """

    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Ranking:
    """Accumulates per-user ranking metrics and top-k lists over batches of users."""

    k_values: Sequence[int]
    per_user: dict[str, list[Float64Array]] = field(default_factory=dict)
    top_lists: list[Int64Array] = field(default_factory=list)
    n_users: int = 0

    def add(
        self,
        scores: FloatArray,
        exclude: sp.csr_matrix,
        relevant: sp.csr_matrix,
        banned: BoolArray | None = None,
    ) -> None:
        """Rank one batch.

        scores: ``(b, n_items)``; exclude / relevant: ``(b, n_items)`` CSR patterns of the
        movies that may not be recommended / count as hits (disjoint).
        banned: ``(n_items,)`` bool, movies nobody may be recommended (support filter).
        """
        scores = np.array(scores, dtype=np.float64)  # a copy we may overwrite
        scores[~np.isfinite(scores)] = -np.inf  # NaN from a broken model ranks last
        ex = exclude.tocoo()
        scores[ex.row, ex.col] = -np.inf
        n_candidates = scores.shape[1] - np.diff(exclude.indptr)
        if banned is not None and banned.any():
            scores[:, banned] = -np.inf
            both = np.bincount(ex.row[banned[ex.col]], minlength=scores.shape[0])
            n_candidates -= int(banned.sum()) - both
        relevant = sp.csr_matrix(relevant)
        order, rel_ranks = metrics.top_and_ranks(
            scores, max(self.k_values) + 1, relevant.indptr, relevant.indices
        )
        rel_rows = np.repeat(np.arange(scores.shape[0]), np.diff(relevant.indptr))
        per_user = metrics.user_ranking_metrics(
            rel_rows, rel_ranks, np.diff(relevant.indptr), self.k_values
        )
        for name, values in per_user.items():
            self.per_user.setdefault(name, []).append(values)
        rows = np.arange(scores.shape[0])
        for k in self.k_values:  # is the k-th place decided by the tie-break (item order)?
            if k < scores.shape[1]:
                at_k, after = scores[rows, order[:, k - 1]], scores[rows, order[:, k]]
                tied = (at_k == after) & np.isfinite(after)
                self.per_user.setdefault(f"ties@{k}", []).append(tied.astype(np.float64))
        top = order[:, : max(self.k_values)].copy()
        top[np.arange(top.shape[1])[None, :] >= n_candidates[:, None]] = -1
        self.top_lists.append(top)
        self.n_users += scores.shape[0]

    def summary(
        self,
        info: Float64Array,
        n_items: int,
        fold: FoldData | None = None,
        liked: sp.spmatrix | None = None,
    ) -> dict[str, float]:
        """Means over users, plus the beyond-accuracy measures of the top-k lists.

        info: ``(n_items,)`` self-information (bits); n_items: candidate movies (the
        coverage denominator). fold: the fold's :class:`FoldData` (popularity
        percentiles; genres, if known); liked: ``(n_users, n_items)`` sparse, the movies
        each ranked user liked, in the order they were added (genre miscalibration).
        """
        if not self.n_users:
            return {}
        out = {name: float(np.concatenate(v).mean()) for name, v in self.per_user.items()}
        out["map"] = out.pop("ap")
        top = np.concatenate(self.top_lists)
        genres = fold.genres if fold is not None else None
        for k in self.k_values:
            out[f"coverage@{k}"] = metrics.catalogue_coverage(top[:, :k], n_items)
            out[f"distinct@{k}"] = float(metrics.distinct_items(top[:, :k]))
            out[f"novelty@{k}"] = metrics.novelty(top[:, :k], info)
            if fold is not None:
                out[f"popularity@{k}"] = metrics.mean_popularity_percentile(
                    top[:, :k], fold.percentiles
                )
            out[f"overlap@{k}"] = metrics.personalisation_overlap(top, k)
            if genres is not None:
                out[f"diversity@{k}"] = metrics.intra_list_diversity(top[:, :k], genres)
                if liked is not None:
                    out[f"miscalibration@{k}"] = metrics.genre_miscalibration(
                        liked, top[:, :k], genres
                    )
        return out


@dataclass
class FoldData:
    """What the beyond-accuracy measures need from a fold's training data.

    percentiles: ``(n_items,)`` popularity percentile (0-100) of each training movie.
    genres: ``(n_items, n_genres)`` bool genre membership (None without a catalogue).
    catalog: the catalogue (genres of raw movieIds), or None.
    personas: the genre personas (:func:`~movierec.evaluate.personas.genre_personas`),
        empty without a catalogue.
    """

    percentiles: Float64Array
    genres: BoolArray | None
    catalog: Any
    personas: list[Persona]

    @classmethod
    def build(cls, train: Ratings, catalog: Any = None, seed: int = 0) -> FoldData:
        percentiles = metrics.popularity_percentiles(train.item_counts())
        if catalog is None:
            return cls(percentiles, None, None, [])
        genres = catalog.frame["genres"].reindex(train.movie_ids)
        membership, _ = metrics.genre_matrix(
            [g if isinstance(g, tuple | list) else () for g in genres]
        )
        return cls(percentiles, membership, catalog, genre_personas(train, catalog, seed=seed))


def taste_metrics(
    method: Method, train: Ratings, fold: FoldData, banned: BoolArray | None = None
) -> dict[str, float]:
    """``taste_loved@10`` / ``taste_hated@10``: the method folds in each of ``fold.personas``
    as a visitor (``score_visitors``, as the onboarding protocol does), ranks every training
    movie the persona did not rate (nor ``banned``), and the shares of the top 10 in the
    loved / hated genre are averaged over personas. Empty when there are no personas or the
    method cannot fold in."""
    if not fold.personas or not method.can_fold_in:
        return {}
    visitors = []
    for persona in fold.personas:
        items = train.items_of(list(persona.ratings))
        stars = np.fromiter(persona.ratings.values(), np.float64, len(persona.ratings))
        visitors.append((items, stars))
    scores, _ = method.score_visitors(visitors)
    scores = np.array(scores, dtype=np.float64)
    scores[~np.isfinite(scores)] = -np.inf
    for row, (items, _) in enumerate(visitors):
        scores[row, items] = -np.inf
    if banned is not None and banned.any():
        scores[:, banned] = -np.inf
    none = np.zeros(len(visitors) + 1, np.int64)
    top, _ = metrics.top_and_ranks(scores, TASTE_K, none, np.zeros(0, np.int64))
    lists = [
        train.movie_ids[row[np.isfinite(scores[r, row])]].tolist() for r, row in enumerate(top)
    ]
    loved, hated = taste_shares(lists, fold.personas, fold.catalog, k=TASTE_K)
    return {f"taste_loved@{TASTE_K}": loved, f"taste_hated@{TASTE_K}": hated}


# -- rating protocol ----------------------------------------------------------------------


def rating_fold(
    methods: Sequence[Method],
    train_frame: pd.DataFrame,
    test_frame: pd.DataFrame,
    k_values: Sequence[int],
    scale: tuple[float, float],
    threshold: float = RELEVANT_STARS,
    min_ratings: int = 0,
    report: Reporter | None = None,
    catalog: Any = None,
) -> FoldOutcome:
    """Fit each method on ``train_frame`` and measure it on ``test_frame`` (see module doc).

    min_ratings: like the recommend service's support filter, never recommend movies with
    fewer training ratings than this (0: no filter, the default); they are not relevant
    either.
    catalog: the data set's :class:`~movierec.data.catalog.Catalog`, for the genre measures
    and the taste personas (left out without it).
    """
    train = Ratings.from_frame(train_frame)
    banned = train.item_counts() < min_ratings
    test_users = test_frame["userId"].to_numpy(np.int64)
    test_movies = test_frame["movieId"].to_numpy(np.int64)
    test_stars = test_frame["rating"].to_numpy(np.float64)
    rows = train.users_of(test_users)
    cols = train.items_of(test_movies)
    known = (rows >= 0) & (cols >= 0)
    liked = known & (test_stars >= threshold)
    liked[known] &= ~banned[cols[known]]
    relevant = sp.csr_matrix(
        (np.ones(int(liked.sum()), np.float32), (rows[liked], cols[liked])),
        shape=train.matrix.shape,
    )
    relevant.sum_duplicates()
    relevant = relevant - relevant.multiply(train.matrix.astype(bool))  # rated in train: no
    relevant.eliminate_zeros()
    ranked_users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    info = metrics.self_information(train.item_counts(), train.n_users)
    fold = FoldData.build(train, catalog)
    liked = train.matrix[ranked_users]
    liked.data = (liked.data >= threshold).astype(np.float32)
    liked.eliminate_zeros()
    outcome = FoldOutcome(
        info={
            "n_train": train.nnz,
            "n_test": int(test_stars.size),
            "n_train_users": train.n_users,
            "n_train_items": train.n_items,
            "test_pairs_unknown": int((~known).sum()),
            "relevant_pairs": int(relevant.nnz),
            "relevant_unknown_movie": int(((test_stars >= threshold) & (cols < 0)).sum()),
            "users_ranked": int(ranked_users.size),
            "test_users_unknown": int(np.unique(test_users[rows < 0]).size),
            "users_without_relevant": int(np.unique(rows[rows >= 0]).size - ranked_users.size),
            "min_ratings": int(min_ratings),
        }
    )
    people = rating_people(train, rows, cols, test_stars)
    lo, hi = scale
    for method in methods:
        values: dict[str, float] = {}
        _tell(report, method.name, "fit")
        start = time.perf_counter()
        method.fit(train)
        values["fit_s"] = time.perf_counter() - start
        _tell(report, method.name, "predict")
        start = time.perf_counter()
        predicted = np.clip(method.predict(test_users, test_movies), lo, hi)
        values["predict_s"] = time.perf_counter() - start
        values["rmse"] = metrics.rmse(predicted, test_stars)
        values["mae"] = metrics.mae(predicted, test_stars)
        if method.can_rank and ranked_users.size:
            _tell(report, method.name, "rank")
            start = time.perf_counter()
            ranking = _Ranking(k_values)
            for batch in np.array_split(ranked_users, -(-ranked_users.size // BATCH_USERS)):
                scores = method.score_users(batch)
                ranking.add(scores, train.matrix[batch], relevant[batch], banned)
            values.update(ranking.summary(info, train.n_items - int(banned.sum()), fold, liked))
            values["rank_s"] = time.perf_counter() - start
        outcome.metrics[method.name] = _with_taste_and_reliability(
            values, method, train, fold, banned, people, report
        )
    return outcome


# -- onboarding protocol ---------------------------------------------------------------------


@dataclass
class _Visitor:
    """One held-out user as the web form would see them."""

    user_id: int
    shown: Int64Array  # (n_shown,) items the form showed
    revealed: Int64Array  # (r,) items the user rated among them
    revealed_stars: Float64Array  # (r,) their stars
    target: Int64Array  # (t,) the user's other rated items known to training
    target_stars: Float64Array  # (t,)


def popular_items(train: Ratings, n: int = N_POPULAR) -> Int64Array:
    """The ``n`` most-rated training items (ties: higher mean stars, then lower movieId)."""
    counts = train.item_counts()
    sums = np.bincount(train.matrix.indices, weights=train.matrix.data, minlength=train.n_items)
    means = sums / np.maximum(counts, 1)
    order = np.lexsort((train.movie_ids, -means, -counts))
    return order[:n]


def onboarding_visitors(
    train: Ratings,
    heldout_frame: pd.DataFrame,
    seed: int,
    n_popular: int = N_POPULAR,
    n_shown: int = N_SHOWN,
) -> tuple[list[_Visitor], dict[str, int]]:
    """Draw the form for every held-out user (seeded); returns visitors and skip counts."""
    rng = np.random.default_rng(seed)
    popular = popular_items(train, n_popular)
    counts = {"heldout_users": 0, "skipped_no_reveal": 0, "skipped_no_relevant": 0}
    visitors = []
    for user_id, rows in heldout_frame.groupby("userId", sort=True):
        counts["heldout_users"] += 1
        shown = rng.choice(popular, size=min(n_shown, popular.size), replace=False)
        items = train.items_of(rows["movieId"].to_numpy())
        stars = rows["rating"].to_numpy(np.float64)
        revealed = np.isin(items, shown) & (items >= 0)
        target = ~revealed & (items >= 0)
        if not revealed.any():
            counts["skipped_no_reveal"] += 1
            continue
        visitors.append(
            _Visitor(
                user_id=int(user_id),
                shown=shown,
                revealed=items[revealed],
                revealed_stars=stars[revealed],
                target=items[target],
                target_stars=stars[target],
            )
        )
    return visitors, counts


def onboarding_fold(
    methods: Sequence[Method],
    train_frame: pd.DataFrame,
    heldout_frame: pd.DataFrame,
    k_values: Sequence[int],
    scale: tuple[float, float],
    seed: int = 0,
    threshold: float = RELEVANT_STARS,
    n_popular: int = N_POPULAR,
    n_shown: int = N_SHOWN,
    min_ratings: int = 0,
    report: Reporter | None = None,
    max_visitors: int = MAX_VISITORS,
    catalog: Any = None,
) -> FoldOutcome:
    """Fit on ``train_frame``; fold in each held-out user's revealed ratings and rank.

    min_ratings: like the recommend service's support filter, never recommend movies with
    fewer training ratings than this (0: no filter, the default).
    Metrics are as in the rating protocol; ``rmse``/``mae`` here are of the folded-in
    predictions on the user's other (unrevealed) ratings: the cold-start error.
    Visitors are folded in and ranked ``BATCH_USERS`` at a time (``score_visitors``:
    ``rank_users`` for our models), so ``fold_in_ms`` is per visitor, amortised. With more
    than ``max_visitors`` rankable visitors a seeded sample of that many is ranked
    (``info["visitors_sampled"]`` says how many of ``info["visitors_rankable"]``).
    catalog: as in :func:`rating_fold`; a visitor "liked" the revealed ratings >=
    ``threshold`` (genre miscalibration).
    """
    train = Ratings.from_frame(train_frame)
    visitors, counts = onboarding_visitors(train, heldout_frame, seed, n_popular, n_shown)
    return visitors_fold(
        methods,
        train,
        visitors,
        {"n_heldout_ratings": int(len(heldout_frame)), **counts},
        k_values,
        scale,
        seed=seed,
        threshold=threshold,
        min_ratings=min_ratings,
        report=report,
        max_visitors=max_visitors,
        catalog=catalog,
    )


def visitors_fold(
    methods: Sequence[Method],
    train: Ratings,
    visitors: list[_Visitor],
    counts: dict[str, int],
    k_values: Sequence[int],
    scale: tuple[float, float],
    seed: int = 0,
    threshold: float = RELEVANT_STARS,
    min_ratings: int = 0,
    report: Reporter | None = None,
    max_visitors: int = MAX_VISITORS,
    catalog: Any = None,
    reliability: bool = True,
) -> FoldOutcome:
    """Fit each method on ``train``, fold in each visitor's revealed ratings and rank every
    training movie but those against the visitor's ``target`` ratings >= ``threshold``:
    the second half of :func:`onboarding_fold`, shared with the temporal protocol
    (:mod:`.temporal`). counts: fold-level counts copied into ``info``. reliability:
    also measure the like probability's reliability (our models; seconds per fit)."""
    banned = train.item_counts() < min_ratings
    too_rare = np.flatnonzero(banned)
    visitors_ranked = [
        v for v in visitors if np.setdiff1d(v.target[v.target_stars >= threshold], too_rare).size
    ]
    counts = dict(counts)
    counts["skipped_no_relevant"] = len(visitors) - len(visitors_ranked)
    if len(visitors_ranked) > max_visitors:
        keep = np.random.default_rng(seed + 1).choice(len(visitors_ranked), max_visitors, False)
        counts["visitors_rankable"] = len(visitors_ranked)
        counts["visitors_sampled"] = max_visitors
        visitors_ranked = [visitors_ranked[i] for i in np.sort(keep)]
    info_bits = metrics.self_information(train.item_counts(), train.n_users)
    exclude, relevant = _visitor_patterns(visitors_ranked, too_rare, train.n_items, threshold)
    fold = FoldData.build(train, catalog, seed=seed)
    liked = _rows_pattern(
        [v.revealed[v.revealed_stars >= threshold] for v in visitors_ranked], train.n_items
    )
    outcome = FoldOutcome(
        info={
            "n_train": train.nnz,
            "n_train_users": train.n_users,
            "n_train_items": train.n_items,
            **counts,
            "users_ranked": len(visitors_ranked),
            "mean_revealed": float(np.mean([v.revealed.size for v in visitors_ranked]))
            if visitors_ranked
            else 0.0,
            "min_ratings": int(min_ratings),
        }
    )
    people = onboarding_people(visitors_ranked)
    lo, hi = scale
    for method in methods:
        if not method.can_fold_in:  # (run_evaluation leaves such methods out)
            _tell(report, method.name, "done")
            continue
        values: dict[str, float] = {}
        _tell(report, method.name, "fit")
        start = time.perf_counter()
        method.fit(train)
        values["fit_s"] = time.perf_counter() - start
        _tell(report, method.name, "fold in")
        ranking = _Ranking(k_values)
        predicted, actual = [], []
        fold_in_s = 0.0
        start = time.perf_counter()
        for first in range(0, len(visitors_ranked), BATCH_USERS):
            batch = visitors_ranked[first : first + BATCH_USERS]
            t0 = time.perf_counter()
            scores, stars = method.score_visitors([(v.revealed, v.revealed_stars) for v in batch])
            fold_in_s += time.perf_counter() - t0
            for row, visitor in enumerate(batch):
                predicted.append(stars[row, visitor.target])
                actual.append(visitor.target_stars)
            rows = slice(first, first + len(batch))
            ranking.add(scores, exclude[rows], relevant[rows], banned)
        values["rank_s"] = time.perf_counter() - start
        values["fold_in_ms"] = 1000 * fold_in_s / max(len(visitors_ranked), 1)
        if predicted:
            p = np.clip(np.concatenate(predicted), lo, hi)
            a = np.concatenate(actual)
            values["rmse"] = metrics.rmse(p, a)
            values["mae"] = metrics.mae(p, a)
        values.update(ranking.summary(info_bits, train.n_items - too_rare.size, fold, liked))
        outcome.metrics[method.name] = _with_taste_and_reliability(
            values, method, train, fold, banned, people if reliability else None, report
        )
    return outcome


def _visitor_patterns(
    visitors: Sequence[_Visitor], too_rare: Int64Array, n_items: int, threshold: float
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(exclude, relevant)`` CSR ``(len(visitors), n_items)``: revealed movies may not be
    recommended; other ratings >= threshold are hits unless revealed or ``too_rare``."""
    ex_rows, ex_cols, rel_rows, rel_cols = [], [], [], []
    for row, v in enumerate(visitors):
        ex_rows.append(np.full(v.revealed.size, row))
        ex_cols.append(v.revealed)
        liked = np.setdiff1d(v.target[v.target_stars >= threshold], too_rare)
        rel_rows.append(np.full(liked.size, row))
        rel_cols.append(liked)
    shape = (len(visitors), n_items)

    def pattern(rows: list[Int64Array], cols: list[Int64Array]) -> sp.csr_matrix:
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        m = sp.csr_matrix((np.ones(r.size, np.float32), (r, c)), shape=shape)
        m.sum_duplicates()
        return m

    return pattern(ex_rows, ex_cols), pattern(rel_rows, rel_cols)


def _rows_pattern(rows: Sequence[IndexArray], n_items: int) -> sp.csr_matrix:
    """``(len(rows), n_items)`` CSR of ones at each row's (distinct) item indices."""
    indptr = np.r_[0, np.cumsum([r.size for r in rows])].astype(np.int64)
    indices = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
    return sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=(len(rows), n_items))


def _with_taste_and_reliability(
    values: dict[str, float],
    method: Method,
    train: Ratings,
    fold: FoldData,
    banned: BoolArray,
    people: Sequence[Person] | None,
    report: Reporter | None,
) -> dict[str, float]:
    """``values`` plus the genre personas' taste shares (with ``taste_s``, their seconds)
    and, for our models, the like probability's reliability; the last steps of a method's
    fold in both protocols."""
    start = time.perf_counter()
    taste = taste_metrics(method, train, fold, banned)
    if taste:
        values.update(taste, taste_s=time.perf_counter() - start)
    _tell(report, method.name, "calibrate")
    if people is not None:  # None: not asked for
        values.update(like_reliability(method, train, people))  # ours: ece, reliability
    _tell(report, method.name, "done")
    return values


def _tell(report: Reporter | None, name: str, phase: str) -> None:
    if report is not None:
        report(name, phase)


# -- onboarding in rounds, with a strategy choosing what to ask -----------------------------

#: per-checkpoint metrics of :func:`strategy_fold`, named ``"<metric>/<asked>"``
CURVE_METRICS = ("ndcg@10", "hit_rate@5", "recall@20")


def strategy_fold(
    methods: Sequence[Method],
    train_frame: pd.DataFrame,
    heldout_frame: pd.DataFrame,
    strategies: Sequence[str],
    rounds: int,
    per_round: int,
    catalog: Any = None,
    seed: int = 0,
    threshold: float = RELEVANT_STARS,
    min_ratings: int = 0,
    report: Reporter | None = None,
) -> FoldOutcome:
    """Onboarding in rounds: each held-out user is asked ``per_round`` movies per round by
    each strategy (choosing from the fold's training data only: an
    :class:`~movierec.onboarding.OnboardingIndex` of ``train_frame`` and the fitted
    model's item factors); the user answers the asked movies they rated in the data (the
    rest are "not seen"). After each round the answers so far are folded in and the
    ranking is scored against the user's other ratings >= ``threshold``.

    A user with no answer yet is ranked by training popularity (the app's fallback).
    Metrics per method x strategy (named ``"<model>:<strategy>"``, or the strategy alone
    for one model), each as ``"<metric>/<asked>"``: ``ndcg@10``, ``hit_rate@5``,
    ``recall@20``, ``rated`` (answers per user), ``rated_share`` (rated / asked),
    ``users`` (users scored at that point); plus ``choose_ms`` (per round) and ``fit_s``.
    """
    from movierec.onboarding import OnboardingIndex, choose_items

    train = Ratings.from_frame(train_frame)
    banned = train.item_counts() < min_ratings
    counts = train.item_counts().astype(np.float64)
    popularity = counts + 1e-6 * -np.arange(train.n_items)  # the fallback ranking
    users = []
    for user_id, rows in heldout_frame.groupby("userId", sort=True):
        items = train.items_of(rows["movieId"].to_numpy())
        stars = rows["rating"].to_numpy(np.float64)
        known = items >= 0
        users.append(
            (int(user_id), dict(zip(items[known].tolist(), stars[known].tolist(), strict=True)))
        )
    k_values = (5, 10, 20)
    asked_points = [per_round * (r + 1) for r in range(rounds)]
    outcome = FoldOutcome(
        info={
            "n_train": train.nnz,
            "n_train_users": train.n_users,
            "n_train_items": train.n_items,
            "heldout_users": len(users),
            "rounds": rounds,
            "per_round": per_round,
            "min_ratings": int(min_ratings),
        }
    )
    for method in methods:
        if not method.can_fold_in:
            _tell(report, method.name, "done")
            continue
        _tell(report, method.name, "fit")
        start = time.perf_counter()
        method.fit(train)
        fit_s = time.perf_counter() - start
        index = OnboardingIndex.build(
            train, getattr(method, "model", None), catalog, movie_ids=train.movie_ids, seed=seed
        )
        for strategy in strategies:
            name = strategy if len(methods) == 1 else f"{method.name}:{strategy}"
            _tell(report, name, "ask")
            rankings = {a: _Ranking(k_values) for a in asked_points}
            rated: dict[int, list[int]] = {a: [] for a in asked_points}
            choose_s, n_rounds = 0.0, 0
            for user_id, truth in users:
                answers: dict[int, float | None] = {}
                shown: list[int] = []
                for asked in asked_points:
                    t0 = time.perf_counter()
                    picks = choose_items(
                        index, answers, shown, per_round, strategy, seed=seed * 100_003 + user_id
                    )
                    choose_s += time.perf_counter() - t0
                    n_rounds += 1
                    for item in picks.tolist():
                        answers[item] = truth.get(item)  # None: not rated = not seen
                    shown.extend(picks.tolist())
                    revealed = np.array([i for i, s in answers.items() if s is not None], np.int64)
                    rated[asked].append(revealed.size)
                    liked = [
                        i
                        for i, s in truth.items()
                        if s >= threshold and answers.get(i) is None and not banned[i]
                    ]
                    if not liked:
                        continue
                    if revealed.size:
                        ranking_row, _ = method.score_visitor(
                            revealed, np.array([answers[i] for i in revealed.tolist()])
                        )
                    else:
                        ranking_row = popularity
                    exclude = sp.csr_matrix(
                        (np.ones(revealed.size, np.float32), (np.zeros(revealed.size), revealed)),
                        shape=(1, train.n_items),
                    )
                    relevant = sp.csr_matrix(
                        (np.ones(len(liked), np.float32), (np.zeros(len(liked)), liked)),
                        shape=(1, train.n_items),
                    )
                    rankings[asked].add(ranking_row[None, :], exclude, relevant, banned)
            values: dict[str, float] = {"fit_s": fit_s}
            values["choose_ms"] = 1000 * choose_s / max(n_rounds, 1)
            for asked in asked_points:
                per_user = rankings[asked].per_user
                for metric in CURVE_METRICS:
                    if metric in per_user:
                        values[f"{metric}/{asked}"] = float(np.concatenate(per_user[metric]).mean())
                values[f"rated/{asked}"] = float(np.mean(rated[asked])) if rated[asked] else 0.0
                values[f"rated_share/{asked}"] = values[f"rated/{asked}"] / asked
                values[f"users/{asked}"] = float(rankings[asked].n_users)
            outcome.metrics[name] = values
            _tell(report, name, "done")
    return outcome


#: one visitor as the protocols fold it in (public name for :mod:`.temporal`)
Visitor = _Visitor
