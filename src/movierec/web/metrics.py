"""Prometheus metrics (opt-in: ``/metrics`` answers only when ``MOVIEREC_METRICS_TOKEN`` is set).

What is counted, with ``prometheus_client``:

- ``movierec_requests_total{method,route,status}`` and
  ``movierec_request_seconds{method,route}`` (histogram): every request, by its route
  template (``/movies/<int:movie_id>``, never the raw path, so a scan of made-up URLs
  adds no series; unmatched paths are ``<unmatched>``);
- ``movierec_recommend_seconds{model}`` (histogram): the model's ranking alone;
- ``movierec_model_info{model,dataset,file_mtime,file_bytes}`` = 1: which model files
  this server loaded (the file's modification time and size tell a new file);
- ``movierec_db_errors_total{cause}``: failed database uses (``unavailable`` or
  ``missing tables``), from the store's outage log;
- ``movierec_rate_limited_total``: requests refused with 429.

``serve`` forks worker processes, each with its own counters. So ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory of its own before anything imports
``prometheus_client`` (it picks its storage at import), every process writes its values
there, and ``/metrics`` (in whichever worker answers) adds them up with
``prometheus_client``'s ``MultiProcessCollector``; the directory is removed when
``serve`` stops. Without that variable (tests, ``flask run``) the values live in this
process's default registry.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: seconds; from a cached page (1 ms) to a slow form submission (2.5 s)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RECOMMEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

REQUESTS = Counter(
    "movierec_requests", "Requests answered, by route template", ("method", "route", "status")
)
REQUEST_SECONDS = Histogram(
    "movierec_request_seconds",
    "Time to answer a request, by route template",
    ("method", "route"),
    buckets=REQUEST_BUCKETS,
)
RECOMMEND_SECONDS = Histogram(
    "movierec_recommend_seconds",
    "Time the model took to rank one visitor's picks",
    ("model",),
    buckets=RECOMMEND_BUCKETS,
)
MODEL_INFO = Gauge(
    "movierec_model_info",
    "Model files loaded by this server (value 1)",
    ("model", "dataset", "file_mtime", "file_bytes"),
    multiprocess_mode="max",
)
DB_ERRORS = Counter("movierec_db_errors", "Failed database uses, by cause", ("cause",))
RATE_LIMITED = Counter("movierec_rate_limited", "Requests refused by the rate limit (429)")


def note_models(settings: Any, names: list[str]) -> None:
    """Set ``movierec_model_info`` for the loaded models ``names``."""
    for name in names:
        path = settings.models_dir / f"{settings.dataset}-{name}.npz"
        try:
            stat = path.stat()
        except OSError:
            mtime, size = "unknown", "unknown"
        else:
            mtime = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds")
            size = str(stat.st_size)
        MODEL_INFO.labels(name, settings.dataset, mtime, size).set(1)


def exposition() -> tuple[bytes, str]:
    """The text exposition of every process's metrics, and its content type."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """Forget a dead worker's live gauges (its counters are kept, as Prometheus wants)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
