"""Loading fetched data sets: ``load_dataset`` and the official ml-100k splits."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd

from movierec.config import load_settings
from movierec.data.added import added_path, read_added, with_added
from movierec.data.fetch import fetch_dataset
from movierec.data.movielens import Dataset, dataset_dir, get_spec, read_dataset
from movierec.errors import DataError, InvalidInput

Split = tuple[pd.DataFrame, pd.DataFrame]


def load_dataset(
    name: str,
    home: str | os.PathLike[str] | None = None,
    fetch: bool = True,
    progress: bool = True,
) -> Dataset:
    """Read data set ``name`` from ``<home>/data/<name>/``.

    With ``fetch`` a missing set is first fetched from the configured source (see
    ``fetch_dataset``); without it a missing set is a ``DataError``. Each call re-reads
    the files (about 0.1-0.2 s for the small sets); a big ratings file is parsed once and
    then read from a binary copy beside it (``movierec.data.cache``). The catalogue
    includes the movies the operator added (:mod:`movierec.data.added`).
    """
    get_spec(name, home=_home(home))
    dataset = read_dataset(name, _folder(name, home, fetch, progress))
    added = read_added(added_path(name, _home(home)))
    if not added:
        return dataset
    return replace(dataset, catalog=with_added(dataset.catalog, added))


def official_folds(
    name: str = "ml-100k",
    home: str | os.PathLike[str] | None = None,
    fetch: bool = True,
) -> list[Split]:
    """The five official ``(base, test)`` pairs u1..u5 (80,000 / 20,000 ratings each).

    Frames have columns ``userId, movieId, rating, timestamp`` like ``Dataset.frame``.
    """
    spec = get_spec(name, home=_home(home))
    folds = [s for s in spec.splits if s[1:].isdigit()]
    if not folds:
        raise InvalidInput(f"{name} has no official folds; ml-100k has", field="name")
    folder = _folder(name, home, fetch, progress=False)
    return [_read_split(name, folder, fold) for fold in folds]


def load_split(
    name: str,
    split_name: str,
    home: str | os.PathLike[str] | None = None,
    fetch: bool = True,
) -> Split:
    """One official ``(base, test)`` split of ``name``, e.g. ``"u1"`` or ``"ua"`` of ml-100k."""
    spec = get_spec(name, home=_home(home))
    if split_name not in spec.splits:
        known = ", ".join(spec.splits) or "none"
        raise InvalidInput(
            f"unknown split {split_name!r} of {name}; known: {known}", field="split_name"
        )
    return _read_split(name, _folder(name, home, fetch, progress=False), split_name)


def _read_split(name: str, folder: Path, split_name: str) -> Split:
    spec = get_spec(name, folder=folder)
    return spec.read(folder, f"{split_name}.base"), spec.read(folder, f"{split_name}.test")


def _home(home: str | os.PathLike[str] | None) -> Path:
    return Path(home).expanduser() if home is not None else load_settings().home


def _folder(name: str, home: str | os.PathLike[str] | None, fetch: bool, progress: bool) -> Path:
    """The folder of ``name`` under ``home``, fetched first if ``fetch`` and missing."""
    if fetch:
        return fetch_dataset(name, home=home, progress=progress)
    folder = dataset_dir(name, _home(home))
    if not folder.is_dir():
        raise DataError(f"{name} is not in {folder}; fetch it first (`movierec data fetch {name}`)")
    return folder
