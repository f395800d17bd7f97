"""Optional parts installed as extras: which import needs which extra, and the one-line
message naming it when it is missing.

The default install (``pip install movierec``) gives the embedded app and the CLI.
``[redis]`` shares rate limits between workers and hosts, ``[plots]`` draws the
evaluation report's PNGs, ``[spark]`` trains with Spark MLlib (see spark_engine.py,
which also needs Java).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from movierec.errors import MovierecError


class MissingExtra(MovierecError):
    """An optional dependency is not installed; the message names the extra."""


def install_hint(extra: str) -> str:
    """``pip install 'movierec[plots]'`` for ``extra="plots"``."""
    return f"pip install 'movierec[{extra}]' (or pip install -e '.[{extra}]' in a checkout)"


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra`: ``"<purpose> needs the [extra]
    extra: pip install ..."`` (one line)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{purpose} needs the [{extra}] extra: {install_hint(extra)}") from None
