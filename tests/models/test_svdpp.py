"""SVD++: the numba epoch against a plain-Python reference; fold-in; save/load."""

from __future__ import annotations

import numpy as np
import pytest

from movierec import models
from movierec.models._kernels import Biased, ByRow, SGDRates, svdpp_epoch
from movierec.models.factor import numba_threads
from movierec.models.svdpp import SVDpp

FAST = {"n_epochs": 30}  # converged enough for fold-in to match training


def reference_epoch(indptr, items, stars, user_order, rating_order, mu, bu, bi, p, q, y, hp):
    """The update rules written out for one pass, in float64."""
    lr_b, lr, reg_b, reg, reg_y = hp
    for u in user_order:
        rated = items[indptr[u] : indptr[u + 1]]
        n = len(rated)
        if n == 0:
            continue
        z = y[rated].sum(axis=0) / np.sqrt(n)
        grad = np.zeros(p.shape[1])
        for idx in rating_order[indptr[u] : indptr[u + 1]]:
            i = items[idx]
            err = stars[idx] - (mu + bu[u] + bi[i] + q[i] @ (p[u] + z))
            bu[u] += lr_b * (err - reg_b * bu[u])
            bi[i] += lr_b * (err - reg_b * bi[i])
            grad += err * q[i]
            p[u], q[i] = (
                p[u] + lr * (err * q[i] - reg * p[u]),
                q[i] + lr * (err * (p[u] + z) - reg * q[i]),
            )
        for j in rated:
            y[j] = (1 - lr * n * reg_y) * y[j] + lr * grad / np.sqrt(n)


def test_epoch_follows_the_update_rules() -> None:
    rng = np.random.default_rng(0)
    # 3 users x 4 items; user 1 rated nothing
    indptr = np.array([0, 3, 3, 5], dtype=np.int64)
    items = np.array([0, 2, 3, 1, 2], dtype=np.int32)
    stars = np.array([5.0, 3.0, 4.0, 1.0, 2.0], dtype=np.float32)
    rating_order = np.array([2, 0, 1, 4, 3], dtype=np.int64)
    user_order = np.array([2, 1, 0], dtype=np.int64)
    k = 3
    start = {
        "bu": rng.normal(0, 0.1, 3), "bi": rng.normal(0, 0.1, 4),
        "p": rng.normal(0, 0.3, (3, k)), "q": rng.normal(0, 0.3, (4, k)),
        "y": rng.normal(0, 0.3, (4, k)),
    }  # fmt: skip
    hp = (0.05, 0.03, 0.02, 0.1, 0.07)
    mine = {name: a.astype(np.float32) for name, a in start.items()}
    lr_b, lr, reg_b, reg, reg_y = hp
    block_starts = np.arange(4, dtype=np.int64)  # one user per block, blocks in user_order
    model = Biased(mine["bu"], mine["bi"], mine["p"], mine["q"])
    rates = SGDRates(lr_b, lr_b, lr, lr, reg_b, reg_b, reg, reg)
    with numba_threads(1):
        svdpp_epoch(ByRow(indptr, items, stars), rating_order, block_starts, user_order, 3.2,
                    model, mine["y"], rates, reg_y)  # fmt: skip
    ref = {name: a.copy() for name, a in start.items()}
    reference_epoch(indptr, items, stars, user_order, rating_order, 3.2,
                    ref["bu"], ref["bi"], ref["p"], ref["q"], ref["y"], hp)  # fmt: skip
    for name in start:
        np.testing.assert_allclose(mine[name], ref[name], atol=1e-5, err_msg=name)
    assert not np.allclose(ref["y"], start["y"])  # the implicit factors did move


@pytest.fixture(scope="module")
def fitted(small_split) -> SVDpp:
    train, _ = small_split
    return SVDpp(seed=0, **FAST).fit(train)


def test_effective_factors_add_the_implicit_sum(fitted: SVDpp, small_split) -> None:
    train, _ = small_split
    items, _ = train.user_row(4)
    expected = fitted.user_factors[4] + fitted.implicit_factors[items].sum(0) / np.sqrt(items.size)
    state = fitted.user_state(int(train.user_ids[4]))
    np.testing.assert_allclose(state.factors, expected, atol=1e-5)
    # predict and score agree for a training user
    movies = train.movie_ids[:50]
    np.testing.assert_allclose(
        fitted.predict([train.user_ids[4]] * 50, movies), fitted.score(state)[:50], atol=1e-5
    )


def test_fold_in_of_a_training_user_tracks_their_trained_scores(fitted: SVDpp, small_split) -> None:
    train, _ = small_split
    for row in (0, 11, 57):
        items, stars = train.user_row(row)
        trained = fitted.score(fitted.user_state(int(train.user_ids[row])))
        folded_state = fitted.fold_in(train.movie_ids[items], stars)
        folded = fitted.score(folded_state)
        assert np.corrcoef(trained, folded)[0, 1] >= 0.9
        # the implicit part is the same rated set's: only (p, b_u) were re-solved
        assert np.abs(folded - trained).mean() < 0.2


def test_beats_the_global_mean_on_held_out_ratings(fitted: SVDpp, small_split) -> None:
    _, test = small_split
    stars = fitted.predict(test["userId"], test["movieId"])
    rmse = np.sqrt(np.mean((stars - test["rating"]) ** 2))
    assert rmse < np.sqrt(np.mean((fitted.global_mean - test["rating"]) ** 2)) - 0.05


def test_save_load_round_trip(fitted: SVDpp, small_split, tmp_path) -> None:
    train, test = small_split
    loaded = models.load(fitted.save(tmp_path / "svdpp"))
    assert isinstance(loaded, SVDpp) and loaded.params == fitted.params
    np.testing.assert_array_equal(loaded.implicit_factors, fitted.implicit_factors)
    np.testing.assert_array_equal(
        loaded.predict(test["userId"], test["movieId"]),
        fitted.predict(test["userId"], test["movieId"]),
    )
    movies = train.movie_ids[[3, 8]].tolist()
    np.testing.assert_array_equal(
        loaded.score(loaded.fold_in(movies, [5.0, 2.5])),
        fitted.score(fitted.fold_in(movies, [5.0, 2.5])),
    )
