"""Which movies to ask a visitor next: the onboarding strategies.

Each strategy is ``choose(index, answers, candidates, n, rng) -> (k,) item positions``
(``k <= n``, best first) where ``answers`` maps item positions to stars (rated) or None
(shown, not seen) and ``candidates`` is a ``(n_items,)`` bool mask of the movies that may
be asked (not shown yet, within the filters). Strategies read only the index (training
data), never the visitor's other ratings.

- ``random-top``: the original app: a random draw among the ``RANDOM_POOL`` most-rated
  candidates (as they run out, the pool moves down the popularity order).
- ``popular``: the most-rated candidates.
- ``pop-entropy``: ``log(count) x rating entropy`` (Rashid et al. 2002, "Getting to know
  you"): popular movies people disagree about.
- ``adaptive``: ``P(seen | answers) ** SEEN_POWER x information``, chosen greedily:
  * P(seen): the training users as "visitor types", each weighted by how well it
    explains the answers (``exp(beta (#answered-seen it rated - #answered-not-seen it
    rated))``, the likelihood under a symmetric answer noise ``eps``: ``beta =
    log((1 - eps) / eps)``); a movie's P(seen) is the weighted share of them who rated it.
    With no answers this is the movie's popularity.
  * information: the expected shrinkage of the trace of the folded-in user factors'
    posterior covariance ``A^-1`` (``A = prior I + sum q q'`` over rated movies) if the
    movie were rated: ``q' A^-2 q / (1 + q' A^-1 q)`` (Sherman-Morrison). After each pick
    ``A`` takes that movie in, weighted by its P(seen), so the batch spreads over the
    factor space instead of asking five near-identical movies.
  * The ``SEEN_SKIP`` movies most likely seen are not asked: the model recommends them
    first anyway (EASE is fitted on who-rated-what, the same signal as P(seen)), so a
    question spent on one tells it little and, answered, removes a sure hit.
  Without item factors the information is the rating entropy (no diversification).

The adaptive constants were chosen on validation users only (ml-latest-small users whose
id is not a multiple of 5, 4 user folds, ``ease``), never on the evaluation folds:
``SEEN_SKIP`` 0 / 5 / 10 / 15 / 20 / 25 / 30 / 50 gave NDCG@10 after 15 asked 0.24 /
0.39 / 0.44 / 0.45 / 0.44 / 0.44 / 0.43 / 0.39 (random-top 0.40); ``SEEN_POWER`` 0.5-2
and ``SEEN_EPS`` 0.1-0.3 moved it by under 0.01; a variant skipping the model's own top
picks (one fold-in per round) was no better and twice as slow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from movierec.onboarding.index import OnboardingIndex

#: ``random-top`` draws among this many most-rated candidates
RANDOM_POOL = 50
#: adaptive: answer noise (a visitor type "has seen" with prob. 1 - eps what it rated)
SEEN_EPS = 0.3
#: adaptive: exponent of P(seen) against the information term
SEEN_POWER = 1.0
#: adaptive: the movies most likely seen that are left for the recommendations (the
#: model would rank them first anyway; asking them spends a question on a sure hit)
SEEN_SKIP = 15
#: adaptive: the greedy batch is chosen among this many movies most likely seen
ADAPTIVE_SHORTLIST = 150
#: adaptive: the information term counts at most this many of the latest ratings
MAX_RATED = 100

Answers = Mapping[int, float | None]
Choose = Callable[[OnboardingIndex, Answers, np.ndarray, int, np.random.Generator], np.ndarray]


def random_top(
    index: OnboardingIndex,
    answers: Answers,
    candidates: np.ndarray,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n`` drawn at random among the ``RANDOM_POOL`` most-rated candidates."""
    order = _by_popularity(index, candidates)
    pool = order[: max(RANDOM_POOL, n)]
    return rng.choice(pool, size=min(n, pool.size), replace=False)


def popular(
    index: OnboardingIndex,
    answers: Answers,
    candidates: np.ndarray,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The ``n`` most-rated candidates."""
    return _by_popularity(index, candidates)[:n]


def pop_entropy(
    index: OnboardingIndex,
    answers: Answers,
    candidates: np.ndarray,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The ``n`` candidates of highest ``log2(1 + count) x entropy``."""
    score = np.log2(1.0 + index.counts) * index.entropy
    return _top(score, candidates, n, index)


def adaptive(
    index: OnboardingIndex,
    answers: Answers,
    candidates: np.ndarray,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Greedy ``P(seen)^SEEN_POWER x information`` (see the module doc)."""
    key = tuple(sorted((i, s is not None) for i, s in answers.items()))
    last = index.last_seen  # a batch with a year mix asks twice with the same answers
    if last is not None and last[0] == key:
        p_seen = last[1]
    else:
        p_seen = seen_probability(index, answers)
        index.last_seen = (key, p_seen)  # one tuple: a racing thread sees old or new
    ranked = _top(p_seen, candidates, SEEN_SKIP + ADAPTIVE_SHORTLIST, index)
    shortlist = ranked[min(SEEN_SKIP, max(ranked.size - n, 0)) :]
    if index.item_factors is None:
        return _top(p_seen**SEEN_POWER * (0.1 + index.entropy), candidates, n, index)
    if shortlist.size <= n:
        return shortlist
    q = index.item_factors[shortlist]  # (s, k)
    rated = np.asarray([i for i, s in answers.items() if s is not None], dtype=np.int64)
    v = _times_posterior(q, index.item_factors[rated[-MAX_RATED:]], index.prior)
    weight = p_seen[shortlist] ** SEEN_POWER
    chosen: list[int] = []
    free = np.ones(shortlist.size, dtype=bool)
    for _ in range(n):
        quad = np.einsum("ij,ij->i", v, q)  # q' A^-1 q
        gain = np.einsum("ij,ij->i", v, v) / (1.0 + quad)  # q' A^-2 q / (1 + q' A^-1 q)
        score = np.where(free, weight * gain, -np.inf)
        best = int(np.argmax(score))
        if not np.isfinite(score[best]):
            break
        chosen.append(best)
        free[best] = False
        # A += p q q' (expected): every row A^-1 q_j by Sherman-Morrison
        p = float(p_seen[shortlist[best]])
        v_best = v[best].copy()
        v -= (
            np.einsum("ij,j->i", v, q[best])[:, None]
            * v_best[None, :]
            * (p / (1.0 + p * quad[best]))
        )
    return shortlist[np.asarray(chosen, dtype=np.int64)]


def seen_probability(index: OnboardingIndex, answers: Answers) -> np.ndarray:
    """``(n_items,)`` P(the visitor has seen each movie | answers), from training users
    weighted by how well each explains the answers (see the module doc)."""
    seen = [i for i, s in answers.items() if s is not None]
    unseen = [i for i, s in answers.items() if s is None]
    agreement = _raters(index, seen) - _raters(index, unseen)
    log_w = np.log((1.0 - SEEN_EPS) / SEEN_EPS) * agreement
    if not index.n_users:
        return np.zeros(index.n_items)
    weights = np.exp(log_w - log_w.max())
    return np.asarray(index.seen_t @ weights).ravel() / float(weights.sum())


def _raters(index: OnboardingIndex, items: list[int]) -> np.ndarray:
    """``(n_users,)`` float64: how many of ``items`` each training user rated."""
    if not items:
        return np.zeros(index.n_users)
    indptr, indices = index.seen_t.indptr, index.seen_t.indices
    users = np.concatenate([indices[indptr[i] : indptr[i + 1]] for i in items])
    return np.bincount(users, minlength=index.n_users).astype(np.float64)


def _times_posterior(q: np.ndarray, rated: np.ndarray, prior: float) -> np.ndarray:
    """``(s, k)`` rows ``A^-1 q_j`` with ``A = prior I + rated' rated``.

    Woodbury: ``A^-1 = (I - R' (prior I_r + R R')^-1 R) / prior``, an ``r x r`` solve for
    ``r`` rated movies instead of a ``k x k`` inverse; products by ``einsum``, not BLAS:
    these are small, and BLAS would wake its thread pool (tens of ms on a busy machine,
    see ``bench/README.md``).
    """
    if rated.shape[0] == 0:
        return q / prior
    gram = np.einsum("ik,jk->ij", rated, rated)
    gram[np.diag_indices_from(gram)] += prior
    qr = np.einsum("ik,jk->ij", q, rated)  # (s, r)
    solved = np.linalg.solve(gram, qr.T).T  # (s, r) (prior I + R R')^-1 R q
    return (q - np.einsum("ir,rk->ik", solved, rated)) / prior


STRATEGIES: dict[str, Choose] = {
    "random-top": random_top,
    "popular": popular,
    "pop-entropy": pop_entropy,
    "adaptive": adaptive,
}


def _by_popularity(index: OnboardingIndex, candidates: np.ndarray) -> np.ndarray:
    order = index.popularity_order
    return order[candidates[order]]


def _top(score: np.ndarray, candidates: np.ndarray, n: int, index: OnboardingIndex) -> np.ndarray:
    """The ``n`` candidates of highest ``score``, best first (ties: popularity order)."""
    order = _by_popularity(index, candidates)  # tie-break: more rated first
    if order.size == 0:
        return order
    values = score[order]
    part = np.argpartition(-values, n - 1)[:n] if order.size > n else np.arange(order.size)
    return order[part[np.lexsort((part, -values[part]))]]
