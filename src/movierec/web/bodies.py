"""Request bodies: a body past the cap is refused with 413, never cut short.

With a ``Content-Length`` werkzeug refuses a body over ``max_content_length`` before
reading it. A chunked body has no length: when the server says it ends the stream
(``wsgi.input_terminated``: waitress does, and tells the length too; werkzeug's
development server does not), werkzeug wraps it in a ``LimitedStream`` that stops at
``max_content_length``, so reading "all of it" quietly gives the first
``max_content_length`` bytes, and the form parser and ``get_data`` take them for the
whole body. The stream raises ``RequestEntityTooLarge`` only when read again once its
cap is reached (``LimitedStream.on_exhausted``). :class:`CappedRequest` makes every
whole-body read end with that call, so a chunked body that reaches the cap gets the
same 413 as a declared one, after at most ``max_content_length`` bytes were read.

A chunked body of exactly the cap counts as too large: telling it from a longer one
would take reading past the cap.
"""

from __future__ import annotations

from typing import IO, Any

from flask import Request
from werkzeug.formparser import FormDataParser
from werkzeug.wsgi import LimitedStream


def refuse_if_cut(stream: IO[bytes]) -> None:
    """413 if ``stream`` stopped at the request's ``max_content_length`` (not at the end
    of the body): for a declared length, or no cap, nothing happens."""
    if isinstance(stream, LimitedStream) and stream.is_exhausted:
        stream.on_exhausted()  # raises RequestEntityTooLarge when the limit is the cap


class CappedFormDataParser(FormDataParser):
    """werkzeug's form parser, refusing a form that was cut at the cap."""

    def parse(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> Any:
        parsed = super().parse(stream, mimetype, content_length, options)
        refuse_if_cut(stream)
        return parsed


class CappedRequest(Request):
    """Flask's request with :func:`refuse_if_cut` after every whole-body read
    (``form``, ``files``, ``get_data``, ``get_json``)."""

    form_data_parser_class = CappedFormDataParser

    def get_data(  # type: ignore[override]  # one signature for Werkzeug's overloads
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> bytes | str:
        data: bytes | str = (  # Werkzeug's overloads take a literal as_text
            super().get_data(cache, True, parse_form_data)
            if as_text
            else super().get_data(cache, False, parse_form_data)
        )
        refuse_if_cut(self.stream)
        return data
