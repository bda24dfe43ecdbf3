"""MLflow's scoring protocol (``mlflow models serve``, SageMaker-style callers):
``POST /invocations`` with a DataFrame in one of MLflow's JSON layouts, or CSV.

- ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` (``index`` ignored);
- ``{"dataframe_records": [{column: value}, ...]}``;
- ``{"instances": ...}`` and ``{"inputs": ...}``: records, or ``{column: [values]}``;
- ``text/csv``: a header, then rows (``service.protocols.csv_table``).

The answer is ``{"predictions": [...]}``, as MLflow's pyfunc flavour returns a
scikit-learn ``predict``. Errors keep MLflow's shape, ``{"error_code", "message"}``, with
this service's messages (which column, which row).

Reference: https://mlflow.org/docs/latest/deployment/deploy-model-locally/
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.errors import BadRequest
from service.model import payload
from service.model.payload import Request, json_type, shorten
from service.model.predictor import Label, Prediction
from service.model.schema import Schema

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
ERROR_CODES = {
    "malformed_json": "MALFORMED_REQUEST",
    "schema_violation": "INVALID_PARAMETER_VALUE",
}
"""This service's error codes that MLflow names otherwise; other 4xx are BAD_REQUEST."""


class MLflowPredictions(BaseModel):
    """One prediction per row, as MLflow's scoring server answers."""

    predictions: list[Label]


class MLflowError(BaseModel):
    """MLflow's error shape."""

    error_code: str
    message: str


def error_code(code: str, status: int) -> str:
    if status == 503:
        return "TEMPORARILY_UNAVAILABLE"
    if status >= 500:
        return "INTERNAL_ERROR"
    return ERROR_CODES.get(code, "BAD_REQUEST")


def parse(body: bytes, schema: Schema, *, max_rows: int, unknown: str) -> Request:
    """A JSON body in one of MLflow's layouts as a checked request."""
    document = payload.parse_json(body)
    if not isinstance(document, dict):
        raise BadRequest(f"the body is a JSON {json_type(document)}; expected an object")
    present = [key for key in FORMATS if key in document]
    if len(present) != 1:
        raise BadRequest(
            f"the body must have exactly one of {list(FORMATS)}; it has {present or 'none'}",
            details={"fields": sorted(document)},
        )
    extra = sorted(set(document) - {present[0], "params"})
    if extra:
        raise BadRequest(f"unknown fields in the body: {extra}", details={"fields": extra})
    if document.get("params"):
        raise BadRequest('this model takes no "params"', details={"params": document["params"]})
    raw = _columns(present[0], document[present[0]], max_rows)
    return payload.from_columns(raw, schema, output="predict", max_rows=max_rows, unknown=unknown)


def _columns(layout: str, data: Any, max_rows: int) -> dict[str, list[Any]]:
    if layout == "dataframe_split":
        return _split(data)
    if layout == "dataframe_records" and not isinstance(data, list):
        raise BadRequest(f'"dataframe_records" is a {json_type(data)}; expected records')
    if isinstance(data, list) and data and not all(isinstance(row, dict) for row in data):
        raise BadRequest(
            f'"{layout}" holds unnamed values; send records [{{column: value}}] or '
            "{column: [values]}: the model reads columns by name"
        )
    return payload.raw_columns(data, max_rows)


def _split(split: Any) -> dict[str, list[Any]]:
    if not isinstance(split, dict) or "columns" not in split or "data" not in split:
        raise BadRequest('"dataframe_split" must be an object with "columns" and "data"')
    names, rows = split["columns"], split["data"]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise BadRequest('"dataframe_split.columns" must be an array of column names')
    if len(set(names)) < len(names):
        raise BadRequest(f'"dataframe_split.columns" repeats a name: {shorten(names)}')
    if not isinstance(rows, list):
        raise BadRequest('"dataframe_split.data" must be an array of rows')
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(names):
            got = f"{len(row)} values" if isinstance(row, list) else f"a {json_type(row)}"
            raise BadRequest(
                f"dataframe_split.data[{index}] has {got}; there are {len(names)} columns "
                f"{shorten(names)}",
                details={"row": index},
            )
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


def response(prediction: Prediction) -> dict[str, Any]:
    return {"predictions": prediction.predictions}
