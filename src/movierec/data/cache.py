"""A binary copy of parsed ratings beside the data set, so only the first load parses CSV.

``<data set>/.movierec-cache/`` holds one ``.npy`` file per array and ``meta.json``
naming, for each source file, its size and modification time (ns) when the copy was
made, and each array's dtype and shape. The copy is used only if every source still
matches and every array reads back with the recorded dtype and shape (memory-mapped,
copy-on-write, so nothing is read until used); otherwise it is rebuilt. A folder we
cannot write to (a read-only mirror) just goes without.

Plain ``.npy`` files because numpy memory-maps them directly; Arrow IPC would need a
conversion back to numpy for scipy anyway.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from movierec.data.arrays import AnyArray

CACHE_DIR = ".movierec-cache"
META_FILE = "meta.json"
CACHE_VERSION = 1
# ratings files smaller than this (bytes) are parsed every time (well under 0.2 s)
CACHE_FROM_BYTES = 8 * 1024 * 1024

#: named arrays of any dtype (a ratings file's columns, CSR parts, statistics)
Arrays = dict[str, AnyArray]


def cached_arrays(folder: Path, sources: list[Path], build: Callable[[], Arrays]) -> Arrays:
    """The arrays ``build()`` makes from ``sources``, from the cache in ``folder`` if fresh.

    Only the first source's size decides whether caching is worth it. A stale, partial
    or corrupt cache is rebuilt (never an error); failing to write one is ignored.
    """
    try:
        big_enough = sources[0].stat().st_size >= CACHE_FROM_BYTES
    except OSError:
        big_enough = False  # build() will name the missing file
    if not big_enough:
        return build()
    cache = folder / CACHE_DIR
    stamps = _stamps(sources)
    arrays = _read(cache, stamps) if stamps is not None else None
    if arrays is not None:
        return arrays
    arrays = build()
    if stamps is not None and stamps == _stamps(sources):  # unchanged while we parsed
        _write(cache, stamps, arrays)
    return arrays


def _stamps(sources: list[Path]) -> dict[str, list[int]] | None:
    """``file name -> [size, mtime_ns]``; ``None`` if a source cannot be stat'ed."""
    try:
        return {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sources}
    except OSError:
        return None


def _read(cache: Path, stamps: dict[str, list[int]]) -> Arrays | None:
    """The cached arrays if the cache matches ``stamps`` and reads back whole, else ``None``."""
    try:
        meta = json.loads((cache / META_FILE).read_text(encoding="utf-8"))
        if meta.get("version") != CACHE_VERSION or meta.get("sources") != stamps:
            return None
        arrays = {}
        for name, (dtype, shape) in meta["arrays"].items():
            array = np.load(cache / f"{name}.npy", mmap_mode="c", allow_pickle=False)
            if str(array.dtype) != dtype or list(array.shape) != shape:
                return None
            arrays[name] = array
        return arrays
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError):
        return None


def _write(cache: Path, stamps: dict[str, list[int]], arrays: Arrays) -> None:
    """Write a fresh cache beside the old one, then swap it in; give up quietly on error."""
    staging: Path | None = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{CACHE_DIR}-", dir=cache.parent))
        staging.chmod(0o755)  # readable like the data set it sits in (mkdtemp makes 0700)
        for name, array in arrays.items():
            np.save(staging / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        meta = {
            "version": CACHE_VERSION,
            "sources": stamps,
            "arrays": {n: [str(a.dtype), list(a.shape)] for n, a in arrays.items()},
        }
        (staging / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        old = cache.parent / f"{staging.name}-old"
        if cache.exists():
            os.rename(cache, old)
        os.rename(staging, cache)
        staging = None
        shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass  # read-only folder, disk full, a concurrent writer: parse again next time
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
