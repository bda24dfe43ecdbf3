"""The HTTP API: routes, each with its documentation. Work is delegated to the runtime;
errors to ``service.http.app``."""

from __future__ import annotations

import os
from functools import partial
from typing import Literal

from flask import Blueprint, Response, current_app, request, send_file
from pydantic import BaseModel

from service.errors import NotReady, UnsupportedMediaType
from service.http import deadlines
from service.http.auth import require_token
from service.http.openapi import Reply, operation, parameter, prediction_details
from service.model import payload
from service.model.predictor import ModelMetadata, Prediction, Sha256
from service.protocols import csv_table
from service.serving.runtime import Reader, Readiness, Runtime, Usage

bp = Blueprint("api", __name__)

DOWNLOAD_NAME = "pipeline.pkl"
CSV = "text/csv"
NOT_READY = "The model is not ready (`not_ready`, with the reason), or no worker answered."


class Alive(BaseModel):
    """Alive."""

    status: Literal["ok"]


class Ready(BaseModel):
    """Ready to serve."""

    status: Literal["ready"]
    reason: str
    sha256: Sha256


def runtime() -> Runtime:
    return current_app.extensions["runtime"]


@bp.get("/healthz")
@operation("probes", "Liveness: the process answers, whatever the model's state", {200: Alive})
def health() -> Alive:
    """Liveness: answers while the process can serve HTTP, whatever the model's state."""
    return Alive(status="ok")


@bp.get("/readyz")
@operation(
    "probes",
    "Readiness: the model is loaded and its warm-up prediction passed",
    {200: Ready, 503: NOT_READY},
)
def ready() -> Ready:
    """Readiness: a load balancer sends traffic only after the warm-up prediction succeeded."""
    readiness = require_ready()
    return Ready(status="ready", reason=readiness.reason, sha256=runtime().model.sha256)


def require_ready() -> Readiness:
    """The runtime's readiness; NotReady (503, with the reason) when it is not: every
    protocol's readiness probe answers from this."""
    readiness = runtime().readiness
    if not readiness.ready:
        raise NotReady(readiness.reason)
    return readiness


@bp.get("/usage")
@operation("model", "How to call the API, with a working example for this model", {200: Usage})
def usage() -> Usage:
    return runtime().usage(request.host_url)


@bp.get("/model")
@operation(
    "model",
    "The served model: features, steps, task, classes, sha256, versions",
    {200: ModelMetadata},
)
def model() -> ModelMetadata:
    return runtime().model.metadata(runtime().settings.lock_sha256 or None)


@bp.get("/model/download")
@operation(
    "model",
    "The served artifact's bytes (ETag: its sha256)",
    {
        200: Reply(
            "The artifact.",
            media=("application/octet-stream",),
            headers={
                name: {"schema": {"type": "string"}, "required": True}
                for name in ("ETag", "Content-Disposition")
            },
        ),
        304: "Not modified: the ETag sent is the served artifact's.",
    },
    parameters=(
        parameter(
            "header",
            "If-None-Match",
            {"type": "string"},
            "The sha256 you hold, quoted: 304 if it is still the served one.",
            required=False,
        ),
    ),
    secured=lambda settings: settings.download_requires_token,
)
def download() -> Response:
    """The artifact's bytes; behind nginx, nginx streams the file so no worker is held."""
    settings = runtime().settings
    if settings.download_requires_token:
        require_token(settings)
    model = runtime().model
    if request.if_none_match.contains(model.sha256):
        response = Response(status=304)
    elif settings.download_accel_prefix:
        response = Response(status=200, mimetype="application/octet-stream")
        relative = os.path.relpath(model.path, settings.store_root)
        response.headers["X-Accel-Redirect"] = settings.download_accel_prefix + relative
    else:
        return send_file(
            model.path.resolve(),
            mimetype="application/octet-stream",
            as_attachment=True,
            download_name=DOWNLOAD_NAME,
            etag=model.sha256,
            conditional=True,
            max_age=0,
        )
    response.set_etag(model.sha256)
    response.headers["Content-Disposition"] = f"attachment; filename={DOWNLOAD_NAME}"
    return response


@bp.post("/model/predict")
@operation(
    "model",
    "Predictions for rows sent as columns, as records, or as CSV",
    {
        200: Prediction,
        400: "Not JSON (`malformed_json`), or the wrong shape (`bad_request`): `data` "
        "missing or neither columns nor records, unknown field, bad `output`.",
        413: "More rows than MAX_ROWS (`too_many_rows`) or a body over MAX_BODY_BYTES "
        "(`request_entity_too_large`).",
        415: "The body is neither `application/json` nor `text/csv`.",
        422: "`schema_violation` (missing or unknown column, wrong type, ragged or empty "
        "data, null or unknown category where not allowed), `prediction_failed`, "
        "`output_not_supported`.",
        503: NOT_READY,
    },
    details=prediction_details,
)
def predict() -> Prediction:
    """The hot path: the body goes to the runtime as bytes, the answer comes back unvalidated."""
    body = request.get_data(cache=False)
    output = request.args.get("output")
    if output is not None:
        payload.check_output(output, "?output=")
    if request.mimetype == CSV:
        by_csv = partial(csv_table.parse, output=output or "predict")
        prediction, _, _ = runtime().predict(body, by_csv, "csv", deadlines.of_request())
        return prediction
    if not request.is_json:
        raise UnsupportedMediaType(
            f"send the body as application/json or text/csv, not "
            f"{request.mimetype or 'no content type'!r}",
            details={"content_type": request.content_type},
        )
    read: Reader = payload.parse if output is None else partial(payload.parse, output=output)
    prediction, _, _ = runtime().predict(body, read, "native", deadlines.of_request())
    return prediction
