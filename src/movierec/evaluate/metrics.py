"""Evaluation maths: rating error, ranking quality and beyond-accuracy measures.

Conventions (binary relevance, one ranked list per user):

- ``rank`` is 0-based: the best item has rank 0.
- precision@k = hits in the top k / k; recall@k = hits in the top k / relevant items;
  hit rate@k = 1 if any hit in the top k.
- NDCG@k = DCG@k / IDCG@k with DCG = sum over hits of ``1 / log2(rank + 2)`` and IDCG the
  DCG of a list with ``min(relevant, k)`` hits at the top.
- AP (average precision) = mean over the user's relevant items of precision at that
  item's rank, over the *whole* ranking (relevant items never ranked count as 0); MAP is
  its mean over users.
- Novelty = mean self-information ``-log2(p_i)`` of the recommended items, ``p_i`` the
  share of training users who rated item ``i``.
- Catalogue coverage = distinct recommended items / items that could be recommended.
- Popularity percentile: of each item's training rating count among all items (0-100,
  the most rated at 100); intra-list diversity: mean pairwise ``1 - Jaccard`` of genre
  sets within a list; genre miscalibration: Steck 2018's ``KL(p || q~)`` between the
  genre mix of what a user liked and of their list; personalisation overlap: mean
  Jaccard overlap of two users' top-k sets.

Lists (``recommended``) are ``(n_users, k)`` int item indices, best first, ``-1`` for an
empty slot (fewer candidates than k), as the protocols keep them.

Ranks come from :func:`rank_rows`: descending score, ties broken by the lower item index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from numba import njit, prange

from movierec.data.arrays import BoolArray, Float64Array, FloatArray, Int64Array

# -- rating error ----------------------------------------------------------------------


def rmse(predicted: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Root mean squared error in stars."""
    diff = np.asarray(predicted, np.float64) - np.asarray(actual, np.float64)
    return float(np.sqrt(np.mean(diff**2))) if diff.size else float("nan")


def mae(predicted: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Mean absolute error in stars."""
    diff = np.asarray(predicted, np.float64) - np.asarray(actual, np.float64)
    return float(np.mean(np.abs(diff))) if diff.size else float("nan")


# -- ranking ------------------------------------------------------------------------------


def rank_rows(scores: npt.ArrayLike) -> tuple[Int64Array, Int64Array]:
    """Rank every row of ``scores``.

    scores: ``(n_users, n_items)``; ``-inf`` marks items that are not candidates.
    Returns ``order`` ``(n_users, n_items)`` int64 (item indices best first, ties by lower
    index) and ``ranks`` of the same shape (``ranks[u, order[u, r]] == r``).
    """
    scores = np.asarray(scores)
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(order.shape[0])[:, None]
    ranks[rows, order] = np.arange(order.shape[1])[None, :]
    return order, ranks


def top_and_ranks(
    scores: FloatArray, n_top: int, rel_indptr: npt.ArrayLike, rel_items: npt.ArrayLike
) -> tuple[Int64Array, Int64Array]:
    """What :func:`rank_rows` gives the metrics, without sorting whole rows.

    scores: ``(n_users, n_items)``, no NaN (``-inf`` marks non-candidates).
    n_top: length of the best-first lists wanted.
    rel_indptr / rel_items: CSR rows of the items whose rank is wanted.
    Returns ``top`` ``(n_users, min(n_top, n_items))`` int64 (``rank_rows``' ``order``,
    first columns) and ``(len(rel_items),)`` int64 ranks of ``rel_items`` (``rank_rows``'
    ``ranks``): descending score, ties by the lower item index, exactly as a full stable
    sort. Linear in ``n_items`` per row (a best-first buffer and one counting pass) instead of a
    sort: the onboarding evaluation ranks ~59k movies for tens of thousands of users.
    """
    scores = np.ascontiguousarray(scores)
    n_top = min(int(n_top), scores.shape[1])
    top = np.zeros((scores.shape[0], n_top), dtype=np.int64)
    items = np.asarray(rel_items, np.int64)
    ranks = np.zeros(items.size, dtype=np.int64)
    if scores.shape[0] and n_top:
        _top_and_ranks(
            scores, n_top, np.asarray(rel_indptr, np.int64), items, top, ranks,
        )  # fmt: skip
    return top, ranks


@njit(cache=True, parallel=True, nogil=True)
def _top_and_ranks(
    scores: FloatArray, n_top: int, rel_indptr: Int64Array, rel_items: Int64Array,
    top: Int64Array, ranks: Int64Array,
) -> None:  # fmt: skip
    n_items = scores.shape[1]
    for u in prange(scores.shape[0]):
        row = scores[u]
        # best n_top in one pass: a best-first buffer; an item enters if the buffer is
        # not full or it beats the last (strictly: a tie with a higher index does not)
        best_values = np.empty(n_top, dtype=row.dtype)
        best_items = np.empty(n_top, dtype=np.int64)
        filled = 0
        for j in range(n_items):
            s = row[j]
            if filled == n_top:
                if s <= best_values[n_top - 1]:
                    continue
                t = n_top - 1
            else:
                t = filled
                filled += 1
            while t > 0 and best_values[t - 1] < s:
                best_values[t] = best_values[t - 1]
                best_items[t] = best_items[t - 1]
                t -= 1
            best_values[t] = s
            best_items[t] = j
        for t in range(n_top):
            top[u, t] = best_items[t]
        # ranks: how many items beat each wanted one (higher, or equal with lower index)
        start, stop = rel_indptr[u], rel_indptr[u + 1]
        r = stop - start
        if r == 0:
            continue
        wanted = np.empty(r)
        for t in range(r):
            wanted[t] = row[rel_items[start + t]]
        order = np.argsort(wanted)
        ascending = wanted[order]
        beaten_below = np.zeros(r + 1, dtype=np.int64)  # difference array over ``order``
        tie_wins = np.zeros(r, dtype=np.int64)
        for j in range(n_items):
            s = row[j]
            if s < ascending[0]:
                continue  # beats no wanted item and ties none (the usual case)
            lo, hi = 0, r  # first position whose value is >= s
            while lo < hi:
                mid = (lo + hi) // 2
                if ascending[mid] < s:
                    lo = mid + 1
                else:
                    hi = mid
            beaten_below[0] += 1  # j beats every wanted item below s: positions [0, lo)
            beaten_below[lo] -= 1
            q = lo
            while q < r and ascending[q] == s:
                if j < rel_items[start + order[q]]:
                    tie_wins[q] += 1
                q += 1
        running = 0
        for q in range(r):
            running += beaten_below[q]
            ranks[start + order[q]] = running + tie_wins[q]


def user_ranking_metrics(
    user: npt.ArrayLike,
    rank: npt.ArrayLike,
    n_relevant: npt.ArrayLike,
    k_values: Sequence[int],
) -> dict[str, Float64Array]:
    """Per-user precision/recall/NDCG/hit rate at each k, and AP, from relevant items' ranks.

    user: ``(p,)`` int user position (0..n_users-1) of each relevant (user, item) pair.
    rank: ``(p,)`` 0-based rank of that item in the user's list (``inf`` if not ranked).
    n_relevant: ``(n_users,)`` relevant items per user (the recall/AP denominator, >= 1).
    Returns ``{"precision@k": (n_users,), ..., "ap": (n_users,)}`` float64.
    """
    user = np.asarray(user, dtype=np.int64)
    rank = np.asarray(rank, dtype=np.float64)
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    n_users = n_relevant.size
    out: dict[str, Float64Array] = {}
    gain = np.zeros_like(rank)
    ranked = np.isfinite(rank)
    gain[ranked] = 1.0 / np.log2(rank[ranked] + 2.0)
    for k in k_values:
        top = rank < k
        hits = np.bincount(user[top], minlength=n_users).astype(np.float64)
        dcg = np.bincount(user[top], weights=gain[top], minlength=n_users)
        out[f"precision@{k}"] = hits / k
        out[f"recall@{k}"] = hits / n_relevant
        out[f"ndcg@{k}"] = dcg / ideal_dcg(np.minimum(n_relevant, k).astype(np.int64))
        out[f"hit_rate@{k}"] = (hits > 0).astype(np.float64)
    # AP: the j-th relevant item (0-based, by rank) at rank r adds (j + 1) / (r + 1)
    by_rank = np.lexsort((rank, user))
    u_sorted, r_sorted = user[by_rank], rank[by_rank]
    first = np.flatnonzero(np.r_[True, u_sorted[1:] != u_sorted[:-1]])[: u_sorted.size]
    counts = np.diff(np.r_[first, user.size]).astype(np.int64)
    j = np.arange(user.size) - np.repeat(first, counts)
    precision_at_hit = np.where(np.isfinite(r_sorted), (j + 1) / (r_sorted + 1), 0.0)
    out["ap"] = np.bincount(u_sorted, weights=precision_at_hit, minlength=n_users) / n_relevant
    return out


def ideal_dcg(n_hits: npt.ArrayLike) -> Float64Array:
    """DCG of a list whose first ``n_hits`` items are relevant (elementwise; 0 -> 0)."""
    n_hits = np.asarray(n_hits, dtype=np.int64)
    top = int(n_hits.max()) if n_hits.size else 0
    cumulative: Float64Array = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(top) + 2.0))]
    dcg: Float64Array = cumulative[n_hits]
    return dcg


def ranking_metrics(
    ranked_items: Sequence[int],
    relevant: Iterable[int],
    k_values: Sequence[int] = (5, 10, 20),
) -> dict[str, float]:
    """The metrics of one user's ranked list (best first) against a set of relevant items.

    Relevant items missing from ``ranked_items`` count as never recommended.
    ``{"precision@k": ..., "recall@k": ..., "ndcg@k": ..., "hit_rate@k": ..., "ap": ...}``.
    """
    relevant = list(dict.fromkeys(relevant))
    if not relevant:
        raise ValueError("a user needs at least one relevant item to be scored")
    position = {item: r for r, item in enumerate(ranked_items)}
    ranks = np.array([position.get(item, np.inf) for item in relevant], dtype=np.float64)
    per_user = user_ranking_metrics(
        np.zeros(ranks.size, np.int64), ranks, np.array([len(relevant)]), k_values
    )
    return {name: float(values[0]) for name, values in per_user.items()}


# -- beyond accuracy -------------------------------------------------------------------------


def catalogue_coverage(recommended: npt.ArrayLike, n_candidates: int) -> float:
    """Share of the ``n_candidates`` items that appear in at least one list.

    recommended: item indices (any shape), ``-1`` for empty slots.
    """
    items = np.asarray(recommended).ravel()
    return float(np.unique(items[items >= 0]).size / n_candidates) if n_candidates else 0.0


def self_information(item_counts: npt.ArrayLike, n_users: int) -> Float64Array:
    """``(n_items,)`` float64 ``-log2(count / n_users)`` in bits (items with no rating: nan)."""
    counts = np.asarray(item_counts, dtype=np.float64)
    with np.errstate(divide="ignore"):
        info = -np.log2(counts / float(n_users))
    info[counts <= 0] = np.nan
    return info


def novelty(recommended: npt.ArrayLike, info: Float64Array) -> float:
    """Mean self-information (bits) of all recommended items (``-1`` slots ignored)."""
    items = np.asarray(recommended).ravel()
    items = items[items >= 0]
    return float(np.nanmean(info[items])) if items.size else float("nan")


def distinct_items(recommended: npt.ArrayLike) -> int:
    """How many different items appear in the lists (``-1`` slots ignored)."""
    items = np.asarray(recommended).ravel()
    return int(np.unique(items[items >= 0]).size)


def popularity_percentiles(item_counts: npt.ArrayLike) -> Float64Array:
    """``(n_items,)`` float64 percentile (0-100] of each item's rating count among all items.

    Weak percentile rank: ``100 * (items with count <= this one's) / n_items``, so the most
    rated item is at 100 (ties share the higher value) and the least rated at
    ``100 * ties / n_items``.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    if not counts.size:
        return np.zeros(0)
    at_most = np.searchsorted(np.sort(counts), counts, side="right")
    return 100.0 * at_most / counts.size


def mean_popularity_percentile(recommended: npt.ArrayLike, percentiles: npt.ArrayLike) -> float:
    """Mean popularity percentile (0-100) of all recommended items (``-1`` slots ignored).

    recommended: ``(n_users, k)`` item indices; percentiles: :func:`popularity_percentiles`.
    """
    items = np.asarray(recommended).ravel()
    items = items[items >= 0]
    return float(np.asarray(percentiles)[items].mean()) if items.size else float("nan")


def genre_matrix(genres_per_item: Sequence[Sequence[str]]) -> tuple[BoolArray, list[str]]:
    """``(membership, names)``: ``(n_items, n_genres)`` bool, ``membership[i, g]`` when item
    ``i`` has genre ``names[g]`` (names sorted). Empty names and None entries (a movie
    without genres, e.g. MovieLens' ``(no genres listed)`` as the catalogue holds it) give
    an all-False row."""
    rows = [tuple(g for g in (genres or ()) if g) for genres in genres_per_item]
    names = sorted({g for row in rows for g in row})
    column = {g: j for j, g in enumerate(names)}
    membership = np.zeros((len(rows), len(names)), dtype=bool)
    for i, row in enumerate(rows):
        membership[i, [column[g] for g in row]] = True
    return membership, names


def intra_list_diversity(
    recommended: npt.ArrayLike, genre_matrix: npt.ArrayLike, batch: int = 4096
) -> float:
    """Mean intra-list genre diversity: within each list, the mean over pairs of items of
    ``1 - Jaccard(genres_i, genres_j)`` (0: all the same genres, 1: no genre shared), then
    the mean over lists.

    recommended: ``(n_users, k)`` item indices, ``-1`` for empty slots; lists with fewer
    than two items are left out. genre_matrix: ``(n_items, n_genres)`` bool
    (:func:`genre_matrix`). Two items without any genre count as identical (distance 0).
    Lists are taken ``batch`` at a time (memory ~ ``batch * k * (k + n_genres)`` floats).
    Returns nan if no list has two items.
    """
    top = np.asarray(recommended, dtype=np.int64)
    if top.ndim != 2 or top.shape[1] < 2:
        return float("nan")
    genres = np.asarray(genre_matrix, dtype=np.float32)
    upper = np.triu(np.ones(top.shape[1:] * 2, dtype=bool), 1)
    per_list = []
    for first in range(0, top.shape[0], batch):
        rows = top[first : first + batch]
        valid = rows >= 0
        g = genres[np.where(valid, rows, 0)]
        g[~valid] = 0.0
        inter = np.einsum("ukg,ulg->ukl", g, g)  # (b, k, k) shared genres
        size = g.sum(axis=2)
        union = size[:, :, None] + size[:, None, :] - inter
        jaccard = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
        pair = valid[:, :, None] & valid[:, None, :] & upper
        n_pairs = pair.sum(axis=(1, 2))
        distance = np.where(pair, 1.0 - jaccard, 0.0).sum(axis=(1, 2))
        scored = n_pairs > 0
        per_list.append(distance[scored] / n_pairs[scored])
    values = np.concatenate(per_list)
    return float(values.mean()) if values.size else float("nan")


def genre_distribution(items: sp.csr_matrix, genre_matrix: npt.ArrayLike) -> Float64Array:
    """``(n_rows, n_genres)`` float64 genre mix of each row's items (rows sum to 1, or to 0
    when no item of the row has a genre): each item's genres weighted ``1/|genres|`` (Steck
    2018's ``p(g|i)``), summed with the row's values as weights, normalised.

    items: ``(n_rows, n_items)`` sparse, nonzero where a row holds an item (values: weights).
    """
    g = np.asarray(genre_matrix, dtype=np.float64)
    per_item = g / np.maximum(g.sum(axis=1, keepdims=True), 1.0)
    mix: Float64Array = np.asarray(sp.csr_matrix(items) @ per_item)
    total = mix.sum(axis=1, keepdims=True)
    shares: Float64Array = np.divide(mix, total, out=np.zeros_like(mix), where=total > 0)
    return shares


def genre_miscalibration(
    liked_items_per_user: sp.spmatrix | Sequence[Sequence[int]],
    recommended: npt.ArrayLike,
    genre_matrix: npt.ArrayLike,
    alpha: float = 0.01,
) -> float:
    """Mean genre miscalibration of the lists (Steck 2018, "Calibrated recommendations"):
    ``KL(p || q~) = sum_g p(g) log(p(g) / q~(g))`` in nats, with ``q~ = (1 - alpha) q +
    alpha p`` (so it is finite), ``p`` the genre mix of what the user liked and ``q`` that
    of their list (both by :func:`genre_distribution`; list positions weigh the same).
    0 means the list has the liked genre mix exactly; higher is worse.

    liked_items_per_user: ``(n_users, n_items)`` sparse (nonzero = liked) or one sequence
    of item indices per user. recommended: ``(n_users, k)`` item indices, ``-1`` for empty
    slots. genre_matrix: ``(n_items, n_genres)`` bool. Users whose liked items have no
    genre are left out; returns nan if none is left.
    """
    top = np.asarray(recommended, dtype=np.int64)
    n_users, n_items = top.shape[0], np.asarray(genre_matrix).shape[0]
    if sp.issparse(liked_items_per_user):
        liked = sp.csr_matrix(liked_items_per_user, dtype=np.float64)
        liked.data[:] = 1.0
    else:
        liked = _rows_pattern(liked_items_per_user, n_items)
    if liked.shape[0] != n_users:
        raise ValueError(f"{liked.shape[0]} users liked something but {n_users} lists given")
    p = genre_distribution(liked, genre_matrix)
    q = genre_distribution(_rows_pattern(top, n_items), genre_matrix)
    q_smooth = (1.0 - alpha) * q + alpha * p
    scored = p.sum(axis=1) > 0
    if not scored.any():
        return float("nan")
    p, q_smooth = p[scored], q_smooth[scored]
    ratio = np.divide(p, q_smooth, out=np.ones_like(p), where=p > 0)
    return float((p * np.log(ratio)).sum(axis=1).mean())


def personalisation_overlap(
    recommended: npt.ArrayLike, k: int = 10, max_pairs: int = 20_000, seed: int = 0
) -> float:
    """Mean Jaccard overlap of two users' top-``k`` sets, over pairs of users (0: no two
    users share an item, 1: everybody gets the same set; personalisation = 1 - overlap).

    recommended: ``(n_users, >= k)`` item indices, ``-1`` for empty slots (two empty sets
    are left out). Every pair of users when there are at most ``max_pairs`` pairs; else
    ``max_pairs`` pairs drawn uniformly (two distinct users each, with replacement among
    pairs) by ``numpy.random.default_rng(seed)``, so the result is an estimate (its
    standard error at most about 0.004 for 20k pairs). nan with fewer than two users.
    """
    top = np.asarray(recommended, dtype=np.int64)[:, :k]
    n = top.shape[0]
    if n < 2:
        return float("nan")
    if n * (n - 1) // 2 <= max_pairs:
        a, b = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        a = rng.integers(0, n, max_pairs)
        b = (a + rng.integers(1, n, max_pairs)) % n  # any user but a
    left, right = top[a], top[b]
    shared = ((left[:, :, None] == right[:, None, :]) & (left >= 0)[:, :, None]).sum(axis=(1, 2))
    union = (left >= 0).sum(axis=1) + (right >= 0).sum(axis=1) - shared
    scored = union > 0
    return float((shared[scored] / union[scored]).mean()) if scored.any() else float("nan")


def _rows_pattern(rows: Int64Array | Sequence[Sequence[int]], n_items: int) -> sp.csr_matrix:
    """``(len(rows), n_items)`` CSR of ones at each row's item indices (``-1`` ignored)."""
    cols = [np.asarray(r, dtype=np.int64).ravel() for r in rows]
    cols = [c[c >= 0] for c in cols]
    indptr = np.r_[0, np.cumsum([c.size for c in cols])].astype(np.int64)
    indices = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    out = sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=(len(cols), n_items))
    out.sum_duplicates()
    out.data[:] = 1.0
    return out


# -- aggregation -----------------------------------------------------------------------------


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard deviation (ddof=0, as Surprise's ``cross_validate``) over folds."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0 or np.all(np.isnan(arr)):
        return float("nan"), float("nan")
    return float(np.nanmean(arr)), float(np.nanstd(arr))
