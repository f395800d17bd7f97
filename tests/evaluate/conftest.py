"""Fixtures for the evaluation harness: small real subsets of ml-latest-small."""

from __future__ import annotations

import pandas as pd
import pytest

from movierec import models


@pytest.fixture(scope="session")
def small_frame(ml_small) -> pd.DataFrame:
    """Ratings of the first 100 users of ml-latest-small on movies with 20+ ratings overall
    (about 6,000 ratings on about 1,000 movies): real data, small enough for seconds."""
    frame = ml_small.frame
    counts = frame["movieId"].map(frame["movieId"].value_counts())
    subset = frame[(frame["userId"] <= 100) & (counts >= 20)]
    return subset.reset_index(drop=True)


@pytest.fixture(scope="session")
def fast_models() -> tuple[list[str], dict[str, dict]]:
    """Models that exist now among ``popular`` and ``svd``, with quick parameters."""
    names = [m for m in ("popular", "svd") if m in models.available()]
    params: dict[str, dict] = {}
    if "svd" in names:
        defaults = models.model_class("svd").defaults
        params["svd"] = {k: v for k, v in {"n_epochs": 5, "n_factors": 10}.items() if k in defaults}
    return names, params
