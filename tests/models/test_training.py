"""Training maths on tiny hand-made data: one SGD step, one NMF epoch, damped means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec import models
from movierec.data import Ratings
from movierec.models._kernels import Biased, SGDRates, Triples, nmf_epoch, svd_epoch
from movierec.models.baselines import damped_means


def test_svd_epoch_is_surprise_update() -> None:
    rng = np.random.default_rng(0)
    p = rng.normal(0, 0.1, (2, 4)).astype(np.float32)
    q = rng.normal(0, 0.1, (3, 4)).astype(np.float32)
    bu, bi = np.array([0.1, -0.2], np.float32), np.array([0.0, 0.3, -0.1], np.float32)
    users, items = np.array([1], np.int32), np.array([2], np.int32)
    stars = np.array([4.5], np.float32)
    mu, lr, reg, lr_b, reg_b = 3.5, 0.01, 0.05, 0.02, 0.1
    p0, q0, bu0, bi0 = p.astype(float), q.astype(float), bu.astype(float), bi.astype(float)
    err = 4.5 - (mu + bu0[1] + bi0[2] + p0[1] @ q0[2])
    rates = SGDRates(lr_b, lr_b, lr, lr, reg_b, reg_b, reg, reg)
    rmse = svd_epoch(Triples(users, items, stars), np.array([0]), mu, Biased(bu, bi, p, q), rates)
    assert rmse == pytest.approx(abs(err), rel=1e-5)
    assert bu[1] == pytest.approx(bu0[1] + lr_b * (err - reg_b * bu0[1]), rel=1e-5)
    assert bi[2] == pytest.approx(bi0[2] + lr_b * (err - reg_b * bi0[2]), rel=1e-5)
    np.testing.assert_allclose(p[1], p0[1] + lr * (err * q0[2] - reg * p0[1]), rtol=1e-5)
    np.testing.assert_allclose(q[2], q0[2] + lr * (err * p0[1] - reg * q0[2]), rtol=1e-5)
    np.testing.assert_array_equal(p[0], p0[0].astype(np.float32))  # untouched


def test_nmf_epoch_is_multiplicative_update() -> None:
    rng = np.random.default_rng(0)
    users = np.array([0, 0, 1, 2, 2, 2], np.int32)
    items = np.array([0, 1, 1, 0, 1, 3], np.int32)
    stars = np.array([5, 3, 4, 1, 2, 4], np.float32)
    p, q = rng.uniform(0, 1, (3, 2)), rng.uniform(0, 1, (4, 2))
    q[2] = 0.0  # an item nobody rated keeps zero factors
    p0, q0 = p.copy(), q.copy()
    nu, ni = np.bincount(users, minlength=3), np.bincount(items, minlength=4)
    zeros3, zeros4 = np.zeros(3), np.zeros(4)
    rates = SGDRates(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.2)
    nmf_epoch(Triples(users, items, stars), 0.0, Biased(zeros3, zeros4, p, q), nu, ni, rates, False)
    est = np.einsum("nk,nk->n", p0[users], q0[items])
    expected_p, expected_q = p0.copy(), q0.copy()
    for u in range(3):
        m = users == u
        num = (q0[items[m]] * stars[m, None]).sum(0)
        den = (q0[items[m]] * est[m, None]).sum(0) + nu[u] * 0.1 * p0[u]
        expected_p[u] = p0[u] * num / den
    for i in (0, 1, 3):
        m = items == i
        num = (p0[users[m]] * stars[m, None]).sum(0)
        den = (p0[users[m]] * est[m, None]).sum(0) + ni[i] * 0.2 * q0[i]
        expected_q[i] = q0[i] * num / den
    np.testing.assert_allclose(p, expected_p, rtol=1e-12)
    np.testing.assert_allclose(q, expected_q, rtol=1e-12)


def test_nmf_factors_stay_non_negative(small_split) -> None:
    train, _ = small_split
    for biased in (False, True):
        model = models.create("nmf", n_epochs=10, biased=biased).fit(train)
        assert model.user_factors.min() >= 0 and model.item_factors.min() >= 0


def test_damped_means() -> None:
    out = damped_means(np.array([5.0, 8.0, 0.0]), np.array([1, 2, 0]), prior=3.0, damping=2.0)
    np.testing.assert_allclose(out, [(5 + 6) / 3, (8 + 6) / 4, 3.0])
    assert damped_means(np.zeros(1), np.zeros(1), prior=3.0, damping=0.0)[0] == 3.0


def test_popular_ranks_by_damped_mean() -> None:
    frame = pd.DataFrame(
        {
            "userId": [1, 2, 3, 4, 1, 2, 3],
            "movieId": [10, 10, 10, 10, 20, 30, 30],
            "rating": [4.5, 4.5, 4.5, 4.5, 5.0, 1.0, 1.0],
        }
    )
    model = models.create("popular", damping=1.0).fit(Ratings.from_frame(frame))
    mu = frame["rating"].mean()
    np.testing.assert_allclose(
        model.item_mean, [(18 + mu) / 5, (5 + mu) / 2, (2 + mu) / 3], rtol=1e-6
    )
    # one 5-star vote does not beat four 4.5s; everyone gets the same order
    state = model.fold_in([20], [5.0])
    assert np.argsort(-model.score(state)).tolist() == [0, 1, 2]
    assert model.predict([1], [10])[0] == pytest.approx(
        model.item_mean[0] + model.user_bias[0], rel=1e-6
    )


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("svd", {"n_factors": 0}, "n_factors"),
        ("svd", {"lr_all": -0.1}, "lr_all"),
        ("nmf", {"n_epochs": 2.5}, "n_epochs"),
        ("nmf", {"init_high": 0}, "init_high"),
        ("popular", {"damping": "ten"}, "damping"),
    ],
)
def test_bad_hyper_parameters_are_named(name: str, params: dict, field: str) -> None:
    from movierec.errors import InvalidInput

    with pytest.raises(InvalidInput, match=field) as caught:
        models.create(name, **params)
    assert caught.value.field == field
