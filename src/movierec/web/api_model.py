"""``GET /api/v1/model``: the model a server is using, added to the ``api`` blueprint
(``/api/v1``, rate limited, errors as ``{"error", "field"}``).

The answer names the model in use by this process (``?model=svd`` for another served
one): its data set, its version (content hash plus when it was trained, see
:class:`movierec.models.files.FileVersion`), how many data-set users and visitors it was
trained on, and the last training of its file, good or failed (from the record
:func:`movierec.training.train_model` leaves beside the file). After a retraining the
version changes here, without a restart, once the process has swapped the new file in
(within ``MOVIEREC_MODEL_CHECK_EVERY`` seconds plus its load; with 0, once it is sent SIGHUP).

Importing this module registers the route; :func:`movierec.web.create_app` does so before
it registers the blueprint.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

from flask import request
from pydantic import Field

from movierec.inputs import validated
from movierec.training import read_training_record
from movierec.web.api import bp
from movierec.web.schemas import Operation, Strict, documented, model_query
from movierec.web.services import get_services

__all__ = ["model_in_use"]

log = logging.getLogger(__name__)

#: figures of a training record the answer repeats (the record may hold more)
TRAINING_FIGURES = ("seconds", "ratings", "dataset_users", "visitors", "rmse", "mean_rmse")


class TrainedOn(Strict):
    ratings: int | None = Field(None, ge=0, description="ratings it was fitted on")
    dataset_users: int | None = Field(None, ge=0, description="users from the data set")
    visitors: int | None = Field(None, ge=0, description="visitors of this site")


class LastTraining(Strict):
    outcome: Literal["saved", "failed"] = Field(
        description="saved: its file replaced the old one; failed: the old one stayed"
    )
    started_at: str | None = Field(None, description="UTC, ISO 8601")
    finished_at: str | None = Field(None, description="UTC, ISO 8601")
    seconds: float | None = Field(None, ge=0, description="how long it ran")
    version: str | None = Field(None, description="the version it saved")
    reason: str | None = Field(None, description="why it failed")
    ratings: int | None = Field(None, ge=0)
    dataset_users: int | None = Field(None, ge=0)
    visitors: int | None = Field(None, ge=0)
    rmse: float | None = Field(None, ge=0, description="stars, on a sample of its ratings")
    mean_rmse: float | None = Field(None, ge=0, description="the mean rating's, same sample")


class ModelInfo(Strict):
    name: str = Field(description="the model's name, as `model` in recommendation requests")
    dataset: str
    version: str | None = Field(
        description="<trained at, UTC>-<content hash prefix>; changes with every new file"
    )
    content_hash: str | None = Field(description="sha256 of the file's arrays and parameters")
    trained_at: str | None = Field(description="UTC, ISO 8601")
    trained_on: TrainedOn
    last_training: LastTraining | None = Field(
        description="the latest training of this model's file, whether it replaced it or not"
    )
    checks_every_seconds: float = Field(
        description=(
            "how often a server process looks for a newer file of its models "
            "(MOVIEREC_MODEL_CHECK_EVERY; 0: only when the server is sent SIGHUP)"
        )
    )


@bp.get("/model")
@documented(
    Operation(
        "The model in use: name, data set, version, what it was trained on, the last training",
        ModelInfo,
        errors=(400, 429, 503),
        query=lambda r: r.model_query,
    )
)
def model_in_use() -> dict[str, Any]:
    """What this process serves for ``model`` (default: the default model)."""
    services = get_services()
    # the served names only: app_requests would wait for the onboarding index
    query_model = model_query(tuple(services.model_choices))
    query: Any = validated(query_model, request.args.to_dict(), "parameter")
    name = services.model_name(query.model)
    model = services.recommender(name).model
    version, training = model.version, model.training
    return {
        "name": name,
        "dataset": services.settings.dataset,
        "version": version.version if version else None,
        "content_hash": version.content_hash if version else None,
        "trained_at": version.trained_at if version else None,
        "trained_on": {
            key: _figure(training.get(key), whole=True)
            for key in ("ratings", "dataset_users", "visitors")
        },
        "last_training": _last_training(_record(services.recommenders.path(name))),
        "checks_every_seconds": services.settings.model_check_every,
    }


def _record(path: Path) -> dict[str, Any] | None:
    """The training record beside the model file at ``path``, or None (missing, half
    written, not JSON, or nested too deeply for the parser: logged)."""
    try:
        return read_training_record(path)
    except RecursionError:  # json.loads of ``[[[...`` thousands deep
        log.warning("training record of %s nested too deeply to read; left out", path)
        return None


def _figure(value: object, whole: bool = False) -> int | float | None:
    """``value`` if it is a number >= 0: an int if ``whole``, else a finite float;
    anything else (a bool, text, ``NaN``, an int too big for a float) is None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if whole:
        return value if isinstance(value, int) and value >= 0 else None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _last_training(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The documented part of a training record (None without a usable one); values of
    another type, negative or not finite (``NaN``, ``Infinity``: not JSON) are left out."""
    if record is None or record.get("outcome") not in ("saved", "failed"):
        return None
    out: dict[str, Any] = {"outcome": record["outcome"]}
    for key in ("started_at", "finished_at", "version", "reason"):
        if isinstance(record.get(key), str):
            out[key] = record[key]
    for key in TRAINING_FIGURES:
        value = _figure(record.get(key), whole=key in ("ratings", "dataset_users", "visitors"))
        if value is not None:
            out[key] = value
    return out
