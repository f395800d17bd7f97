"""Error pages and JSON errors: 400 (bad input, expired form), 404, 405, 413, 415, 429, 500, 503.

Paths under ``/api/`` get ``{"error": ..., "field": ...}``; everything else a page that
says what happened in the visitor's words. Internal details (exception text, file paths,
model names) go to the log only, never into a page or a JSON error.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, g, render_template, request
from flask.globals import request_ctx
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    RequestEntityTooLarge,
    SecurityError,
    UnsupportedMediaType,
)

from movierec.errors import InvalidInput, MovierecError, quoted, size_text
from movierec.store.outage import is_missing_table
from movierec.web.limits import RETRY_AFTER_KEY, TooManyNewVisitors
from movierec.web.services import get_services

log = logging.getLogger(__name__)
bp = Blueprint("errors", __name__)

TITLES = {
    400: "That did not work",
    404: "Page not found",
    405: "That does not work here",
    413: "That was too large",
    415: "That request was not JSON",
    429: "Too many requests",
    500: "Something went wrong on our side",
    503: "Recommendations are not available right now",
}
#: what a page (not the API) says for these codes, in the visitor's words
PAGE_MESSAGES = {
    405: "This address cannot be used that way. Go back to the start and try again from there.",
    429: "You sent many requests in a short time. Please wait a minute, then try again.",
}
#: a model or data problem (details in the log)
NOT_AVAILABLE = (
    "We cannot make recommendations at the moment. Your ratings are safe; "
    "please try again in a minute."
)


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _answer(code: int, message: str, field: str | None = None) -> tuple[Any, int]:
    if _wants_json():
        return {"error": message, "field": field}, code
    title = TITLES.get(code, "Error")
    message = PAGE_MESSAGES.get(code, message)
    if request_ctx.url_adapter is None:  # Flask refused the Host header: no url_for
        return _bare_page(title, message), code
    return render_template("errors/error.html", code=code, title=title, message=message), code


def _bare_page(title: str, message: str) -> str:
    """A page without links, for requests whose URLs Flask cannot build (a Host header
    it refused: untrusted, or malformed such as a 64-character label or ``x..y``), where
    the site's templates (which link with ``url_for``) cannot render."""
    return f"<!doctype html><title>{escape(title)}</title><p>{escape(message)}</p>"


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


@bp.app_errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> tuple[Any, int]:
    limit = request.max_content_length  # the app's cap, or the import's on its endpoints
    if not _wants_json():
        return _answer(
            413, f"What you sent was too large: this site takes at most {size_text(limit or 0)}."
        )
    return _answer(413, f"request body too large: at most {size_text(limit or 0)}", "body")


@bp.app_errorhandler(UnsupportedMediaType)
def not_json(exc: UnsupportedMediaType) -> tuple[Any, int]:
    return _answer(415, exc.description or exc.name, "Content-Type")


@bp.app_errorhandler(RateLimitExceeded)
def too_many(exc: RateLimitExceeded) -> tuple[Any, int]:
    """429; Flask-Limiter adds ``Retry-After`` (seconds) in its after-request hook."""
    return _answer(
        429,
        f"too many requests from your address: at most {exc.description}; "
        "wait as many seconds as Retry-After says and try again",
    )


@bp.app_errorhandler(TooManyNewVisitors)
def too_many_new_visitors(exc: TooManyNewVisitors) -> tuple[Any, int, dict[str, str]]:
    """429 with ``Retry-After``: this address started its new visitors for the hour."""
    minutes = max(1, round(exc.retry_after / 60))
    g.setdefault(RETRY_AFTER_KEY, exc.retry_after)  # kept through the rate limiter's hook
    headers = {"Retry-After": str(exc.retry_after)}
    if _wants_json():
        message = (
            f"too many new visitors from your address: at most {exc.per_hour} an hour; "
            "wait as many seconds as Retry-After says and try again"
        )
        return {"error": message, "field": None}, 429, headers
    message = (
        f"This site keeps at most {exc.per_hour} new visitors an hour from one network "
        "address, and yours has reached that, so nothing was saved. If you rated movies "
        "here before, use the same browser; otherwise please try again in about "
        f"{minutes} minute{'s' if minutes != 1 else ''}."
    )
    page = render_template("errors/error.html", code=429, title=TITLES[429], message=message)
    return page, 429, headers


@bp.app_errorhandler(MovierecError)
def movierec_error(exc: MovierecError) -> tuple[Any, int]:
    """503: a model or data file could not be used; the detail is logged, not shown."""
    log.error("movierec error on %s: %s", request.path, exc)
    return _answer(503, NOT_AVAILABLE)


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
            f"no such endpoint: {request.method} {quoted(request.path)}"
            if _wants_json()
            else "There is no page at this address. It may have moved, or the link is mistyped."
        )
    body, status = _answer(code, message)
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return body, status, headers


#: seconds a client is asked to wait while the database is unavailable
RETRY_AFTER = 5
UNAVAILABLE = "The service is briefly unavailable. Please try again in a few seconds."
#: the database's tables are gone (dropped while serving): no Retry-After, it is not brief
TABLES_MISSING = (
    "The service is unavailable: its database has lost its tables. The site's operator "
    "has to set it up again (movierec db upgrade)."
)


@bp.app_errorhandler(sa_exc.DBAPIError)
@bp.app_errorhandler(sa_exc.TimeoutError)
def database_unavailable(exc: Exception) -> tuple[Any, int, dict[str, str]]:
    """503 with ``Retry-After`` while the database is down, locked or unreachable.

    The store's outage log writes one line per outage (not a traceback per request);
    the request's session is rolled back so the next request starts clean.
    """
    store = get_services().store
    store.outage.failed(exc)
    try:
        store.scoped.rollback()
    except Exception:  # the connection is gone; the pool replaces it
        log.debug("rollback after a database error failed", exc_info=True)
    if is_missing_table(exc):  # not brief: the operator must run `movierec db upgrade`
        if _wants_json():
            return {"error": TABLES_MISSING, "field": None}, 503, {}
        page = render_template(
            "errors/error.html", code=503, title="Not available", message=TABLES_MISSING
        )
        return page, 503, {}
    headers = {"Retry-After": str(RETRY_AFTER)}
    g.setdefault(RETRY_AFTER_KEY, RETRY_AFTER)  # kept through the rate limiter's hook
    if _wants_json():
        return {"error": UNAVAILABLE, "field": None}, 503, headers
    page = render_template(
        "errors/error.html", code=503, title="Briefly unavailable", message=UNAVAILABLE
    )
    return page, 503, headers


@bp.app_errorhandler(SecurityError)
def untrusted_host(exc: SecurityError) -> tuple[Any, int]:
    """400 for a Host header not in ``MOVIEREC_TRUSTED_HOSTS``, without echoing it
    (a bare page: see :func:`_bare_page`)."""
    message = "This site does not answer to that host name."
    if _wants_json():
        return {"error": message, "field": "Host"}, 400
    return _bare_page("Bad request", message), 400
