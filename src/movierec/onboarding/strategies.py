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
- ``adaptive`` (with a model that has an item-item matrix, ``ease``): GreedyExtend over
  simulated visitors (Rashid, Karypis & Riedl 2008; a soft version of Golbandi, Koren &
  Lempel's 2011 decision trees; :mod:`.simulate`). The batch is built one movie at a
  time, each time the one that most raises the mean NDCG@10 of training users who are
  asked it and answer what they rated, ranked through ``ease``'s own relevance (rows of
  ``B`` weighted by ``stars - like_offset``). Every training user starts from its own
  answers to what the visitor was already asked and counts with its weight:
  * weights: each training user as a "visitor type", weighted by how well it explains
    the answers (``exp(beta (#answered-seen it rated - #answered-not-seen it rated))``,
    the likelihood under a symmetric answer noise ``eps``: ``beta = log((1 - eps) /
    eps)``); a movie's P(seen) is the weighted share of them who rated it. With no
    answers every user counts alike and P(seen) is the movie's popularity.
  * the movie is chosen among the ``GREEDY_SHORTLIST`` candidates most likely seen, so the
    visitor can answer (unrestricted, the greedy prefers movies few have seen: they keep
    the hits in place);
  * ``SIM_SAMPLE`` simulated users are drawn by weight with the request's seeded ``rng``:
    this bounds the time and is the variety (two visitors with no answers get different
    first batches; the same seed, the same batch); after the first pick only the
    ``RECHECK`` best gains so far are measured again.
  What the greedy learns by itself: the few most popular movies are not worth asking
  (answered, they take a sure hit out of the visitor's remaining liked movies).
- ``adaptive`` for a model without one (``factor_adaptive``): ``P(seen | answers) **
  SEEN_POWER x information``, the information being the expected shrinkage of the trace
  of the folded-in user factors' posterior covariance ``A^-1`` (``A = prior I + sum
  q q'`` over rated movies) if the movie were rated: ``q' A^-2 q / (1 + q' A^-1 q)``
  (Sherman-Morrison), ``A`` taking each pick in weighted by its P(seen); the
  ``SEEN_SKIP`` movies most likely seen are not asked. Without item factors the
  information is the rating entropy.

Constants were chosen on validation users only (``bench/onboarding_validate.py``:
ml-latest-small users whose id is not a multiple of 5, 4 user folds, ``ease``); the
evaluation folds were never looked at. What was tried, with its figures, is in
docs/onboarding-experiments.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from movierec.data.arrays import BoolArray, Float64Array, Int64Array
from movierec.onboarding.index import OnboardingIndex

#: ``random-top`` draws among this many most-rated candidates
RANDOM_POOL = 50
#: adaptive: answer noise (a visitor type "has seen" with prob. 1 - eps what it rated)
SEEN_EPS = 0.3
#: factor adaptive: exponent of P(seen) against the information term
SEEN_POWER = 1.0
#: factor adaptive: the movies most likely seen that are left for the recommendations
#: (the model would rank them first anyway; asking them spends a question on a sure hit)
SEEN_SKIP = 15
#: factor adaptive: the greedy batch is chosen among this many movies most likely seen
ADAPTIVE_SHORTLIST = 150
#: factor adaptive: the information term counts at most this many of the latest ratings
MAX_RATED = 100
#: adaptive (GreedyExtend): questions are chosen among this many movies most likely seen
GREEDY_SHORTLIST = 40
#: adaptive (GreedyExtend): simulated users weighing under this share of the heaviest
#: one are left out (they would change the gains by less than rounding)
MIN_WEIGHT = 1e-4
#: adaptive (GreedyExtend): each pick is drawn at random among this many best gains
VARIETY_POOL = 1
#: adaptive (GreedyExtend): simulate this many training users drawn by weight (0: all)
SIM_SAMPLE = 150
#: adaptive (GreedyExtend): after the first pick re-measure only this many best (0: all)
RECHECK = 10

Answers = Mapping[int, float | None]
Choose = Callable[[OnboardingIndex, Answers, BoolArray, int, np.random.Generator], Int64Array]


def random_top(
    index: OnboardingIndex,
    answers: Answers,
    candidates: BoolArray,
    n: int,
    rng: np.random.Generator,
) -> Int64Array:
    """``n`` drawn at random among the ``RANDOM_POOL`` most-rated candidates."""
    order = _by_popularity(index, candidates)
    pool = order[: max(RANDOM_POOL, n)]
    return rng.choice(pool, size=min(n, pool.size), replace=False)


def popular(
    index: OnboardingIndex,
    answers: Answers,
    candidates: BoolArray,
    n: int,
    rng: np.random.Generator,
) -> Int64Array:
    """The ``n`` most-rated candidates."""
    return _by_popularity(index, candidates)[:n]


def pop_entropy(
    index: OnboardingIndex,
    answers: Answers,
    candidates: BoolArray,
    n: int,
    rng: np.random.Generator,
) -> Int64Array:
    """The ``n`` candidates of highest ``log2(1 + count) x entropy``."""
    score = np.log2(1.0 + index.counts) * index.entropy
    return _top(score, candidates, n, index)


def adaptive(
    index: OnboardingIndex,
    answers: Answers,
    candidates: BoolArray,
    n: int,
    rng: np.random.Generator,
) -> Int64Array:
    """GreedyExtend over the simulated training users among the ``GREEDY_SHORTLIST``
    movies most likely seen (see the module doc); without a simulator (a model with no
    item-item matrix), :func:`factor_adaptive`."""
    simulator = index.simulator
    if simulator is None:
        return factor_adaptive(index, answers, candidates, n, rng)
    weights, p_seen = _posterior(index, answers)
    askable = candidates & (simulator.cand_of >= 0)
    shortlist = _top(p_seen, askable, GREEDY_SHORTLIST, index)
    allowed = np.zeros(simulator.cand_pos.size, dtype=bool)
    allowed[simulator.cand_of[shortlist]] = True
    asked = simulator.cand_of[np.fromiter(answers, dtype=np.int64, count=len(answers))]
    user_weights = weights[simulator.user_rows]
    user_weights[user_weights < MIN_WEIGHT * user_weights.max(initial=0.0)] = 0.0
    picks = simulator.greedy(
        n, user_weights, allowed, asked[asked >= 0], rng,
        sample=SIM_SAMPLE, pool=VARIETY_POOL, recheck=RECHECK,
    )  # fmt: skip
    if picks.size < n:  # too few simulated candidates (a narrow filter): most likely seen
        rest = candidates.copy()
        rest[picks] = False
        picks = np.concatenate([picks, _top(p_seen, rest, n - picks.size, index)])
    return picks


def factor_adaptive(
    index: OnboardingIndex,
    answers: Answers,
    candidates: BoolArray,
    n: int,
    rng: np.random.Generator,
) -> Int64Array:
    """Greedy ``P(seen)^SEEN_POWER x information`` over item factors (module doc): what
    ``adaptive`` does for a model without an item-item matrix."""
    p_seen = _posterior(index, answers)[1]
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


def _posterior(index: OnboardingIndex, answers: Answers) -> tuple[Float64Array, Float64Array]:
    """``(weights, p_seen)``: :func:`user_weights` ``(n_users,)`` and each movie's
    P(seen) ``(n_items,)`` under them, remembered for the latest answers (a batch with a
    year mix asks twice with the same answers)."""
    key = tuple(sorted((i, s is not None) for i, s in answers.items()))
    last = index.last_posterior
    if last is not None and last[0] == key:
        return last[1], last[2]
    weights = user_weights(index, answers)
    p_seen: Float64Array = np.asarray(index.seen_t @ weights).ravel()
    index.last_posterior = (key, weights, p_seen)  # one tuple: a racing thread sees old or new
    return weights, p_seen


def user_weights(index: OnboardingIndex, answers: Answers) -> Float64Array:
    """``(n_users,)`` float64 weights (sum 1) of the index's training users: how well each
    explains the answers, ``exp(beta (#answered-seen it rated - #answered-not-seen it
    rated))`` (see the module doc); uniform with no answers."""
    if not index.n_users:
        return np.zeros(0)
    seen = [i for i, s in answers.items() if s is not None]
    unseen = [i for i, s in answers.items() if s is None]
    agreement = _raters(index, seen) - _raters(index, unseen)
    log_w = np.log((1.0 - SEEN_EPS) / SEEN_EPS) * agreement
    weights: Float64Array = np.exp(log_w - log_w.max())
    return weights / float(weights.sum())


def seen_probability(index: OnboardingIndex, answers: Answers) -> Float64Array:
    """``(n_items,)`` P(the visitor has seen each movie | answers), from training users
    weighted by how well each explains the answers (see the module doc); a copy of what
    :func:`adaptive` reads, so the caller may change it."""
    return _posterior(index, answers)[1].copy()


def _raters(index: OnboardingIndex, items: list[int]) -> Float64Array:
    """``(n_users,)`` float64: how many of ``items`` each training user rated."""
    if not items:
        return np.zeros(index.n_users)
    indptr, indices = index.seen_t.indptr, index.seen_t.indices
    users = np.concatenate([indices[indptr[i] : indptr[i + 1]] for i in items])
    return np.bincount(users, minlength=index.n_users).astype(np.float64)


def _times_posterior(q: Float64Array, rated: Float64Array, prior: float) -> Float64Array:
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
    projected: Float64Array = np.einsum("ir,rk->ik", solved, rated)
    return (q - projected) / prior


STRATEGIES: dict[str, Choose] = {
    "random-top": random_top,
    "popular": popular,
    "pop-entropy": pop_entropy,
    "adaptive": adaptive,
}


def _by_popularity(index: OnboardingIndex, candidates: BoolArray) -> Int64Array:
    order = index.popularity_order
    chosen: BoolArray = candidates[order]
    return order[chosen]


def _top(score: Float64Array, candidates: BoolArray, n: int, index: OnboardingIndex) -> Int64Array:
    """The ``n`` candidates of highest ``score``, best first (ties: popularity order)."""
    order = _by_popularity(index, candidates)  # tie-break: more rated first
    if order.size == 0:
        return order
    values = score[order]
    part = np.argpartition(-values, n - 1)[:n] if order.size > n else np.arange(order.size)
    return order[part[np.lexsort((part, -values[part]))]]
