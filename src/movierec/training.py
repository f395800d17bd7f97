"""Trained models on disk: where they live, and training one on first use.

Models are saved as ``<home>/models/<dataset>-<model>.npz``. Used by the CLI
(``train``, ``recommend``) and by ``serve`` so both find the same files.
"""

from __future__ import annotations

from pathlib import Path

from movierec import models
from movierec.config import Settings, load_settings
from movierec.data import Dataset, fetch_dataset, load_dataset
from movierec.errors import ModelError
from movierec.models.base import Recommender


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
) -> tuple[Recommender, Dataset]:
    """The saved model for (dataset, model), trained and saved first if there is none.

    The data set is fetched from the configured source if it is missing.
    """
    settings = settings or load_settings()
    models.model_class(model)  # unknown name -> InvalidInput before any work
    fetch_dataset(dataset_name, source=settings.data_source, home=settings.home, progress=progress)
    dataset = load_dataset(dataset_name, home=settings.home, fetch=False)
    path = model_path(dataset_name, model, settings)
    if path.exists():
        try:
            loaded = models.load(path)
        except ModelError:
            loaded = None  # unreadable (e.g. older format): retrain below
        if loaded is not None and loaded.name == model:
            return loaded, dataset
    fitted, _ = train_model(dataset, model, settings, progress=progress)
    return fitted, dataset
