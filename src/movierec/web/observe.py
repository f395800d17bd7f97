"""Per request: an id, one access-log line, and the request metrics.

``init_observe(app, settings)`` adds a first before-request hook and a last after-request
hook. The id is the ``X-Request-Id`` a proxy sent when it looks like an id (1-128 of
``A-Z a-z 0-9 . _ : -``), else 32 random hex digits; it goes back in ``X-Request-Id`` and
into every log record made during the request (:mod:`movierec.logs`).

The access log (logger ``movierec.access``, INFO; ``MOVIEREC_ACCESS_LOG=0`` turns it off)
is one line per request::

    127.0.0.1 "GET /movies/1" 200 5120 B 12.3 ms route=/movies/<int:movie_id> id=3f2a...

(in JSON: ``remote_addr``, ``method``, ``path``, ``route``, ``status``, ``bytes``, ``ms``,
``user_agent``). The path is logged without its query string, which may carry what a
visitor typed into the search box.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from flask import Flask, Response, g, request

from movierec.config import Settings
from movierec.web import metrics

access_log = logging.getLogger("movierec.access")

REQUEST_ID_HEADER = "X-Request-Id"
#: an incoming id is kept only if it looks like one (no spaces, quotes or control bytes)
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNMATCHED = "<unmatched>"
#: (method, route template, status) -> its counter and histogram children; bounded by
#: the app's routes x methods x statuses, as the route is a template
_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # prometheus_client: untyped


def init_observe(app: Flask, settings: Settings) -> None:
    """Register the hooks (the before-request one runs before every other)."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    # after_request hooks run last-registered first: registered before the others, this
    # one runs after them all and sees the final status and headers
    app.after_request_funcs.setdefault(None, []).insert(0, _finish)
    app.config.setdefault("MOVIEREC_ACCESS_LOG", settings.access_log)


def _start() -> None:
    g.request_started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if SANE_ID.fullmatch(incoming) else os.urandom(16).hex()


def _finish(response: Response) -> Response:
    started = g.get("request_started")
    if started is None:  # refused before the first hook ran (e.g. a Host Flask rejects)
        _start()
        started = g.request_started
    seconds = time.perf_counter() - started
    response.headers[REQUEST_ID_HEADER] = g.request_id
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    status = response.status_code
    counted = _series.get((request.method, route, status))
    if counted is None:  # prometheus_client's labels() costs ~10 us a call: kept per series
        counted = _series[request.method, route, status] = (
            metrics.REQUESTS.labels(request.method, route, str(status)),
            metrics.REQUEST_SECONDS.labels(request.method, route),
        )
    counted[0].inc()
    counted[1].observe(seconds)
    if status == 429:
        metrics.RATE_LIMITED.inc()
    from flask import current_app

    if current_app.config.get("MOVIEREC_ACCESS_LOG", True):
        size = response.calculate_content_length()
        access_log.info(
            '%s "%s %s" %d %s B %.1f ms route=%s id=%s',
            request.remote_addr,
            request.method,
            request.path[:200],
            status,
            "-" if size is None else size,
            seconds * 1000,
            route,
            g.request_id,
            extra={
                "remote_addr": request.remote_addr,
                "method": request.method,
                "path": request.path[:200],
                "route": route,
                "status": status,
                "bytes": size,
                "ms": round(seconds * 1000, 1),
                "user_agent": request.user_agent.string[:200],
            },
        )
    return response
