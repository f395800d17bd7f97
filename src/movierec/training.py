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
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from movierec import models
from movierec.config import Settings, load_settings
from movierec.data import Dataset, fetch_dataset, load_dataset
from movierec.data.ratings import Ratings
from movierec.errors import ModelError
from movierec.models.base import Recommender
from movierec.models.calibration import fit_calibration
from movierec.models.files import remove_stale_temps

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


def train_model(
    dataset: Dataset,
    model: str,
    settings: Settings | None = None,
    progress: bool = True,
    **params: object,
) -> tuple[Recommender, Path]:
    """Fit ``model`` on the whole of ``dataset``, calibrate its like probability on
    held-out users (:func:`~movierec.models.calibration.fit_calibration`: a model of the
    same kind fitted per user fold, so training costs several fits) and save it; returns
    (model, path)."""
    fitted = models.create(model, **params).fit(
        dataset.ratings, progress=progress, catalog=dataset.catalog
    )
    fitted.calibration = fit_calibration(
        model, fitted.params, dataset.ratings, dataset.catalog, fitted.seed, progress
    )
    path = fitted.save(model_path(dataset.name, model, settings))
    return fitted, path


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
            problem = _mismatch(loaded, model, dataset, path)
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
    problem = _mismatch(fitted, model, dataset, path)
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


def quality_problem(model: Recommender, ratings: Ratings, seed: int = 0) -> str | None:
    """Why ``model`` is not fit to serve ``ratings``' data set, or None.

    Its predicted stars for up to ``QUALITY_SAMPLE`` of the training ratings (seeded
    sample) must have an RMSE below ``QUALITY_MAX_RMSE_RATIO`` times that of always
    predicting their mean: a fit that never ran predicts about the mean. Data sets with
    fewer than ``QUALITY_MIN_RATINGS`` ratings pass unchecked.
    """
    matrix = ratings.matrix
    if matrix.nnz < QUALITY_MIN_RATINGS:
        return None
    rng = np.random.default_rng(seed)
    picked = rng.choice(matrix.nnz, size=min(QUALITY_SAMPLE, matrix.nnz), replace=False)
    rows = np.searchsorted(matrix.indptr, picked, side="right") - 1
    stars = matrix.data[picked].astype(np.float64)
    predicted = model.predict(ratings.user_ids[rows], ratings.movie_ids[matrix.indices[picked]])
    rmse = float(np.sqrt(np.mean((predicted - stars) ** 2)))
    baseline = float(np.sqrt(np.mean((stars - stars.mean()) ** 2)))
    if baseline > 0 and rmse >= QUALITY_MAX_RMSE_RATIO * baseline:
        return (
            f"model {model.name!r} predicts its training ratings no better than their mean "
            f"(RMSE {rmse:.3f} vs {baseline:.3f}): its fit did not run"
        )
    return None


def _mismatch(loaded: Recommender, model: str, dataset: Dataset, path: Path) -> str | None:
    """Why ``loaded`` (read from ``path``) cannot serve ``model`` on ``dataset``, or None."""
    if loaded.name != model:
        return f"model file {path} holds a {loaded.name!r} model, not {model!r}"
    ours, theirs = loaded.movie_ids, dataset.ratings.movie_ids
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
