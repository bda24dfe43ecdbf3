"""The Open Inference Protocol (KServe V2) over REST, for KServe, Seldon and Triton clients.

The routes read and answer the protocol's shapes (``service.protocols.open_inference``);
predictions go through the runtime like ``/model/predict``'s, so they share its
validation, batching, plan, limits and deadline. Errors take the protocol's shape,
``{"error": "..."}`` (``service.http.app``), with the status codes and messages of the
native API. The model is served under one name (MODEL_NAME) and one version, the sha256
it serves: any other answers 404.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from service.errors import BadRequest, VersionNotFound
from service.http import deadlines
from service.http.openapi import infer_details, operation, package_version
from service.http.routes import NOT_READY, require_ready, runtime
from service.protocols import open_inference
from service.protocols.open_inference import (
    InferenceResponse,
    ModelMetadataV2,
    ServerMetadata,
    V2Error,
)

bp = Blueprint("v2", __name__, url_prefix="/v2")

UNKNOWN = "No model of that name, or not that version (the served sha256)."
PROBE = {200: "Yes (empty body).", 503: "No (not ready, or draining)."}
VERSIONED = "/models/<name>/versions/<version>"


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The protocol's error shape; the status code says the rest."""
    return V2Error(error=message).model_dump()


def served(name: str, version: str | None = None) -> None:
    """Refuse a name or version this server does not serve."""
    settings, model = runtime().settings, runtime().model
    if name != settings.served_name:
        raise VersionNotFound(
            f"model {name!r} is not served here; this server serves {settings.served_name!r}",
            details={"name": name},
        )
    if version is not None and version != model.sha256:
        raise VersionNotFound(
            f"model {name!r} version {version!r} is not served; the served version is "
            f"{model.sha256}",
            details={"version": version},
        )


def ready_or_503() -> Response:
    """The protocol's readiness answer: 200 with an empty body, or NotReady's 503."""
    require_ready()
    return Response(status=200)


@bp.get("")
@operation("open inference", "Server metadata", {200: ServerMetadata}, error_body=V2Error)
def server() -> ServerMetadata:
    return open_inference.server_metadata(package_version())


@bp.get("/health/live")
@operation("open inference", "Server liveness", {200: PROBE[200]}, error_body=V2Error)
def live() -> Response:
    return Response(status=200)


@bp.get("/health/ready")
@operation("open inference", "Server readiness", PROBE, error_body=V2Error)
def ready() -> Response:
    return ready_or_503()


@bp.get("/models/<name>")
@bp.get(VERSIONED, endpoint="model_version")
@operation(
    "open inference",
    "Model metadata: one input tensor per column, the outputs",
    {200: ModelMetadataV2, 404: UNKNOWN},
    error_body=V2Error,
)
def model(name: str, version: str | None = None) -> ModelMetadataV2:
    served(name, version)
    model = runtime().model
    return open_inference.model_metadata(
        name, model.sha256, model.schema, model.classes, model.has_proba
    )


@bp.get("/models/<name>/ready")
@bp.get(VERSIONED + "/ready", endpoint="model_version_ready")
@operation("open inference", "Model readiness", {**PROBE, 404: UNKNOWN}, error_body=V2Error)
def model_ready(name: str, version: str | None = None) -> Response:
    served(name, version)
    return ready_or_503()


@bp.post("/models/<name>/infer")
@bp.post(VERSIONED + "/infer", endpoint="infer_version")
@operation(
    "open inference",
    "Inference: one input tensor per column; outputs predict and predict_proba",
    {
        200: InferenceResponse,
        400: "Not JSON, or not the protocol's shape: a tensor without name, datatype, shape "
        "or data, a shape other than [N] or [N, 1], data not matching its shape, an unknown "
        "output, the binary tensor extension.",
        404: UNKNOWN,
        413: "More rows than MAX_ROWS, or a body over MAX_BODY_BYTES.",
        422: "A column missing or unknown, a datatype that does not fit its column, columns "
        "of different lengths, a value of the wrong type (which column, which row).",
        503: NOT_READY,
    },
    error_body=V2Error,
    details=infer_details,
)
def infer(name: str, version: str | None = None) -> dict[str, Any]:
    served(name, version)
    if open_inference.BINARY_HEADER in request.headers:
        raise BadRequest(
            "the binary tensor data extension is not supported: send tensors as JSON "
            "(tritonclient: binary_data=False on inputs and outputs)"
        )
    current = runtime()
    inference = open_inference.read(
        request.get_data(cache=False), has_proba=current.model.has_proba
    )
    prediction, _, _ = current.predict(
        inference, open_inference.request, "open_inference", deadlines.of_request()
    )
    return open_inference.response(prediction, inference, name)
