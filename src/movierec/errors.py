"""The movierec error family: messages a user can act on.

The CLI turns these into a one-line message and exit code 2; the web layer into a
400 response with ``{"error": ..., "field": ...}``.
"""

from __future__ import annotations

import reprlib

#: most characters of a caller's bad value that an error message quotes
QUOTE_LIMIT = 100

_short = reprlib.Repr()
_short.maxstring = _short.maxlong = _short.maxother = QUOTE_LIMIT


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to at most ``limit`` characters, for error messages.

    Built on :mod:`reprlib`, so a 50 MB string is never copied into a message whole.
    """
    text = _short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: bytes in the "MB" of every size a message states (1 MB = 1024 x 1024 bytes)
MB = 1024 * 1024


def size_text(n_bytes: int) -> str:
    """``n_bytes`` in MB for messages, one unit everywhere: ``"5 MB"``, ``"5.1 MB"``
    (one decimal, dropped when whole; sizes under 0.1 MB in KB)."""
    if n_bytes < MB // 10:
        return f"{max(n_bytes, 0) / 1024:.0f} KB"
    text = f"{n_bytes / MB:.1f}"
    return f"{text.removesuffix('.0')} MB"


class MovierecError(Exception):
    """Base of every error movierec raises on purpose."""


class DataError(MovierecError):
    """A data file is missing, corrupt or does not match what we expect.

    The message names the file (and the line, where one is at fault).
    """


class InvalidInput(MovierecError, ValueError):
    """A caller passed a bad value; ``field`` names the parameter at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RatingsFull(InvalidInput):
    """A write would take a visitor past the ratings one visitor may keep (``cap``)."""

    def __init__(self, cap: int, field: str | None = None) -> None:
        super().__init__(
            f"a visitor may keep at most {cap:,} ratings; remove some on your ratings page "
            "to rate more",
            field=field,
        )
        self.cap = cap


class ModelError(MovierecError):
    """A model cannot be used as asked (not fitted, unreadable file, unknown name)."""


class StoreError(MovierecError):
    """The database cannot be reached or used.

    The message names the database URL (without its password).
    """
