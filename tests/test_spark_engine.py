"""``movierec train --engine spark``: Spark MLlib's ALS into our ``als`` model file.

The Spark tests run Spark on ``local[2]`` (they need pyspark and Java 17) and are
skipped without them, unless ``MOVIEREC_REQUIRE_SPARK=1`` (as ``.ci/run`` sets).
The rest (errors without Spark, the driver-side maths) run everywhere.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from movierec import models, spark_engine
from movierec.cli import main
from movierec.data import Ratings, load_split
from movierec.errors import InvalidInput
from movierec.models.als import solve_side

STAR_WARS, EMPIRE, JEDI, RAIDERS = 50, 172, 181, 174  # ml-100k movie ids


@pytest.fixture(scope="module")
def spark_ready() -> None:
    """Skip (or fail, with MOVIEREC_REQUIRE_SPARK=1) unless pyspark and Java are here."""
    try:
        spark_engine.check_spark()
    except spark_engine.SparkUnavailable as exc:
        if os.environ.get("MOVIEREC_REQUIRE_SPARK") == "1":
            pytest.fail(f"MOVIEREC_REQUIRE_SPARK=1 but {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module", autouse=True)
def _jvm_ends_with_the_module():
    """Stop the JVM pyspark started here, so the rest of the suite runs without it."""
    yield
    pyspark = sys.modules.get("pyspark")
    gateway = pyspark.SparkContext._gateway if pyspark is not None else None
    if gateway is not None:
        gateway.shutdown()
        gateway.proc.stdin.close()  # pyspark's JVM exits when its stdin closes
        gateway.proc.wait(timeout=60)
        pyspark.SparkContext._gateway = pyspark.SparkContext._jvm = None


def _small_ratings(seed: int = 0) -> Ratings:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 40, 600)
    items = rng.integers(0, 25, 600)
    stars = rng.integers(1, 11, 600) / 2
    return Ratings.from_arrays(users + 1, items + 100, stars)


# -- without Spark ------------------------------------------------------------------------
def test_without_pyspark_one_line_naming_the_install_exit_2(home, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark -> ImportError
    assert main(["train", "--engine", "spark", "--dataset", "ml-100k"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("movierec: error:") and "pip install" in err and "[spark]" in err


def test_without_java_one_line_naming_java_exit_2(home, monkeypatch, capsys):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark_engine.shutil, "which", lambda name: None)
    pytest.importorskip("pyspark")
    assert main(["train", "--engine", "spark", "--dataset", "ml-100k"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Java 17" in err and "default-jre-headless" in err


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["train", "--master", "local[2]"], "--master needs --engine spark"),
        (["train", "--engine", "spark", "--model", "svd"], "als model only"),
    ],
)
def test_bad_engine_arguments_exit_2(home, capsys, argv, field):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err


def test_check_master_accepts_masters_and_names_a_bad_one():
    for master in ("local[2]", "local[*]", "spark://10.0.0.5:7077", "yarn"):
        assert spark_engine.check_master(master) == master
    with pytest.raises(InvalidInput, match="bad Spark master 'x{30}") as caught:
        spark_engine.check_master("x" * 150)
    assert caught.value.field == "master" and len(str(caught.value)) < 200


def test_bias_fit_is_our_als_epoch_without_factors():
    """``fit_biases`` equals our als kernel alternating with zero-width factors."""
    ratings = _small_ratings()
    users, items, stars = ratings.triples()
    mu, reg_bias = ratings.global_mean, 2.0
    user_bias, item_bias = spark_engine.fit_biases(
        users, items, stars, ratings.n_users, ratings.n_items, mu, reg_bias, epochs=4
    )
    by_item = ratings.matrix.tocsc()
    kernel_user, kernel_item = np.zeros(ratings.n_users), np.zeros(ratings.n_items)
    no_factors_u, no_factors_i = np.zeros((ratings.n_users, 0)), np.zeros((ratings.n_items, 0))
    for _ in range(4):
        solve_side(by_item.indptr.astype(np.int64), by_item.indices, by_item.data, mu,
                   no_factors_u, kernel_user, 1.0, reg_bias, no_factors_i, kernel_item)  # fmt: skip
        solve_side(ratings.matrix.indptr.astype(np.int64), ratings.matrix.indices,
                   ratings.matrix.data, mu, no_factors_i, kernel_item, 1.0, reg_bias,
                   no_factors_u, kernel_user)  # fmt: skip
    np.testing.assert_allclose(user_bias, kernel_user, atol=1e-9)
    np.testing.assert_allclose(item_bias, kernel_item, atol=1e-9)


def test_closing_step_makes_trained_users_what_fold_in_gives(tmp_path: Path):
    """Factors from elsewhere + the closing user step: a saved, reloaded model's trained
    user state equals folding in that user's own ratings."""
    ratings = _small_ratings(1)
    rng = np.random.default_rng(2)
    item_factors = rng.normal(0, 0.3, (ratings.n_items, 4))
    users, items, stars = ratings.triples()
    mu = ratings.global_mean
    _, item_bias = spark_engine.fit_biases(
        users, items, stars, ratings.n_users, ratings.n_items, mu, 2.0
    )
    model = models.create("als", n_factors=4, reg=0.1, reg_bias=2.0)
    user_factors, user_bias = spark_engine._closing_user_step(
        ratings, mu, item_factors, item_bias, 0.1, 2.0
    )
    spark_engine.set_fitted(model, ratings, mu, user_factors, item_factors, user_bias, item_bias)
    loaded = models.load(model.save(tmp_path / "m.npz"))
    for user_id in ratings.user_ids[:10]:
        trained = loaded.user_state(int(user_id))
        movie_ids = loaded.movie_ids[trained.items]
        visitor = loaded.fold_in(movie_ids, trained.stars)
        np.testing.assert_allclose(visitor.factors, trained.factors, atol=1e-4)
        assert visitor.bias == pytest.approx(trained.bias, abs=1e-4)
    np.testing.assert_array_equal(loaded.movie_ids, ratings.movie_ids)


# -- on Spark (local[2]) -------------------------------------------------------------------
def _rmse(model, test) -> float:
    predicted = model.predict(test["userId"], test["movieId"])
    return float(np.sqrt(np.mean((predicted - test["rating"].to_numpy(np.float64)) ** 2)))


@pytest.mark.slow
def test_spark_fold_rmse_close_to_our_als(spark_ready, session_home, tmp_path):
    """Trained on u1.base, scored on u1.test through a saved and reloaded model file."""
    base, test = load_split("ml-100k", "u1", home=session_home)
    train = Ratings.from_frame(base)
    params = {"n_epochs": 8}
    ours = models.create("als", seed=0, **params).fit(train)
    with spark_engine.spark_session("local[2]") as spark:
        trained = spark_engine.train_on_spark(train, spark, seed=0, **params)
    loaded = models.load(trained.save(tmp_path / "u1.npz"))
    assert abs(_rmse(loaded, test) - _rmse(ours, test)) <= 0.02


@pytest.mark.slow
def test_train_engine_spark_writes_the_model_recommend_uses(spark_ready, home, capsys):
    argv = ["--dataset", "ml-100k", "-p", "n_epochs=8", "-p", "n_factors=20"]
    assert main(["train", "--engine", "spark", "--master", "local[2]", *argv]) == 0
    out = capsys.readouterr().out
    path = home / "models" / "ml-100k-als.npz"
    assert f"saved {path}" in out and "ratings" in out
    model = models.load(path)
    assert model.name == "als" and model.params["n_factors"] == 20
    assert np.isfinite(model.item_vectors()).all() and model.n_items == 1682
    saved_at = path.stat().st_mtime_ns

    # a Star Wars fan: the sequel ranks near the top of every movie, picks are well rated
    state = model.fold_in([STAR_WARS, JEDI, RAIDERS], [5.0, 5.0, 5.0])
    scores = model.rank(state)
    assert np.isfinite(scores).all()
    empire = scores[model.items_of([EMPIRE])[0]]
    assert (scores > empire).mean() < 0.05

    rate = ["--rate", f"{STAR_WARS}=5", "--rate", f"{JEDI}=5", "--rate", f"{RAIDERS}=5"]
    assert main(["recommend", "--dataset", "ml-100k", "--model", "als", *rate, "-n", "10",
                 "--json"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "retraining" not in captured.err and path.stat().st_mtime_ns == saved_at
    picks = result["recommendations"]
    assert len(picks) == 10 and not result["fallback"]
    assert all(
        np.isfinite(p["predicted_stars"]) and 0.5 <= p["predicted_stars"] <= 5 for p in picks
    )
    assert not {STAR_WARS, JEDI, RAIDERS} & {p["movieId"] for p in picks}
    ratings = model.rated
    item_mean = np.bincount(ratings.items, ratings.stars, model.n_items) / np.maximum(
        np.bincount(ratings.items, minlength=model.n_items), 1
    )
    picked_mean = item_mean[model.items_of([p["movieId"] for p in picks])].mean()
    assert picked_mean > model.global_mean + 0.3


@pytest.mark.slow
def test_script_entry_for_spark_submit(spark_ready, home, capsys):
    """``python spark_engine.py ...`` (what spark-submit runs), in-process."""
    out = home / "cluster" / "model.npz"
    out.parent.mkdir()
    argv = ["--dataset", "ml-100k", "--out", str(out), "--master", "local[2]"]
    assert spark_engine.main([*argv, "-p", "n_epochs=3", "-p", "n_factors=8"]) == 0
    assert f"saved {out}" in capsys.readouterr().out
    model = models.load(out)
    assert model.name == "als" and model.params["n_epochs"] == 3
    assert model.predict([1], [STAR_WARS]).shape == (1,)
    assert spark_engine.main([*argv, "-p", "init_std=0.2"]) == 2
    assert "init_std" in capsys.readouterr().err
