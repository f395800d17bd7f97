"""For whoever runs the site: ``/healthz``, ``/readyz`` and (opt-in) ``/metrics``.

- ``GET /healthz``: the process answers: 200 ``{"status": "ok"}``, nothing checked.
- ``GET /readyz``: ready for visitors: the default model is loaded, the database answers
  and is at this code's schema revision with every table present. 200
  ``{"status": "ready", "checks": {...}}``, else 503 ``{"status": "not ready",
  "reasons": [...], "checks": {...}}`` (reasons an operator can act on; no URL or driver
  text, which go to the log). One short database connection, one or two queries.
- ``GET /metrics``: Prometheus text (:mod:`movierec.web.metrics`) for a request with
  ``Authorization: Bearer <MOVIEREC_METRICS_TOKEN>``; 401 with a wrong or missing token,
  404 when no token is configured.

None of them is rate limited (a prober polls often, from one address), reads or sets
the visitor cookie, or touches the database beyond ``/readyz``'s check.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, abort, current_app, request

from movierec.store.migrate import UPGRADE_HINT, read_status
from movierec.store.outage import is_unavailable
from movierec.web import metrics
from movierec.web.schemas import Health, Operation, Readiness, documented
from movierec.web.services import get_services

bp = Blueprint("health", __name__)
NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/healthz")
@documented(Operation("The server process answers (nothing else checked)", Health))
def healthz() -> tuple[dict[str, str], int, dict[str, str]]:
    return {"status": "ok"}, 200, NO_STORE


@bp.get("/readyz")
@documented(
    Operation(
        "Ready for visitors: model loaded, database reachable and migrated",
        Readiness,
        responses=((503, "not ready; `reasons` says why", Readiness),),
    )
)
def readyz() -> tuple[dict[str, Any], int, dict[str, str]]:
    services = get_services()
    checks: dict[str, str] = {}
    reasons: list[str] = []
    model = services.settings.model
    if model in services.recommenders.loaded:
        checks["model"] = "ok"
    else:
        checks["model"] = "not loaded"
        reasons.append(f"model {model!r} is not loaded yet")
    store = services.store
    try:
        with store.engine.connect() as connection:
            found = read_status(connection)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        store.outage.failed(exc, request=False)  # the log says why, once per outage
        checks["database"] = "unavailable"
        reasons.append("the database cannot be reached or used (see the server's log)")
    else:
        checks["database"] = "ok"
        state = found.state
        if state == "current" and found.missing:
            checks["migrations"] = "tables missing"
            reasons.append(
                f"the database has lost tables ({', '.join(found.missing)}); {UPGRADE_HINT}"
            )
        elif state == "current":
            checks["migrations"] = "ok"
        elif state == "empty":
            checks["migrations"] = "tables missing"
            reasons.append(f"the database has no tables; {UPGRADE_HINT}")
        else:
            checks["migrations"] = state
            hint = f"; {UPGRADE_HINT}" if state == "behind" else ""
            reasons.append(f"the database is {found.describe()}{hint}")
    if reasons:
        return {"status": "not ready", "reasons": reasons, "checks": checks}, 503, NO_STORE
    return {"status": "ready", "checks": checks}, 200, NO_STORE


@bp.get("/metrics")
@documented(
    Operation(
        "Prometheus metrics, with Authorization: Bearer MOVIEREC_METRICS_TOKEN",
        None,
        media="text/plain",
        responses=(
            (401, "missing or wrong token", None),
            (404, "metrics are off (no MOVIEREC_METRICS_TOKEN)", None),
        ),
    )
)
def prometheus() -> Response:
    token = current_app.config["SETTINGS"].metrics_token
    if not token:
        abort(404)
    sent = request.headers.get("Authorization", "")
    scheme, _, value = sent.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode(), token.encode()
    ):
        return Response(
            "401: send Authorization: Bearer <MOVIEREC_METRICS_TOKEN>\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain"},
        )
    body, content_type = metrics.exposition()
    return Response(body, 200, {"Content-Type": content_type, **NO_STORE})
