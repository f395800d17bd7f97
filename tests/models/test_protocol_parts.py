"""What callers outside ``models/`` need of a model, on the public protocol: the ranking
as pull parts (the onboarding simulator), the fold-in prior (the onboarding index) and
fitted arrays handed in from elsewhere (the Spark engine)."""

from __future__ import annotations

import numpy as np
import pytest

from movierec import models
from movierec.errors import ModelError


@pytest.fixture(scope="module")
def fitted(small_split) -> dict[str, models.Recommender]:
    train, _ = small_split
    return {
        "ease": models.create("ease", n_epochs=5, seed=1).fit(train),
        "svd": models.create("svd", n_epochs=5, n_factors=8, seed=1).fit(train),
    }


def test_pull_ranking_parts_give_the_model_rank(fitted) -> None:
    model = fitted["ease"]
    parts = model.pull_ranking()
    assert parts is not None and parts.items.size > 10
    rated = parts.items[[0, 3, 7, 11]]
    stars = np.array([5.0, 1.0, 4.0, 2.5])
    state = model.fold_in(model.movie_ids[rated], stars)
    cols = parts.items
    pull = parts.weights(stars) @ parts.pulls(rated, cols).astype(np.float64)
    debias, prior = parts.terms(cols)
    relevance = pull * debias + prior
    expected = np.where(relevance > 0, relevance * parts.gain(model.score(state)[cols]), relevance)
    np.testing.assert_allclose(model.rank(state)[cols], expected, rtol=1e-4, atol=1e-6)
    empty = model.fold_in([], [])
    np.testing.assert_allclose(parts.start_stars(cols), model.score(empty)[cols], rtol=1e-5)


def test_only_a_pull_ranking_model_gives_parts(fitted) -> None:
    assert fitted["svd"].pull_ranking() is None
    assert models.create("ease").pull_ranking() is None  # not fitted


def test_fold_in_reg_is_the_ridge_prior() -> None:
    assert models.create("svd", reg_all=0.3).fold_in_reg() == 0.3
    assert models.create("svdpp", reg_all=0.2).fold_in_reg() == 0.2
    assert models.create("ease", reg_all=0.4).fold_in_reg() == 0.4  # its SVD member's
    assert models.create("popular").fold_in_reg() is None


def test_set_fitted_takes_arrays_fitted_elsewhere(fitted) -> None:
    model = fitted["svd"]
    arrays = {k: np.asarray(v, dtype=np.float64) if v.dtype == np.float32 else v
              for k, v in model._arrays().items()}  # fmt: skip
    again = models.create("svd", n_factors=8).set_fitted(
        model.user_ids, model.movie_ids, model.global_mean, arrays
    )
    state = again.fold_in(model.movie_ids[:3], [4.0, 2.0, 5.0])
    np.testing.assert_allclose(
        again.score(state), model.score(model.fold_in(model.movie_ids[:3], [4.0, 2.0, 5.0]))
    )
    assert again.item_factors.dtype == np.float32
    arrays["item_factors"] = arrays["item_factors"][:, :5]
    with pytest.raises(ModelError, match="item_factors"):
        models.create("svd", n_factors=8).set_fitted(
            model.user_ids, model.movie_ids, model.global_mean, arrays
        )
