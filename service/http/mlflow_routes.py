"""MLflow's scoring protocol: ``POST /invocations``, ``GET /ping``, ``GET /health``, so a
client of ``mlflow models serve`` (or a SageMaker-style caller) can point here unchanged.

Bodies are read by ``service.protocols.mlflow`` (JSON layouts) and
``service.protocols.csv_table`` (``text/csv``), then go through the runtime like
``/model/predict``'s. Errors take MLflow's shape, ``{"error_code", "message"}``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Blueprint, Response, request

from service.errors import UnsupportedMediaType
from service.http import deadlines
from service.http.openapi import Reply, Responses, invocations_details, operation
from service.http.routes import NOT_READY, require_ready, runtime
from service.protocols import csv_table, mlflow
from service.protocols.mlflow import MLflowError, MLflowPredictions
from service.serving.runtime import Reader

bp = Blueprint("mlflow", __name__)

CSV = "text/csv"


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return MLflowError(error_code=mlflow.error_code(code, status), message=message).model_dump()


def alive() -> Response:
    """MLflow answers its probes with a newline (labelled JSON there; plain text here, as
    it is); not ready is 503 here (MLflow: 404), what load balancers read as "not yet"."""
    require_ready()
    return Response("\n", status=200, mimetype="text/plain")


PROBE: Responses = {
    200: Reply("Ready: the model is loaded and warm.", media=("text/plain",)),
    503: NOT_READY,
}


@bp.get("/ping")
@operation("mlflow", "MLflow's readiness probe", PROBE, error_body=MLflowError)
def ping() -> Response:
    return alive()


@bp.get("/health")
@operation("mlflow", "MLflow's readiness probe (the same as /ping)", PROBE, error_body=MLflowError)
def health() -> Response:
    return alive()


@bp.post("/invocations")
@operation(
    "mlflow",
    "Predictions for a DataFrame in one of MLflow's layouts, or CSV",
    {
        200: MLflowPredictions,
        400: "Not JSON or CSV, not exactly one of dataframe_split, dataframe_records, "
        "instances, inputs, unnamed values, ragged rows, a malformed CSV (no header, another "
        "delimiter, a byte-order mark).",
        413: "More rows than MAX_ROWS, or a body over MAX_BODY_BYTES.",
        415: "Neither application/json nor text/csv.",
        422: "A column missing or unknown, a value of the wrong type (which column, which "
        "row and, for CSV, which line).",
        503: NOT_READY,
    },
    error_body=MLflowError,
    details=invocations_details,
)
def invocations() -> dict[str, Any]:
    body = request.get_data(cache=False)
    read: Reader
    if request.mimetype == CSV:
        read = partial(csv_table.parse, output="predict")
    elif request.is_json:
        read = mlflow.parse
    else:
        raise UnsupportedMediaType(
            f"send application/json or text/csv, not {request.mimetype or 'no content type'!r}",
            details={"content_type": request.content_type},
        )
    prediction, _, _ = runtime().predict(body, read, "mlflow", deadlines.of_request())
    return mlflow.response(prediction)
