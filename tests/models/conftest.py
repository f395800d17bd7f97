"""Fixtures for model tests: a small real subset of ml-latest-small, split per user."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.data import Ratings


@pytest.fixture(scope="session")
def small_split(ml_small) -> tuple[Ratings, pd.DataFrame]:
    """``(train, test)``: the first 120 users of ml-latest-small, one in five ratings held out.

    train: ``Ratings`` of the rest (about 10,000 ratings); test: frame with ``userId,
    movieId, rating`` (some of its movies are unknown to train).
    """
    frame = ml_small.frame[ml_small.frame["userId"] <= 120]
    held_out = np.random.default_rng(0).random(len(frame)) < 0.2
    return Ratings.from_frame(frame[~held_out]), frame[held_out].reset_index(drop=True)
