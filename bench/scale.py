"""Fit time, time per epoch, peak RSS and fold-in latency at 1 M / 5 M / 25 M ratings.

Every measurement runs in its own subprocess (this script with ``--child``), so the peak
RSS read from ``os.wait4`` is that fit's alone (data loading included), and a model that
runs out of memory kills only its own row. Peers run the same way in the same run, and
the table prints ratios (ours / peer) per iteration.

Data: ``--home DIR`` with MovieLens-shaped synthetic sets written by
``movierec data synth`` (names from ``--names``, e.g. ``synth-{m}m`` where ``{m}`` is
the size in millions); a size with no such set falls back to a quick generator of our
own (:func:`synth_ratings`, cached as CSR ``.npz`` under ``--cache``).

Time per iteration is measured the same way for ours and the iterative peers: the full
fit minus a 2-iteration fit, over the iterations between (Spark: 7 minus 2), so set-up,
JVM start and data shipping are not in it; wall and CPU seconds (all threads; Spark's
JVM read from ``/proc``) both, as the machine may be shared.

Usage::

    flock /tmp/movierec-big.lock nice .venv/bin/python bench/scale.py \\
        --ratings 1000000,5000000,25000000 --models svd,als --peers implicit-als,surprise-svd

A long run can be made in parts (``--json`` each) and printed as one table with
``--table part1.json,part2.json``.

Adding a row: write ``measure_<name>(ratings, args) -> dict`` returning ``fit_s`` and
``per_iter_s`` (and optionally ``foldin_p50_ms``/``foldin_p99_ms``) and register it in
``MODELS`` (ours) or ``PEERS`` (others; ``PEER_OF`` says which of ours it is compared
with, ``PEER_MAX_RATINGS`` where it stops).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from common import header, percentiles, print_table, stopwatch  # bench/common.py

from movierec import models
from movierec.data import Ratings

#: ml-25m's shape: users and movies at 25 M ratings; smaller sizes scale them down
ML25M_USERS, ML25M_MOVIES, ML25M_RATINGS = 162_541, 59_047, 25_000_095


# -- data -----------------------------------------------------------------------------------
def synth_ratings(n_ratings: int, seed: int = 0) -> Ratings:
    """A MovieLens-shaped explicit rating matrix with about ``n_ratings`` ratings.

    Users and movies scale from ml-25m's (users linearly, movies as the square root);
    movie popularity is Zipf-like (exponent 1), user activity log-normal with every user
    at least 20 ratings; stars are ``3.5 + b_u + b_i + p_u . q_i + noise`` (rank 8),
    rounded to half stars in 0.5-5. Built as CSR directly (no DataFrame): a quick stand-in
    for ``movierec data synth`` when that set is not there.
    """
    rng = np.random.default_rng(seed)
    scale = n_ratings / ML25M_RATINGS
    n_users = max(100, int(ML25M_USERS * scale))
    n_movies = max(200, int(ML25M_MOVIES * min(1.0, np.sqrt(scale))))
    activity = rng.lognormal(0.0, 1.1, n_users)
    popularity = 1.0 / (np.arange(n_movies) + 10.0)
    cumulative = np.cumsum(rng.permutation(popularity / popularity.sum()))
    target = n_ratings
    for _ in range(2):  # draws repeat popular movies; the second pass makes up the loss
        extra = np.maximum(target - 20 * n_users, 0)
        counts = 20 + np.floor(activity / activity.sum() * extra).astype(np.int64)
        counts = np.minimum(counts, n_movies // 2)
        users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
        items = np.searchsorted(cumulative, rng.random(users.size)).clip(0, n_movies - 1)
        keys = np.unique(users * n_movies + items)  # sorted: user-major, items sorted in a row
        target = int(target * n_ratings / keys.size)
    users, items = keys // n_movies, (keys % n_movies).astype(np.int32)
    rank = 8
    user_f = rng.normal(0, 0.35, (n_users, rank)).astype(np.float32)
    item_f = rng.normal(0, 0.35, (n_movies, rank)).astype(np.float32)
    stars = np.empty(users.size, dtype=np.float32)
    step = 5_000_000
    user_b, item_b = rng.normal(0, 0.4, n_users), rng.normal(0, 0.5, n_movies)
    for start in range(0, users.size, step):
        u, i = users[start : start + step], items[start : start + step]
        raw = 3.5 + user_b[u] + item_b[i] + np.einsum("nk,nk->n", user_f[u], item_f[i])
        raw += rng.normal(0, 0.6, u.size)
        stars[start : start + step] = np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    used = np.flatnonzero(np.bincount(items, minlength=n_movies))
    remap = np.full(n_movies, -1, dtype=np.int32)
    remap[used] = np.arange(used.size, dtype=np.int32)
    matrix = sp.csr_matrix((stars, remap[items], indptr), shape=(n_users, used.size))
    return Ratings(
        matrix=matrix,
        user_ids=np.arange(1, n_users + 1, dtype=np.int64),
        movie_ids=(used + 1).astype(np.int64),
    )


def load_ratings(n_ratings: int, args: argparse.Namespace) -> Ratings:
    """The ``n_ratings`` set: ``movierec data synth``'s under ``--home`` if present, else ours."""
    if args.home:
        name = args.names.format(m=n_ratings // 1_000_000, n=n_ratings)
        if (Path(args.home) / "data" / name).exists() or (Path(args.home) / name).exists():
            from movierec.data import load_dataset

            return load_dataset(name, home=args.home, fetch=False).ratings
    cache = Path(args.cache) / f"synth-{n_ratings}-seed0.npz"
    if cache.exists():
        arrays = np.load(cache)
        matrix = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"])
        )
        return Ratings(matrix=matrix, user_ids=arrays["user_ids"], movie_ids=arrays["movie_ids"])
    ratings = synth_ratings(n_ratings)
    cache.parent.mkdir(parents=True, exist_ok=True)
    m = ratings.matrix
    np.savez(cache, data=m.data, indices=m.indices, indptr=m.indptr, shape=np.array(m.shape),
             user_ids=ratings.user_ids, movie_ids=ratings.movie_ids)  # fmt: skip
    return ratings


# -- our models ----------------------------------------------------------------------------------
def foldin_latency(model: models.Recommender, ratings: Ratings, n_visitors: int = 300) -> dict:
    """p50/p99 ms of fold-in + top 5 (the rated movies excluded, ``Recommender.top_k``, as
    the recommend service asks) for visitors rating 15 of the 50 most-rated movies."""
    rng = np.random.default_rng(0)
    order = np.argsort(-ratings.item_counts(), kind="stable")[:50]
    top = ratings.movie_ids[order]
    ms = []
    for _ in range(n_visitors):
        picked = rng.choice(15 * [True] + 35 * [False], 50, replace=False)
        stars = (rng.integers(1, 11, 15) / 2).tolist()
        with stopwatch() as watch:
            allowed = np.ones(ratings.n_items, dtype=bool)
            allowed[order[picked]] = False
            model.top_k(model.fold_in(top[picked].tolist(), stars), 5, allowed)
        ms.append(watch.wall_ms)
    p50, p99 = percentiles(ms[20:])  # the first few warm caches up
    return {"foldin_p50_ms": p50, "foldin_p99_ms": p99}


def fit_ours(name: str, ratings: Ratings, params: dict[str, Any]) -> dict:
    """Fit our model ``name`` (numba compiled first on a tiny set); time and fold-in.

    ``per_iter_s`` / ``per_iter_cpu_s`` are measured as Spark's are (see
    :func:`measure_spark_als`): the difference between the full fit and a
    ``SHORT_EPOCHS`` fit, over the epochs between, so set-up and the first and last
    (exact) half-steps are not counted; ``fit_s`` is the full fit, all included.
    """
    model = models.create(name, **params)
    models.create(name, **{**params, "n_epochs": 1}).fit(synth_ratings(5_000, seed=1))
    epochs = int(model.params.get("n_epochs", 1)) or 1
    short = None
    if epochs > SHORT_EPOCHS:
        short = _timed_fit(models.create(name, **{**params, "n_epochs": SHORT_EPOCHS}), ratings)
    fit_s, fit_cpu_s = _timed_fit(model, ratings)
    per_iter = (fit_s / epochs, fit_cpu_s / epochs)
    if short is not None:
        spread = epochs - SHORT_EPOCHS
        per_iter = ((fit_s - short[0]) / spread, (fit_cpu_s - short[1]) / spread)
    return {"fit_s": fit_s, "per_iter_s": per_iter[0], "fit_cpu_s": fit_cpu_s,
            "per_iter_cpu_s": per_iter[1], **foldin_latency(model, ratings)}  # fmt: skip


#: the short fit that per-iteration times are differenced against
SHORT_EPOCHS = 2


def _timed_fit(model: models.Recommender, ratings: Ratings) -> tuple[float, float]:
    """``(wall s, CPU s of all this process's threads)`` of ``model.fit(ratings)``."""
    with stopwatch() as watch:
        model.fit(ratings)
    return watch.wall, watch.cpu


def measure_svd(ratings: Ratings, args: argparse.Namespace) -> dict:
    return fit_ours("svd", ratings, {})


def measure_svdpp(ratings: Ratings, args: argparse.Namespace) -> dict:
    return fit_ours("svdpp", ratings, {})


def measure_nmf(ratings: Ratings, args: argparse.Namespace) -> dict:
    return fit_ours("nmf", ratings, {})


def measure_als(ratings: Ratings, args: argparse.Namespace) -> dict:
    return fit_ours("als", ratings, {"n_factors": args.factors})


def fit_timed(
    name: str, ratings: Ratings, params: dict[str, Any], catalog=None
) -> tuple[dict, models.Recommender]:
    """``fit_ours`` for models without ``n_epochs`` (numba compiled first on a tiny set):
    ``(measurements, the fitted model)``."""
    models.create(name, **params).fit(synth_ratings(5_000, seed=1), catalog=catalog)
    model = models.create(name, **params)
    with stopwatch() as watch:
        model.fit(ratings, catalog=catalog)
    return {"fit_s": watch.wall, "fit_cpu_s": watch.cpu, **foldin_latency(model, ratings)}, model


def measure_ease(ratings: Ratings, args: argparse.Namespace) -> dict:
    """ease at its defaults; adds how many movies ``B`` keeps and their share of ratings."""
    result, model = fit_timed("ease", ratings, {})  # no per-epoch figure: one solve
    counts = ratings.item_counts()
    kept = model._choose_kept(counts)
    share = float(counts[kept].sum() / counts.sum())
    return {**result, "kept": int(kept.size), "kept_share": share}


def measure_itemknn(ratings: Ratings, args: argparse.Namespace) -> dict:
    return fit_timed("itemknn", ratings, {})[0]


def measure_popular(ratings: Ratings, args: argparse.Namespace) -> dict:
    return fit_timed("popular", ratings, {})[0]


def _catalog(args: argparse.Namespace, n_ratings: int):
    """The synth set's catalogue (genres, tags) under ``--home``, else None."""
    if not args.home:
        return None
    from movierec.data import load_dataset

    name = args.names.format(m=n_ratings // 1_000_000, n=n_ratings)
    try:
        return load_dataset(name, home=args.home, fetch=False).catalog
    except Exception:  # noqa: BLE001 - no synth set at this size: fit without text
        return None


def measure_content(ratings: Ratings, args: argparse.Namespace) -> dict:
    """content with the synth set's genres and tags when ``--home`` has them."""
    catalog = _catalog(args, int(args.ratings))
    return {**fit_timed("content", ratings, {}, catalog)[0], "text": catalog is not None}


def measure_blend(ratings: Ratings, args: argparse.Namespace) -> dict:
    """blend at its defaults (svdpp and itemknn, each fitted twice: held out, then all)."""
    return fit_timed("blend", ratings, {})[0]


#: our rows: name -> measurement
MODELS: dict[str, Callable[[Ratings, argparse.Namespace], dict]] = {
    "svd": measure_svd,
    "svdpp": measure_svdpp,
    "nmf": measure_nmf,
    "als": measure_als,
    "ease": measure_ease,
    "itemknn": measure_itemknn,
    "content": measure_content,
    "blend": measure_blend,
    "popular": measure_popular,
}


# -- peers ----------------------------------------------------------------------------------------
def measure_implicit_als(ratings: Ratings, args: argparse.Namespace) -> dict:
    """implicit's CPU ALS (conjugate gradient, 3 steps) at ``--factors``, 15 iterations,
    per iteration differenced against a 2-iteration fit as ours are.

    Implicit-feedback ALS (confidence = stars): a different objective, so only its time
    per iteration is comparable. Threads: 2 (this machine's cores).
    """
    from implicit.cpu.als import AlternatingLeastSquares

    matrix = ratings.matrix.astype(np.float32)
    timings = {}
    for iterations in (SHORT_EPOCHS, 15):
        model = AlternatingLeastSquares(
            factors=args.factors, iterations=iterations, use_cg=True, num_threads=2,
            random_state=0, calculate_training_loss=False,
        )  # fmt: skip
        with stopwatch() as watch:
            model.fit(matrix, show_progress=False)
        timings[iterations] = (watch.wall, watch.cpu)
    (short_s, short_cpu), (fit_s, fit_cpu) = timings[SHORT_EPOCHS], timings[15]
    spread = 15 - SHORT_EPOCHS
    return {"fit_s": fit_s, "per_iter_s": (fit_s - short_s) / spread, "fit_cpu_s": fit_cpu,
            "per_iter_cpu_s": (fit_cpu - short_cpu) / spread}  # fmt: skip


def measure_surprise_svd(ratings: Ratings, args: argparse.Namespace) -> dict:
    """Surprise's SVD (its defaults: 100 factors, 20 epochs), one core."""
    import pandas as pd
    from surprise import SVD, Dataset, Reader

    users, items, stars = ratings.triples()
    frame = pd.DataFrame({"u": users, "i": items, "r": stars})
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(0.5, 5.0))).build_full_trainset()
    model = SVD(random_state=0)
    with stopwatch() as watch:
        model.fit(trainset)
    fit_s, fit_cpu = watch.wall, watch.cpu
    return {"fit_s": fit_s, "per_iter_s": fit_s / model.n_epochs, "fit_cpu_s": fit_cpu,
            "per_iter_cpu_s": fit_cpu / model.n_epochs}  # fmt: skip


def measure_spark_als(ratings: Ratings, args: argparse.Namespace) -> dict:
    """Spark MLlib's explicit ALS on ``local[2]`` at ``--factors`` (``movierec.spark_engine``:
    the ratings shipped from the driver, factors collected back).

    Time per iteration is the difference between a 7- and a 2-iteration fit over 5, so
    the JVM start, shipping the ratings and collecting factors are not counted in it;
    ``fit_s`` is the 7-iteration fit, all included. The work runs in pyspark's JVM (a
    child, not counted in ``rss_mb`` / ``cpu_s``), so its CPU seconds come from
    ``/proc/<jvm>/stat``: ``fit_cpu_s`` (7 iterations) and ``per_iter_cpu_s`` the same
    difference; ``jvm_rss_mb`` is its peak RSS.
    """
    from movierec.spark_engine import _spark_factors, driver_memory_for, spark_session

    users, items, stars = ratings.triples()
    residual = (stars - ratings.global_mean).astype(np.float32)
    seconds, cpu = {}, {}
    with spark_session("local[2]", driver_memory_for(ratings.nnz)) as spark:
        jvm = Path(f"/proc/{spark.sparkContext._gateway.proc.pid}")  # pyspark's JVM (Popen)
        warm = slice(0, 50_000)  # JIT-compiles Spark's code paths outside the timings
        _spark_factors(spark, users[warm], items[warm], residual[warm], ratings.n_users,
                       ratings.n_items, args.factors, 1, 0.15, 0)  # fmt: skip
        for iterations in (2, 7):
            with stopwatch(lambda: _cpu_s(jvm) + time.process_time()) as watch:
                _spark_factors(spark, users, items, residual, ratings.n_users, ratings.n_items,
                               args.factors, iterations, 0.15, 0)  # fmt: skip
            seconds[iterations], cpu[iterations] = watch.wall, watch.cpu
        status = (jvm / "status").read_text().splitlines()
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    return {
        "fit_s": seconds[7],
        "per_iter_s": (seconds[7] - seconds[2]) / 5,
        "fit_cpu_s": cpu[7],
        "per_iter_cpu_s": (cpu[7] - cpu[2]) / 5,
        "jvm_rss_mb": peak_kb / 1024,
    }


def _cpu_s(proc: Path) -> float:
    """User + system CPU seconds of a running process (``/proc/<pid>``), all threads."""
    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: peers: name -> measurement
PEERS: dict[str, Callable[[Ratings, argparse.Namespace], dict]] = {
    "implicit-als": measure_implicit_als,
    "surprise-svd": measure_surprise_svd,
    "spark-als": measure_spark_als,
}
#: which of our models each peer is compared with (ratio = ours / peer, per iteration)
PEER_OF: dict[str, str] = {"implicit-als": "als", "surprise-svd": "svd", "spark-als": "als"}
#: largest size a peer is run at (Surprise is one slow Python-object core)
PEER_MAX_RATINGS: dict[str, int] = {"surprise-svd": 1_000_000}


# -- running -------------------------------------------------------------------------------------
def run_child(name: str, n_ratings: int, args: argparse.Namespace) -> dict:
    """Measure one row in a subprocess; adds ``rss_mb`` (its peak, from ``os.wait4``)
    and ``wall_s``, or ``error`` (one line) if it failed."""
    argv = [sys.executable, __file__, "--child", name, "--ratings", str(n_ratings),
            "--factors", str(args.factors), "--cache", args.cache,
            "--names", args.names]  # fmt: skip
    if args.home:
        argv += ["--home", args.home]
    with (
        stopwatch() as watch,
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
    ):
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage only
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    wall = watch.wall
    rss_mb = usage.ru_maxrss / 1024.0  # KiB on Linux
    # CPU seconds of the whole child (load + fit + fold-in, all threads): on a shared
    # machine wall time waits for other work, CPU time does not
    cpu = usage.ru_utime + usage.ru_stime
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["?"])[-1][:100]
        return {"error": f"exit {proc.returncode}: {tail}", "wall_s": wall, "rss_mb": rss_mb,
                "cpu_s": cpu}  # fmt: skip
    return {**json.loads(lines[-1]), "wall_s": wall, "rss_mb": rss_mb, "cpu_s": cpu}


def child_main(args: argparse.Namespace) -> None:
    """Run one measurement and print it as one JSON line."""
    n_ratings = int(args.ratings)
    with stopwatch() as loading:
        ratings = load_ratings(n_ratings, args)
    load_s = loading.wall
    table = {**MODELS, **PEERS}
    result = table[args.child](ratings, args)
    shape = {"users": ratings.n_users, "movies": ratings.n_items, "nnz": ratings.nnz}
    print(json.dumps({**result, **shape, "load_s": load_s}))


def print_results(rows: list[dict]) -> None:
    """The rows (one a child run), then ours / peer per iteration, as markdown tables."""
    cols = ("size", "name", "users", "movies", "fit_s", "per_iter_s", "fit_cpu_s",
            "per_iter_cpu_s", "rss_mb", "jvm_rss_mb", "foldin_p50_ms", "foldin_p99_ms")  # fmt: skip
    table = []
    for row in rows:
        cells = []
        for col in cols:
            value = row.get(col, "")
            cells.append(f"{value:.3f}" if isinstance(value, float) else str(value))
        if "error" in row:
            cells[-1] += f" ERROR {row['error']}"
        table.append(cells)
    print_table(cols, table)
    ratios = []
    for row in rows:
        ours_name = PEER_OF.get(row["name"])
        ours = [r for r in rows if r["name"] == ours_name and r["size"] == row["size"]]
        if ours and "per_iter_s" in ours[0] and "per_iter_s" in row:
            cpu = ""
            if "per_iter_cpu_s" in ours[0] and "per_iter_cpu_s" in row:
                cpu = f"{ours[0]['per_iter_cpu_s'] / row['per_iter_cpu_s']:.2f}"
            wall = f"{ours[0]['per_iter_s'] / row['per_iter_s']:.2f}"
            ratios.append((row["size"], f"{ours_name} / {row['name']}", wall, cpu))
    titles = ["size", "ours / peer", "per-iteration wall (ours / peer)", "per-iteration CPU"]
    if ratios:  # only when a peer ran beside its counterpart
        print_table(titles, ratios)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", default="1000000,5000000,25000000")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--peers", default=",".join(PEERS), help="comma list; '' for none")
    parser.add_argument("--factors", type=int, default=50, help="als and implicit factors")
    parser.add_argument("--home", default=os.environ.get("MOVIEREC_HOME_BIG"),
                        help="MOVIEREC_HOME holding `movierec data synth` sets")  # fmt: skip
    parser.add_argument("--names", default="synth-{m}m", help="set name per size ({m}: millions)")
    parser.add_argument("--cache", default="/work/bigdata/scale-cache")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--table", help="print the tables of saved --json files (comma list)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args)
        return
    header(argv)
    if args.table:  # runs made in parts (one model at a time, between other work)
        print_results(
            [row for path in args.table.split(",") for row in json.loads(Path(path).read_text())]
        )
        return
    names = [m for m in args.models.split(",") if m] + [p for p in args.peers.split(",") if p]
    unknown = [n for n in names if n not in MODELS and n not in PEERS]
    if unknown:
        parser.error(f"unknown model or peer {unknown[0]!r}; known: {', '.join([*MODELS, *PEERS])}")
    rows = []
    for size in (int(s) for s in args.ratings.split(",")):
        load_ratings(size, args)  # generate/cache once, outside the timed children
        for name in names:
            if size > PEER_MAX_RATINGS.get(name, size):
                continue
            row = {"size": size, "name": name, **run_child(name, size, args)}
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    print_results(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
