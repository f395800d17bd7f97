"""What bench scripts share: where MovieLens comes from by default, how seeds are given,
and the toolkit every script times with: a stopwatch (wall and CPU), repeated timed
calls, percentiles, a throw-away ``MOVIEREC_HOME`` and markdown tables.

Scripts run from ``bench/`` (``python bench/latency.py``), so they import this module as
``common``. Times are seconds unless a name says ``_ms``; percentiles are numpy's
(linear between the closest ranks).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def default_source() -> str | None:
    """``$MOVIEREC_DATA_SOURCE``, else ``../shared/data`` beside the repo if it exists."""
    source = os.environ.get("MOVIEREC_DATA_SOURCE")
    if source:
        return source
    fallback = REPO.parent / "shared" / "data"
    return str(fallback) if fallback.is_dir() else None


def seed_range(text: str) -> list[int]:
    """``"0-9"`` or ``"0,3,5"`` -> the seeds; anything else: argparse's error (exit 2)."""
    try:
        if "-" in text:
            first, last = (int(x) for x in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds as 0-9 or 0,3,5") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds as 0-9 or 0,3,5")
    return seeds


# -- timing ---------------------------------------------------------------------------------
@dataclass
class Stopwatch:
    """What :func:`stopwatch` measured: ``wall`` and ``cpu`` seconds (0 until it stops)."""

    wall: float = 0.0
    cpu: float = 0.0

    @property
    def wall_ms(self) -> float:
        return 1000 * self.wall

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu


@contextmanager
def stopwatch(cpu_clock: Callable[[], float] = time.process_time) -> Iterator[Stopwatch]:
    """Time the ``with`` block: wall seconds (``perf_counter``) and CPU seconds of
    ``cpu_clock`` (default the whole process's; ``time.thread_time`` for this thread
    alone), filled in when the block ends."""
    watch = Stopwatch()
    wall, cpu = time.perf_counter(), cpu_clock()
    try:
        yield watch
    finally:
        watch.wall = time.perf_counter() - wall
        watch.cpu = cpu_clock() - cpu


def time_calls(
    call: Callable[[], Any], repeat: int, warmup: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``(wall_ms, cpu_ms)``, each ``(repeat,)`` float64: ``call()`` timed alone
    ``repeat`` times after ``warmup`` untimed calls; CPU is this thread's
    (``thread_time``: what the call cost, not other threads')."""
    for _ in range(warmup):
        call()
    wall = np.empty(repeat, dtype=np.float64)
    cpu = np.empty(repeat, dtype=np.float64)
    for i in range(repeat):
        with stopwatch(time.thread_time) as watch:
            call()
        wall[i], cpu[i] = watch.wall_ms, watch.cpu_ms
    return wall, cpu


def percentiles(
    values: Sequence[float] | np.ndarray, qs: Sequence[float] = (50, 99)
) -> list[float]:
    """The ``qs`` percentiles (0-100) of ``values``, numpy's linear interpolation."""
    if len(values) == 0:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), list(qs))]


# -- a throw-away home ------------------------------------------------------------------------
@contextmanager
def temp_home(prefix: str = "movierec-bench-") -> Iterator[Path]:
    """A temporary directory for ``MOVIEREC_HOME`` (data copies, models, a database),
    removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix=prefix) as home:
        yield Path(home)


# -- tables -----------------------------------------------------------------------------------
def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (what docs/benchmarks.md pastes): floats as given by the caller
    (format them first), numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [bool(cells) and all(_is_number(r[i]) for r in cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if n else ("-" * (w + 2))
            for w, n in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("x%"))
    except ValueError:
        return False
    return True
