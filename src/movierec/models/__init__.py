"""Models by name: ``create("svd", n_factors=50)``, ``load(path)``.

Each algorithm lives in its own module; the registry imports it on first use.
"""

from __future__ import annotations

from typing import Any

from movierec.models.base import Recommender, UserState
from movierec.models.registry import REGISTRY, available, create, model_class


def load(path: Any) -> Recommender:
    """Load any saved model (the file names its class)."""
    return Recommender.load(path)


__all__ = ["REGISTRY", "Recommender", "UserState", "available", "create", "load", "model_class"]
