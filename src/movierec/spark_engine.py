"""Train the ``als`` model with Spark MLlib, for data sets beyond one machine.

Spark's ALS (``pyspark.ml.recommendation.ALS``, explicit, signed factors) fits
``r ~ p_u . q_i`` with the same count-scaled penalty as our ``als`` (``n_u * reg``,
"ALS-WR"), but it has no biases. Our ``als`` model is ``mu + b_u + b_i + p_u . q_i``,
so the Spark engine:

1. fits the biases on the driver the way our ``als`` fits them when it has no factors
   (alternating closed-form solves with a prior of ``reg_bias`` ratings at zero);
2. ships ``r - mu - b_u - b_i`` to Spark, which fits ``n_factors`` signed factors with
   ``regParam = reg`` over ``n_epochs`` iterations (items then users, as ours);
3. collects Spark's item factors and ends with one user half-step on the driver: every
   training user's ``(p_u, b_u)`` is re-solved jointly against the fixed ``q_i, b_i`` with
   the penalties fold-in uses. That keeps our ``als`` model's promise that a trained
   user's state is exactly what folding in their own ratings gives (so ``serve`` treats
   a returning user and a visitor alike), and it lowers test RMSE slightly (see
   ``bench/spark_accuracy.py``). It costs one pass over the ratings, as a local ``als``
   half-step does.

Spark's ids are our row / column indices, so its factors map straight back to
``user_ids`` / ``movie_ids``; a movie Spark returned no factors for (no ratings) keeps
zeros, i.e. it is predicted by the biases alone, as our ``als`` does.

The model is saved through :meth:`Recommender.save` (checksummed), into the same file
``movierec train --model als`` writes, so ``serve`` and ``recommend`` use it unchanged.

Runnable as a script for ``spark-submit`` (see ``main``)::

    spark-submit --master spark://HOST:7077 --driver-memory 8g \\
        $(python -c 'import movierec.spark_engine as m; print(m.__file__)') \\
        --dataset ml-25m --out model.npz
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ == "__main__" and Path(sys.path[0] or ".").resolve() == Path(__file__).parent:
    del sys.path[0]  # run as a script: our package's folder must not shadow other modules

import numpy as np

from movierec import models
from movierec.config import Settings, load_settings
from movierec.data.arrays import Float32Array, Float64Array, FloatArray, Int32Array
from movierec.data.ratings import Ratings
from movierec.errors import InvalidInput, MovierecError
from movierec.models.als import ALS, solve_side

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"
#: alternations of the bias-only fit; the biases change < 1e-4 stars after about 10
BIAS_EPOCHS = 15
#: Spark's logs: warnings and errors only, one line each, on stderr. The ratings are
#: shipped from the driver (so a cluster needs no shared storage for them); Spark's
#: "task of very large size" warning about that is expected and silenced.
LOG4J2_PROPERTIES = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = error
logger.hadoop.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop.level = error
"""
INSTALL_HINT = "pip install 'movierec[spark]' (or pip install -e '.[spark]') and Java 17"


class SparkUnavailable(MovierecError):
    """pyspark or Java is missing; the message names what to install."""


def check_spark() -> None:
    """Raise :class:`SparkUnavailable` unless pyspark imports and ``java`` runs."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable(f"--engine spark needs pyspark: {INSTALL_HINT}") from None
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else shutil.which("java")
    if java is None or not Path(java).exists():
        raise SparkUnavailable(
            "--engine spark needs Java 17 (e.g. apt-get install default-jre-headless, "
            "or set JAVA_HOME)"
        )


def check_master(master: str) -> str:
    """``master`` if it looks like a Spark master URL, else ``InvalidInput`` naming it."""
    schemes = ("local", "spark://", "yarn", "k8s://", "mesos://")
    if not isinstance(master, str) or not master.startswith(schemes) or len(master) > 200:
        shown = str(master)[:100]
        raise InvalidInput(
            f"bad Spark master {shown!r}: expected local[N], spark://HOST:7077, yarn or k8s://...",
            field="master",
        )
    return master


def driver_memory_for(n_ratings: int) -> str:
    """A ``spark.driver.memory`` for ``n_ratings`` in local mode, e.g. ``"1215m"``.

    In local mode the driver JVM holds everything: the shipped ratings, ALS's rating
    blocks (by user and by item), their shuffles and the factors. An estimate of 200
    bytes a rating (about 15 copies of a 12-byte rating) plus 1 GB, at most half of this
    machine's memory (measured: 1 M ratings ran in a 1 GB heap with a 1.4 GB peak RSS,
    ``bench/scale.py``).
    """
    wanted_mb = 1024 + -(-200 * n_ratings // 2**20)  # rounded up
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return f"{max(1024, min(wanted_mb, total_mb // 2))}m"


@contextlib.contextmanager
def spark_session(
    master: str = DEFAULT_MASTER, driver_memory: str = "1g"
) -> Iterator[SparkSession]:
    """A quiet Spark session (no UI, no progress bars, WARN logs), stopped on exit.

    With a ``local[...]`` master the driver binds to 127.0.0.1 only. A cluster master
    (``spark://``) needs the driver reachable from the workers, so its address is left to
    Spark (``SPARK_LOCAL_IP`` / ``spark.driver.host``). Under ``spark-submit`` the JVM is
    already running and the master and memory come from its flags. PySpark's warnings
    about pandas 3 (not yet "fully" supported; a deprecated ``copy`` keyword) are
    silenced: we only hand it plain int32 / float32 columns and read back arrays.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        warnings.filterwarnings("ignore", message="The copy keyword is deprecated")  # pandas 3
        with _session(master, driver_memory) as spark:
            yield spark


@contextlib.contextmanager
def _session(master: str = DEFAULT_MASTER, driver_memory: str = "1g") -> Iterator[SparkSession]:
    """See :func:`spark_session`."""
    check_spark()
    from pyspark.sql import SparkSession

    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started the JVM
    scratch = Path(tempfile.mkdtemp(prefix="movierec-spark-"))
    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    builder = SparkSession.builder.appName("movierec-als")
    local = master.startswith("local") and not under_submit
    if not under_submit:
        builder = builder.master(check_master(master))
        conf["spark.driver.memory"] = driver_memory
        log_config = scratch / "log4j2.properties"
        log_config.write_text(LOG4J2_PROPERTIES)
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log_config}"
        if local:
            conf["spark.driver.host"] = conf["spark.driver.bindAddress"] = "127.0.0.1"
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no hostname lookups
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if local:  # long lineages (many iterations) are cut by checkpoints every 10
        spark.sparkContext.setCheckpointDir(str(scratch / "checkpoints"))
    try:
        yield spark
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)


# -- the maths on the driver ------------------------------------------------------------
def fit_biases(
    users: Int32Array, items: Int32Array, stars: Float32Array, n_users: int, n_items: int,
    mu: float, reg_bias: float, epochs: int = BIAS_EPOCHS,
) -> tuple[Float64Array, Float64Array]:  # fmt: skip
    """User and item biases ``(n_users,)``, ``(n_items,)`` float64 in stars.

    Alternates ``b_i = sum (r - mu - b_u) / (n_i + reg_bias)`` and the same for users,
    items first: our ``als`` epoch with zero factors, written with ``bincount`` rather
    than through its kernel, which needs factors. users / items / stars: ``(nnz,)``.
    A row without ratings gets 0.
    """
    n_per_item = np.bincount(items, minlength=n_items) + reg_bias
    n_per_user = np.bincount(users, minlength=n_users) + reg_bias
    centred = stars.astype(np.float64) - mu
    user_bias = np.zeros(n_users)
    item_bias = np.zeros(n_items)
    for _ in range(epochs):
        item_bias = np.bincount(items, centred - user_bias[users], n_items) / n_per_item
        user_bias = np.bincount(users, centred - item_bias[items], n_users) / n_per_user
    return user_bias, item_bias


def factors_by_id(frame: Any, n_rows: int, k: int) -> Float64Array:
    """Spark's ``(id, features)`` factor frame as ``(n_rows, k)`` float64 in id order;
    rows Spark returned nothing for (no ratings) are zeros."""
    table = frame.toPandas()
    factors = np.zeros((n_rows, k))
    if len(table):
        ids = table["id"].to_numpy(np.int64)
        factors[ids] = np.stack(table["features"].to_numpy()).astype(np.float64)
    return factors


def unfitted_model(seed: int = 0, **params: Any) -> ALS:
    """The ``als`` model Spark will fit; ``InvalidInput`` naming a bad or unused parameter."""
    if "init_std" in params:
        raise InvalidInput(
            "init_std is not used with --engine spark (Spark draws its own start)",
            field="init_std",
        )
    model = models.create("als", seed=seed, **params)
    assert isinstance(model, ALS)
    return model


def train_on_spark(
    ratings: Ratings,
    spark: SparkSession,
    seed: int = 0,
    refold_users: bool = True,
    **params: Any,
) -> ALS:
    """Fit our ``als`` model (``mu + b_u + b_i + p_u . q_i``) with Spark's ALS.

    params: ``n_factors``, ``n_epochs``, ``reg``, ``reg_bias`` (our ``als`` defaults);
    ``init_std`` is refused (Spark draws its own start). Returns a fitted :class:`ALS`,
    ready for ``save``; see the module docstring for how biases are handled.
    refold_users: end with the joint user half-step (default); False keeps Spark's user
    factors and the bias-only fit's user biases (compared in ``bench/spark_accuracy.py``).
    """
    model = unfitted_model(seed, **params)
    k, epochs = model.config.n_factors, model.config.n_epochs
    reg, reg_bias = model.config.reg, model.config.reg_bias
    users, items, stars = ratings.triples()
    mu = ratings.global_mean
    user_bias, item_bias = fit_biases(
        users, items, stars, ratings.n_users, ratings.n_items, mu, reg_bias
    )
    residual = stars - mu - user_bias[users] - item_bias[items]
    spark_users, item_factors = _spark_factors(
        spark, users, items, residual.astype(np.float32), ratings.n_users, ratings.n_items,
        k, epochs, reg, seed,
    )  # fmt: skip
    if refold_users:
        user_factors, user_bias = _closing_user_step(ratings, mu, item_factors, item_bias, reg,
                                                     reg_bias)  # fmt: skip
    else:
        user_factors = spark_users
    set_fitted(model, ratings, mu, user_factors, item_factors, user_bias, item_bias)
    return model


def _spark_factors(
    spark: SparkSession, users: Int32Array, items: Int32Array, residual: Float32Array,
    n_users: int, n_items: int, k: int, epochs: int, reg: float, seed: int,
) -> tuple[Float64Array, Float64Array]:  # fmt: skip
    """``(n_users, k)`` and ``(n_items, k)`` float64 factors Spark's ALS fits to
    ``residual`` ``(nnz,)`` at ``(users, items)``; zeros for rows it returned none for."""
    import pandas as pd
    from pyspark.ml.recommendation import ALS as SparkALS

    frame = spark.createDataFrame(pd.DataFrame({"user": users, "item": items, "rating": residual}))
    blocks = max(1, spark.sparkContext.defaultParallelism)
    estimator = SparkALS(
        rank=k, maxIter=epochs, regParam=reg, implicitPrefs=False, nonnegative=False,
        coldStartStrategy="drop", userCol="user", itemCol="item", ratingCol="rating",
        numUserBlocks=blocks, numItemBlocks=blocks, seed=seed,
    )  # fmt: skip
    fitted = estimator.fit(frame)
    return factors_by_id(fitted.userFactors, n_users, k), factors_by_id(
        fitted.itemFactors, n_items, k
    )


def _closing_user_step(
    ratings: Ratings, mu: float, item_factors: Float64Array, item_bias: Float64Array,
    reg: float, reg_bias: float,
) -> tuple[Float64Array, Float64Array]:  # fmt: skip
    """Every user's ``(p_u, b_u)`` jointly against fixed ``q_i, b_i``: our ``als`` user
    half-step, i.e. exactly what fold-in gives. ``(n_users, k)``, ``(n_users,)`` float64."""
    matrix = ratings.matrix
    user_factors = np.zeros((ratings.n_users, item_factors.shape[1]))
    user_bias = np.zeros(ratings.n_users)
    solve_side(matrix.indptr.astype(np.int64), matrix.indices, matrix.data, mu,
               np.ascontiguousarray(item_factors), item_bias, reg, reg_bias,
               user_factors, user_bias)  # fmt: skip
    return user_factors, user_bias


def set_fitted(
    model: ALS, ratings: Ratings, global_mean: float, user_factors: FloatArray,
    item_factors: FloatArray, user_bias: FloatArray, item_bias: FloatArray,
) -> None:  # fmt: skip
    """Make an unfitted ``als`` model hold factors fitted elsewhere.

    ``user_factors`` ``(n_users, k)``, ``item_factors`` ``(n_items, k)``, biases
    ``(n_users,)`` / ``(n_items,)`` in stars, rows in ``ratings``' user / movie order.
    Goes through the model's public ``set_fitted`` (the arrays checked and restored as
    ``load`` does), so the result is the same object a saved file would give.
    """
    rated = {
        "rated_indptr": ratings.matrix.indptr.astype(np.int64),
        "rated_items": ratings.matrix.indices.astype(np.int32),
        "rated_stars": ratings.matrix.data.astype(np.float32),
    }
    arrays = {
        "user_factors": user_factors,
        "item_factors": item_factors,
        "user_bias": user_bias,
        "item_bias": item_bias,
        **rated,
    }
    model.set_fitted(ratings.user_ids, ratings.movie_ids, global_mean, arrays)


# -- command line (also the spark-submit entry) ------------------------------------------
def train_dataset(
    dataset_name: str,
    out: Path | None = None,
    master: str = DEFAULT_MASTER,
    seed: int = 0,
    settings: Settings | None = None,
    **params: Any,
) -> tuple[ALS, Path, float]:
    """Load ``dataset_name`` (fetching it if missing), fit ``als`` on Spark, save it;
    returns (model, path, seconds spent in Spark and the closing step).

    out: model file (default ``<home>/models/<dataset>-als.npz``, what ``serve`` reads).
    """
    from movierec.data import load_dataset
    from movierec.training import model_path

    check_spark()
    check_master(master)
    unfitted_model(seed, **params)  # bad parameters fail before Spark starts
    settings = settings or load_settings()
    dataset = load_dataset(dataset_name, home=settings.home, progress=False)
    started = time.perf_counter()
    with spark_session(master, driver_memory_for(dataset.ratings.nnz)) as spark:
        model = train_on_spark(dataset.ratings, spark, seed=seed, **params)
    seconds = time.perf_counter() - started
    path = model.save(out or model_path(dataset_name, "als", settings))
    return model, path, seconds


def _param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad parameter {text[:100]!r}: expected NAME=NUMBER"
        ) from None
    return name, int(number) if number.is_integer() and "." not in value else number


def main(argv: Sequence[str] | None = None) -> int:
    """``python spark_engine.py`` / ``spark-submit spark_engine.py``: train and save.

    Errors a user can fix print one line ``movierec-spark: error: ...`` and exit 2.
    """
    parser = argparse.ArgumentParser(
        prog="movierec-spark", description="Train movierec's als model with Spark MLlib."
    )
    parser.add_argument("--dataset", "-d", default="ml-latest-small")
    parser.add_argument("--out", type=Path, help="model file (default: where serve looks)")
    parser.add_argument(
        "--master",
        default=DEFAULT_MASTER,
        help="Spark master when run by python (spark-submit's --master wins under it)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--param", "-p", action="append", type=_param, default=[], metavar="NAME=VALUE",
        help="n_factors, n_epochs, reg, reg_bias (as for movierec train -p)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        model, path, seconds = train_dataset(
            args.dataset, args.out, args.master, args.seed, **dict(args.param)
        )
    except MovierecError as exc:
        print(f"movierec-spark: error: {exc}", file=sys.stderr)
        return 2
    print(summary(model, args.dataset, path, seconds))
    return 0


def summary(model: ALS, dataset: str, path: Path, seconds: float) -> str:
    """The one line ``train --engine spark`` prints."""
    n_ratings = model.rated.stars.size if model.rated is not None else 0
    return (
        f"trained als on Spark in {seconds:.1f} s on {dataset} ({n_ratings:,} "
        f"ratings, {model.n_users:,} users, {model.n_items:,} movies); saved {path}"
    )


if __name__ == "__main__":
    sys.exit(main())
