"""Logging for ``movierec serve``: plain text or one JSON object a line, with request ids.

:func:`configure` (called once by ``serve``) sends every log record to stderr, as
``MOVIEREC_LOG_FORMAT`` says: ``text`` (``2026-12-07 05:01:02 WARNING movierec.store:
database unavailable ...``) or ``json`` (``{"time": ..., "level": ..., "logger": ...,
"message": ..., "request_id": ...}``, plus the access log's fields). Records made while
a request is handled carry its id (``request_id``, see :mod:`movierec.web.observe`).
movierec's own loggers log at INFO (the access log, retention, outages); others, such as
waitress's, at WARNING.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

#: fields of the access log's records (``extra=``) that the JSON lines carry as they are
ACCESS_FIELDS = ("remote_addr", "method", "path", "route", "status", "bytes", "ms", "user_agent")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (``"-"`` outside a request) to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def current_request_id() -> str:
    """The id of the request being handled in this thread, else ``"-"``."""
    try:
        from flask import g, has_request_context

        if has_request_context():
            request_id: str = g.get("request_id", "-")
            return request_id
    except ImportError:  # pragma: no cover - flask is a dependency
        pass
    return "-"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request id,
    the access log's fields where present, and the traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def configure(log_format: str = "text", stream: Any = None) -> logging.Handler:
    """Replace the root logger's handlers with one writing ``log_format`` to ``stream``
    (default stderr); returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("movierec").setLevel(logging.INFO)
    return handler
