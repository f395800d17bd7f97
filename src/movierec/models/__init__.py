"""Models by name: ``create("svd", n_factors=50)``, ``load(path)``.

Each algorithm lives in its own module; the registry imports it on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from movierec.errors import InvalidInput
from movierec.models.base import Recommender, UserState

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


def load(path: Any) -> Recommender:
    """Load any saved model (the file names its class)."""
    return Recommender.load(path)


__all__ = ["REGISTRY", "Recommender", "UserState", "available", "create", "load", "model_class"]
