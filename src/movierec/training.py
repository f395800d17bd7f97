"""Trained models on disk: where they live, and training one on first use.

Models are saved as ``<home>/models/<dataset>-<model>.npz``. Used by the CLI
(``train``, ``recommend``) and by ``serve`` so both find the same files.

**Training never runs in a server process.** ``serve`` asks for its models with
``isolate=True``: a missing model is trained by ``movierec train`` in a fresh
interpreter (not a fork) and then loaded memory-mapped from its file. Training runs numba's parallel
kernels, which start a GNU OpenMP thread pool; a process that has started one must not
fork (``fork() called from a process already using GNU OpenMP`` aborts the child), and a
forked web worker that trains dies the same way. Keeping every pool in a short-lived
child leaves the supervisor free to fork its workers.

**A model is checked before it is served** (:func:`quality_problem`): its predictions on
a sample of its own training ratings must beat the global mean's by a clear margin. A
model whose fit never ran (biases 0, factors at their initial spread) does not, so it is
retrained rather than served.

**A training never replaces a good model with a bad one** (:func:`save_checked`): the
new model is written to a temporary file beside the old, read back (every checksum) and
checked as ``serve`` would check it at start (:func:`serving_problem`); only then is it
renamed over the old file, so a failed, killed or damaged training leaves the old file in
place. Every training, good or failed, leaves a record of its time and figures beside
the model (``<dataset>-<model>.last-training.json``, :func:`read_training_record`), which
``serve`` logs and ``GET /api/v1/model`` shows.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from movierec import models
from movierec.config import Settings, load_settings
from movierec.data import Dataset, fetch_dataset, load_dataset
from movierec.data.ratings import Ratings
from movierec.errors import ModelError
from movierec.models.base import Recommender
from movierec.models.calibration import fit_calibration
from movierec.models.files import TEMP_MARK, remove_stale_temps, utc_now
from movierec.visitor_ratings import MIN_VISITOR_RATINGS, Merged, merge_visitors

#: training ratings sampled to check a model before it is served
QUALITY_SAMPLE = 20_000
#: a served model's training RMSE must be below this share of the global mean's RMSE
#: (on ml-latest-small ease, svd and nmf reach 0.62 of it, popular 0.80; an unfitted
#: svd 1.00)
QUALITY_MAX_RMSE_RATIO = 0.95
#: data sets with fewer ratings are too small to tell a fit from noise: not checked
QUALITY_MIN_RATINGS = 1_000


def model_path(dataset: str, model: str, settings: Settings | None = None) -> Path:
    """``<home>/models/<dataset>-<model>.npz``."""
    settings = settings or load_settings()
    return settings.models_dir / f"{dataset}-{model}.npz"


def training_record_path(dataset: str, model: str, settings: Settings | None = None) -> Path:
    """``<home>/models/<dataset>-<model>.last-training.json``."""
    return model_path(dataset, model, settings).with_suffix(".last-training.json")


def train_model(
    dataset: Dataset,
    model: str,
    settings: Settings | None = None,
    progress: bool = True,
    trained_on: Mapping[str, Any] | None = None,
    **params: object,
) -> tuple[Recommender, Path]:
    """Fit ``model`` on the whole of ``dataset``, calibrate its like probability on
    held-out users (:func:`~movierec.models.calibration.fit_calibration`: a model of the
    same kind fitted per user fold, so training costs several fits) and save it with
    :func:`save_checked`; returns (model, path).

    The model's ``training`` figures (saved in its file) and this training's record
    (:func:`read_training_record`, written whether it succeeds or fails) say when it
    ran, for how long (s), on how many ratings and users, and its training RMSE against
    the global mean's; ``trained_on`` adds figures of its own (whose ratings: see
    :func:`with_visitors`).
    """
    path = model_path(dataset.name, model, settings)
    record: dict[str, Any] = {"model": model, "dataset": dataset.name, "pid": os.getpid()}
    record["started_at"] = utc_now()
    started = time.monotonic()
    try:
        fitted = models.create(model, **params).fit(
            dataset.ratings, progress=progress, catalog=dataset.catalog
        )
        fitted.calibration = fit_calibration(
            model, fitted.params, dataset.ratings, dataset.catalog, fitted.seed, progress
        )
        figures = {
            "seconds": round(time.monotonic() - started, 1),
            "ratings": int(dataset.ratings.nnz),
            "users": int(dataset.ratings.n_users),
            "movies": int(dataset.ratings.n_items),
        }
        rmse = quality_figures(fitted, dataset.ratings)
        if rmse is not None:
            figures["rmse"], figures["mean_rmse"] = round(rmse[0], 4), round(rmse[1], 4)
        figures.update(dataset_users=figures["users"], visitors=0)  # unless trained_on says
        fitted.training = {**figures, **(trained_on or {}), **fitted.training}
        save_checked(fitted, dataset, path)
    except Exception as exc:
        record.update(finished_at=utc_now(), outcome="failed", reason=str(exc)[:300])
        record["seconds"] = round(time.monotonic() - started, 1)
        write_training_record(path, record)
        raise
    assert fitted.version is not None  # set by save
    record.update(fitted.training, finished_at=utc_now(), outcome="saved")
    record["version"] = fitted.version.version
    write_training_record(path, record)
    return fitted, path


def with_visitors(
    dataset: Dataset, database_url: str, min_ratings: int = MIN_VISITOR_RATINGS
) -> tuple[Dataset, Merged]:
    """``dataset`` with its ratings merged with the visitors' stored at ``database_url``
    (``train --with-visitors``; what counts: :mod:`movierec.visitor_ratings`), and the
    merge's figures. The database must be at this code's schema revision
    (``StoreError`` saying to run ``movierec db upgrade`` otherwise)."""
    from movierec.store import Store
    from movierec.store.migrate import ensure_current
    from movierec.store.training_data import read_visitor_ratings

    store = Store(database_url)
    try:
        ensure_current(store)
        stored = read_visitor_ratings(store)
    finally:
        store.dispose()
    merged = merge_visitors(
        dataset.ratings,
        stored.visitor,
        stored.movie_ids,
        stored.stars,
        catalogue=dataset.catalog.frame.index.to_numpy(np.int64),
        min_ratings=min_ratings,
        opted_out=stored.opted_out,
    )
    return replace(dataset, ratings=merged.ratings), merged


def save_checked(fitted: Recommender, dataset: Dataset, path: Path) -> Path:
    """Save ``fitted`` over ``path`` only if the saved file is good: written to a
    temporary file beside it, read back and checked by :func:`serving_problem` against
    ``dataset`` (the ratings it was trained on), then renamed over ``path`` (atomic: a
    reader sees the old file or the new, whole). A bad one is removed and raises
    ``ModelError``; the old file stays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.stem}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}.npz")
    try:
        fitted.save(temp)
        loaded = models.load(temp)
        problem = serving_problem(loaded, fitted.name, dataset, temp)
        if problem is not None:
            raise ModelError(f"not replacing {path}: {problem}")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    try:  # the rename itself made durable, as write_model_file does
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


def write_training_record(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as the last training of the model saved at ``path`` (atomic)."""
    target = path.with_suffix(".last-training.json")
    temp = target.with_name(f"{target.name}{TEMP_MARK}{os.getpid()}")
    try:
        temp.write_text(json.dumps(record, sort_keys=True))
        os.replace(temp, target)
    except OSError:
        temp.unlink(missing_ok=True)  # a record is worth a try, never a failed training


def read_training_record(path: Path) -> dict[str, Any] | None:
    """The last training's record of the model saved at ``path`` (see
    :func:`train_model`), or None if there is none or it cannot be read."""
    try:
        record = json.loads(path.with_suffix(".last-training.json").read_text())
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
    return record if isinstance(record, dict) else None


def ensure_model(
    dataset_name: str,
    model: str,
    settings: Settings | None = None,
    progress: bool = True,
    train: bool = True,
    notice: Callable[[str], None] | None = None,
    isolate: bool = False,
) -> tuple[Recommender, Dataset]:
    """The saved model for (dataset, model), trained and saved first if there is none.

    The data set is fetched from the configured source if it is missing. A saved file
    that is damaged, of an older format, of another model, fitted on another version
    of the data set (other movie ids) or failing :func:`quality_problem` is retrained,
    saying so in one line through ``notice`` (default: ``movierec: <line>`` on stderr).
    With ``train=False`` nothing is trained: a missing or unusable file raises
    ``ModelError`` naming the path. ``isolate=True`` trains in a child process (see the
    module doc) and returns the model loaded from the file it saved.
    """
    settings = settings or load_settings()
    notice = notice or _print_notice
    models.model_class(model)  # unknown name -> InvalidInput before any work
    fetch_dataset(dataset_name, source=settings.data_source, home=settings.home, progress=progress)
    dataset = load_dataset(dataset_name, home=settings.home, fetch=False)
    path = model_path(dataset_name, model, settings)
    remove_stale_temps(path)
    if not path.exists():
        if not train:
            raise ModelError(
                f"no trained model at {path}; run `movierec train --dataset {dataset_name} "
                f"--model {model}` (or serve without --no-train)"
            )
    else:
        try:
            loaded = models.load(path)
            problem = serving_problem(loaded, model, dataset, path)
        except ModelError as exc:
            problem = str(exc)
        if problem is None:
            return loaded, dataset
        if not train:
            raise ModelError(problem)
        notice(f"{problem}; retraining")
    if isolate:
        train_in_child(dataset_name, model, settings, progress=progress)
        fitted = models.load(path)
    else:
        fitted, _ = train_model(dataset, model, settings, progress=progress)
    problem = serving_problem(fitted, model, dataset, path)
    if problem is not None:  # a fit that went wrong is never served
        raise ModelError(problem)
    return fitted, dataset


def train_in_child(
    dataset_name: str, model: str, settings: Settings, progress: bool = True
) -> Path:
    """``movierec train`` for ``model`` in a fresh interpreter (its thread pools die with
    it; nothing of it stays behind, unlike a ``multiprocessing`` pool's helper process);
    returns the saved path. Its progress and its one-line error reach this stderr; a
    failure raises ``ModelError``."""
    command = [sys.executable, "-m", "movierec.cli", "train"]
    command += ["--dataset", dataset_name, "--model", model]
    env = {**os.environ, "MOVIEREC_HOME": str(settings.home)}
    done = subprocess.run(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=None if progress else subprocess.PIPE,
        text=True,
    )
    if done.returncode != 0:
        said = (done.stderr or "").strip().splitlines()
        detail = f": {said[-1]}" if said else " (its error is printed above)"
        raise ModelError(
            f"training {model!r} on {dataset_name} in its own process failed with exit code "
            f"{done.returncode}{detail}"
        )
    return model_path(dataset_name, model, settings)


def quality_figures(
    model: Recommender, ratings: Ratings, seed: int = 0
) -> tuple[float, float] | None:
    """``(model's RMSE, the mean's RMSE)`` in stars on up to ``QUALITY_SAMPLE`` of
    ``ratings`` (seeded sample); None for data sets under ``QUALITY_MIN_RATINGS``."""
    matrix = ratings.matrix
    if matrix.nnz < QUALITY_MIN_RATINGS:
        return None
    rng = np.random.default_rng(seed)
    picked = rng.choice(matrix.nnz, size=min(QUALITY_SAMPLE, matrix.nnz), replace=False)
    rows = np.searchsorted(matrix.indptr, picked, side="right") - 1
    stars = matrix.data[picked].astype(np.float64)
    predicted = model.predict(ratings.user_ids[rows], ratings.movie_ids[matrix.indices[picked]])
    rmse = float(np.sqrt(np.mean((predicted - stars) ** 2)))
    return rmse, float(np.sqrt(np.mean((stars - stars.mean()) ** 2)))


def quality_problem(model: Recommender, ratings: Ratings, seed: int = 0) -> str | None:
    """Why ``model`` is not fit to serve ``ratings``' data set, or None.

    Its predicted stars for up to ``QUALITY_SAMPLE`` of the training ratings (seeded
    sample) must have an RMSE below ``QUALITY_MAX_RMSE_RATIO`` times that of always
    predicting their mean: a fit that never ran predicts about the mean. Data sets with
    fewer than ``QUALITY_MIN_RATINGS`` ratings pass unchecked.
    """
    figures = quality_figures(model, ratings, seed)
    if figures is None:
        return None
    rmse, baseline = figures
    if baseline > 0 and rmse >= QUALITY_MAX_RMSE_RATIO * baseline:
        return (
            f"model {model.name!r} predicts its training ratings no better than their mean "
            f"(RMSE {rmse:.3f} vs {baseline:.3f}): its fit did not run"
        )
    return None


def serving_problem(loaded: Recommender, model: str, dataset: Dataset, path: Path) -> str | None:
    """Why ``loaded`` (read from ``path``) cannot serve ``model`` on ``dataset``, or None:
    another model, other movies, or failing :func:`quality_problem`. ``serve`` applies
    it at start and before swapping in a newer file."""
    if loaded.name != model:
        return f"model file {path} holds a {loaded.name!r} model, not {model!r}"
    ours, theirs = loaded.movie_ids, dataset.ratings.movie_ids
    if ours is not None and not np.array_equal(ours, theirs):
        # trained with visitors' ratings of added movies: the data set's and some more of
        # its catalogue's (train --with-visitors)
        # (ids in ascending order, as Ratings keeps them: a file whose ids were shuffled
        # against its arrays is not one of these)
        catalogue = dataset.catalog.frame.index.to_numpy(np.int64)
        ascending = bool(np.all(np.diff(ours) > 0))
        if ascending and np.isin(theirs, ours).all() and np.isin(ours, catalogue).all():
            theirs = ours
    if ours is None or not np.array_equal(ours, theirs):
        n_ours = 0 if ours is None else ours.size
        detail = (
            f"{n_ours:,} movies, the data set has {theirs.size:,}"
            if n_ours != theirs.size
            else "its movie ids differ from the data set's"
        )
        return f"model file {path} does not fit {dataset.name} ({detail})"
    problem = quality_problem(loaded, dataset.ratings)
    return None if problem is None else f"model file {path} failed its check: {problem}"


def _print_notice(line: str) -> None:
    print(f"movierec: {line}", file=sys.stderr, flush=True)
