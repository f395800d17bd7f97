"""What every bench script shares: where MovieLens comes from by default."""

from __future__ import annotations

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
