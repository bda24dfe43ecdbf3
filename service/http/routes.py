"""The HTTP API: routes only. Work is delegated to the runtime; errors to ``service.http.app``."""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file

from service.errors import NotReady, UnsupportedMediaType
from service.http.auth import require_token
from service.serving.runtime import Runtime

bp = Blueprint("api", __name__)

DOWNLOAD_NAME = "pipeline.pkl"


def runtime() -> Runtime:
    return current_app.extensions["runtime"]


@bp.get("/healthz")
def health() -> Any:
    """Liveness: answers while the process can serve HTTP, whatever the model's state."""
    return {"status": "ok"}


@bp.get("/readyz")
def ready() -> Any:
    """Readiness: a load balancer sends traffic only after the warm-up prediction succeeded."""
    readiness = runtime().readiness
    if not readiness.ready:
        raise NotReady(readiness.reason)
    return {"status": "ready", "reason": readiness.reason, "sha256": runtime().model.sha256}


@bp.get("/usage")
def usage() -> Any:
    return runtime().usage(request.host_url)


@bp.get("/model")
def model() -> Any:
    return runtime().model.metadata()


@bp.get("/model/download")
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
def predict() -> Any:
    if not request.is_json:
        raise UnsupportedMediaType(
            f"send the body as application/json, not {request.mimetype or 'no content type'!r}",
            details={"content_type": request.content_type},
        )
    result, rows, sha256 = runtime().predict(request.get_data(cache=False))
    body: dict[str, Any] = {"predictions": result.predictions}
    if result.probabilities is not None:
        body["probabilities"] = result.probabilities
        body["classes"] = result.classes
    body["model"] = {"sha256": sha256}
    body["rows"] = rows
    return jsonify(body)
