"""What bench scripts share: where MovieLens comes from by default, how seeds are given."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

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
