"""Trained models on disk: where they live, and training one on first use.

Models are saved as ``<home>/models/<dataset>-<model>.npz``. Used by the CLI
(``train``, ``recommend``) and by ``serve`` so both find the same files.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from movierec import models
from movierec.config import Settings, load_settings
from movierec.data import Dataset, fetch_dataset, load_dataset
from movierec.errors import ModelError
from movierec.models.base import Recommender
from movierec.models.files import remove_stale_temps


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
    """Fit ``model`` on the whole of ``dataset`` and save it; returns (model, path)."""
    fitted = models.create(model, **params).fit(
        dataset.ratings, progress=progress, catalog=dataset.catalog
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
) -> tuple[Recommender, Dataset]:
    """The saved model for (dataset, model), trained and saved first if there is none.

    The data set is fetched from the configured source if it is missing. A saved file
    that is damaged, of an older format, of another model or fitted on another version
    of the data set (other movie ids) is retrained, saying so in one line through
    ``notice`` (default: ``movierec: <line>`` on stderr). With ``train=False`` nothing
    is trained: a missing or unusable file raises ``ModelError`` naming the path.
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
    fitted, _ = train_model(dataset, model, settings, progress=progress)
    return fitted, dataset


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
    return None


def _print_notice(line: str) -> None:
    print(f"movierec: {line}", file=sys.stderr, flush=True)
