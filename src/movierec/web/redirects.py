"""Where a form may send the visitor back to: only paths on this site."""

from __future__ import annotations

from urllib.parse import urlsplit

from movierec.errors import InvalidInput


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site (no scheme, host or ``//``), else ``default``.

    A ``target`` with a control character (CR/LF would split the ``Location`` header)
    is ``InvalidInput``, a 400.
    """
    if target and any(ord(c) < 32 or ord(c) == 127 for c in target):
        raise InvalidInput("next must be a path on this site, without control characters", "next")
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
