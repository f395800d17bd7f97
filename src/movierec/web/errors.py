"""Error pages and JSON errors: 400 (bad input, expired form), 404, 405, 500, 503.

Paths under ``/api/`` get ``{"error": ..., "field": ...}``; everything else a page.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from movierec.errors import InvalidInput, MovierecError

log = logging.getLogger(__name__)
bp = Blueprint("errors", __name__)

TITLES = {
    400: "That request did not work",
    404: "Page not found",
    405: "Not allowed here",
    500: "Something went wrong on our side",
    503: "Recommendations are not ready",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _answer(code: int, message: str, field: str | None = None) -> tuple[Any, int]:
    if _wants_json():
        return {"error": message, "field": field}, code
    title = TITLES.get(code, "Error")
    return render_template("errors/error.html", code=code, title=title, message=message), code


@bp.app_errorhandler(InvalidInput)
def invalid_input(exc: InvalidInput) -> tuple[Any, int]:
    return _answer(400, str(exc), exc.field)


@bp.app_errorhandler(CSRFError)
def csrf_error(exc: CSRFError) -> tuple[Any, int]:
    return _answer(
        400,
        "This form has expired or did not come from this site. "
        "Go back, reload the page and submit it again.",
        "csrf_token",
    )


@bp.app_errorhandler(MovierecError)
def movierec_error(exc: MovierecError) -> tuple[Any, int]:
    log.error("movierec error on %s: %s", request.path, exc)
    return _answer(503, f"{exc}. Please try again in a moment.")


@bp.app_errorhandler(InternalServerError)
def internal_error(exc: InternalServerError) -> tuple[Any, int]:
    return _answer(
        500,
        "An unexpected error stopped this page. It has been logged; "
        "please try again, or start over.",
    )


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[Any, int, dict[str, str]]:
    code = exc.code or 500
    message = exc.description or exc.name
    if code == 404:
        message = (
            f"no such endpoint: {request.method} {request.path}"
            if _wants_json()
            else "There is no page at this address. It may have moved, or the link is mistyped."
        )
    body, status = _answer(code, message)
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return body, status, headers
