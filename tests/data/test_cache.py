"""The binary copy of the ratings: used the second time, refreshed or rebuilt when it must be."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from movierec.data import cache as cache_module
from movierec.data import load_dataset
from movierec.data import movielens as movielens_module
from movierec.data.cache import CACHE_DIR, META_FILE

from .test_releases import write_release


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny ml-25m-layout set that is cached although small."""
    monkeypatch.setattr(cache_module, "CACHE_FROM_BYTES", 0)
    return write_release(tmp_path / "data" / "ml-25m", "ml-25m")


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts how often the ratings file is parsed into arrays."""
    calls: list[int] = []
    original = movielens_module._ratings_arrays

    def counting(frame):  # type: ignore[no-untyped-def]
        calls.append(len(frame))
        return original(frame)

    monkeypatch.setattr(movielens_module, "_ratings_arrays", counting)
    return calls


def load(folder: Path):  # type: ignore[no-untyped-def]
    return load_dataset("ml-25m", home=folder.parents[1], fetch=False)


def assert_same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert (a.ratings.matrix != b.ratings.matrix).nnz == 0
    assert np.array_equal(a.ratings.user_ids, b.ratings.user_ids)
    assert np.array_equal(a.ratings.movie_ids, b.ratings.movie_ids)
    assert a.frame.equals(b.frame)
    assert a.catalog.frame.equals(b.catalog.frame)


def test_second_load_uses_the_cache(folder: Path, parses: list[int]) -> None:
    first = load(folder)
    assert parses == [3]
    meta = json.loads((folder / CACHE_DIR / META_FILE).read_text())
    assert meta["sources"]["ratings.csv"][0] == (folder / "ratings.csv").stat().st_size
    second = load(folder)
    assert parses == [3]  # not parsed again
    assert_same(first, second)
    assert isinstance(second.ratings.user_ids, np.memmap)  # read from the cache, mapped


def test_changed_ratings_file_refreshes_the_cache(folder: Path, parses: list[int]) -> None:
    load(folder)
    with open(folder / "ratings.csv", "a") as out:
        out.write("3,306,2.5,1573943604\n")
    again = load(folder)
    assert parses == [3, 4]
    assert again.catalog.get(306).n_ratings == 2
    assert load(folder).ratings.nnz == 4 and parses == [3, 4]


def test_same_size_new_mtime_refreshes(folder: Path, parses: list[int]) -> None:
    load(folder)
    path = folder / "ratings.csv"
    path.write_text(path.read_text().replace("5.0", "1.0"))  # same size, new contents
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert load(folder).catalog.get(296).mean_rating == 2.5
    assert parses == [3, 3]


@pytest.mark.parametrize(
    "damage",
    ["truncated array", "garbage meta", "missing array", "wrong dtype", "empty meta"],
)
def test_corrupt_cache_is_rebuilt(folder: Path, parses: list[int], damage: str) -> None:
    good = load(folder)
    cache = folder / CACHE_DIR
    if damage == "truncated array":
        data = (cache / "csr_data.npy").read_bytes()
        (cache / "csr_data.npy").write_bytes(data[: len(data) - 4])
    elif damage == "garbage meta":
        (cache / META_FILE).write_bytes(b"\x00{not json")
    elif damage == "missing array":
        (cache / "userId.npy").unlink()
    elif damage == "wrong dtype":
        np.save(cache / "rating.npy", np.zeros(3, dtype=np.int8))
    else:
        (cache / META_FILE).write_text("[]")
    rebuilt = load(folder)
    assert parses == [3, 3]
    assert_same(good, rebuilt)
    assert load(folder) is not None and parses == [3, 3]  # and the new cache is used


def test_unwritable_folder_goes_without(
    folder: Path, parses: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: object, **kwargs: object) -> str:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(cache_module.tempfile, "mkdtemp", read_only)
    assert load(folder).ratings.nnz == 3
    assert load(folder).ratings.nnz == 3
    assert parses == [3, 3]
    assert not (folder / CACHE_DIR).exists()


def test_small_sets_are_not_cached(tmp_path: Path) -> None:
    folder = write_release(tmp_path / "data" / "ml-25m", "ml-25m")
    load(folder)
    assert not (folder / CACHE_DIR).exists()
