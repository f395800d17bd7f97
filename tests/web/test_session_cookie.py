"""The session cookie and CSRF token are signed without zlib (movierec.web.session_cookie),
and old compressed ones are still read."""

from __future__ import annotations

import base64
import re

import flask_wtf.csrf
import pytest
from itsdangerous import URLSafeTimedSerializer

from movierec.web.session_cookie import UncompressedSerializer


def _payload(cookie: str) -> bytes:
    """The decoded payload part of a signed value (before its timestamp and signature)."""
    body = cookie.split(".")[0] or cookie.split(".")[1]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def test_the_session_and_csrf_token_are_signed_uncompressed(client):
    page = client.get("/")
    cookie = re.search(r"movierec=([^;]+)", page.headers["Set-Cookie"]).group(1)
    assert not cookie.startswith(".")  # itsdangerous marks a compressed payload with "."
    assert b'"csrf_token"' in _payload(cookie)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    assert not token.startswith(".") and _payload(token).startswith(b'"')
    assert flask_wtf.csrf.URLSafeTimedSerializer is UncompressedSerializer


@pytest.mark.parametrize("salt", ["cookie-session", "wtf-csrf-token"])
def test_compressed_payloads_signed_before_are_still_read(salt):
    value = {"visitor": "v" * 24, "shown": "a" * 300}
    old = URLSafeTimedSerializer("key", salt=salt).dumps(value)
    assert old.startswith(".")  # compressed by itsdangerous' own class
    assert UncompressedSerializer("key", salt=salt).loads(old) == value
    new = UncompressedSerializer("key", salt=salt).dumps(value)
    assert not new.startswith(".") and len(new) > len(old)
    assert URLSafeTimedSerializer("key", salt=salt).loads(new) == value
