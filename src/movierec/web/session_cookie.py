"""The signed session cookie and the CSRF token, without zlib on every write.

itsdangerous' URL-safe serializers try ``zlib.compress`` on every payload they sign and
keep the result only when it is shorter. Each try builds a fresh deflate state, about
85 us on this project's machine, and a form submission signs three payloads (the session
after the POST, the session after the picks page, the picks page's CSRF token): about
5 % of a submission's server CPU, for cookies of a few hundred bytes whose largest part
(the onboarding's shown movies, already packed by ``Onboarding.encode_shown``) does not
compress. So payloads are signed uncompressed. Reading still accepts compressed ones
(``load_payload`` is untouched), so cookies and tokens signed before stay valid.

Flask builds the session's serializer in ``get_signing_serializer`` and Flask-WTF builds
the CSRF token's in ``generate_csrf``/``validate_csrf`` from its module's
``URLSafeTimedSerializer`` name; neither takes a serializer class as an option, hence
the subclass below and :func:`use_uncompressed_csrf` (tests/web/test_session_cookie.py
fails if either library stops using them).
"""

from __future__ import annotations

from typing import Any

import flask_wtf.csrf
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer


class UncompressedSerializer(URLSafeTimedSerializer):
    """``URLSafeTimedSerializer`` whose ``dumps`` never tries zlib (``loads`` still
    reads compressed payloads)."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, signed with :class:`UncompressedSerializer`."""

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        # Flask's own construction (current key last, fallbacks before), with our class
        if not app.secret_key:
            return None
        keys: list[str | bytes] = [*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key]
        return UncompressedSerializer(
            keys,  # type: ignore[arg-type]  # itsdangerous takes a list of keys, typed narrower
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )


def use_uncompressed_csrf() -> None:
    """Have Flask-WTF sign CSRF tokens with :class:`UncompressedSerializer`."""
    flask_wtf.csrf.URLSafeTimedSerializer = UncompressedSerializer  # see the module doc
