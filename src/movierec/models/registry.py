"""The model registry: names to classes, imported on first use (``create("svd")``).

Kept apart from the package's ``__init__`` so that modules the base class imports (the
calibration, which fits models by name) can use it without an import cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from movierec.errors import InvalidInput

if TYPE_CHECKING:
    from movierec.models.base import Recommender

#: model name -> "module:Class" (modules under movierec.models)
REGISTRY: dict[str, str] = {
    "popular": "popular:Popular",
    "svd": "svd:SVD",
    "nmf": "nmf:NMF",
    "als": "als:ALS",
    "svdpp": "svdpp:SVDpp",
    "itemknn": "itemknn:ItemKNN",
    "content": "content:ContentModel",
    "blend": "blend:Blend",
    "ease": "ease:EASE",
}


def available() -> list[str]:
    """Names accepted by :func:`create`."""
    return sorted(REGISTRY)


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``; ``InvalidInput`` naming it if unknown."""
    try:
        target = REGISTRY[name]
    except (KeyError, TypeError):
        raise InvalidInput(
            f"unknown model {name!r}; choose from {', '.join(available())}", field="model"
        ) from None
    module_name, class_name = target.split(":")
    module = importlib.import_module(f"movierec.models.{module_name}")
    klass: type[Recommender] = getattr(module, class_name)
    return klass


def create(name: str, **params: Any) -> Recommender:
    """An unfitted model by name, e.g. ``create("svd", n_factors=100, seed=1)``."""
    return model_class(name)(**params)
