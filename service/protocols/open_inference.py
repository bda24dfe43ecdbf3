"""The Open Inference Protocol (KServe V2), REST: its metadata, and inference requests read
into the service's own checked columns.

A DataFrame travels as one input tensor per column, as MLServer's pandas codec and
tritonclient send it: ``{"name": column, "datatype": "FP64", "shape": [N], "data": [...]}``
(shape ``[N, 1]`` too, data flat or nested by row). A tensor's datatype must fit its
column's kind (a number column takes any numeric type; an integer column the integer ones;
text ``BYTES``, as JSON strings; ``BOOL`` booleans); the values themselves go through the
shared validation, so a bad cell is named by column and row as on ``/model/predict``.

The outputs are ``predict`` (the labels or values, shape ``[N]``) and, for a model with
``predict_proba``, ``predict_proba`` (shape ``[N, classes]``, row-major). The binary
tensor extension is not spoken: a request using it is refused with a message saying so.

Spec: https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.errors import BadRequest, SchemaViolation
from service.model import payload
from service.model.payload import Request, json_type, shorten
from service.model.predictor import Prediction
from service.model.schema import Column, Schema

PREDICT, PROBA = "predict", "predict_proba"
INTEGERS = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
FITS: dict[str, frozenset[str]] = {
    "number": INTEGERS | {"FP16", "FP32", "FP64"},
    "integer": INTEGERS,
    "boolean": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
}
"""The tensor datatypes each column kind accepts."""
ACCEPTED = sorted(frozenset().union(*FITS.values()))
DATATYPE: dict[str, str] = {
    "number": "FP64",
    "integer": "INT64",
    "boolean": "BOOL",
    "string": "BYTES",
}
"""The datatype metadata advertises for each kind."""
FIELDS = frozenset({"id", "parameters", "inputs", "outputs"})
BINARY_HEADER = "Inference-Header-Content-Length"


class TensorMetadata(BaseModel):
    """An input or output tensor: one column, or one of the model's outputs."""

    name: str
    datatype: str
    shape: list[int]


class ServerMetadata(BaseModel):
    """The server's name, version and protocol extensions (`GET /v2`)."""

    name: str
    version: str
    extensions: list[str]


class ModelMetadataV2(BaseModel):
    """The served model as the Open Inference Protocol describes it."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ResponseOutput(TensorMetadata):
    """An output tensor with its data, row-major."""

    data: list[Any]


class InferenceResponse(BaseModel):
    """The requested outputs, the model's name and version (its sha256), and the request's
    `id`."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput] = Field(min_length=1)


class V2Error(BaseModel):
    """The protocol's error shape: one message."""

    error: str


@dataclass(frozen=True)
class Inference:
    """An inference request read up to its inputs: what to answer with, and to whom."""

    inputs: list[Any]
    outputs: tuple[str, ...]
    id: str | None


def server_metadata(version: str) -> ServerMetadata:
    return ServerMetadata(name="model-serving", version=version, extensions=[])


def label_datatype(labels: list[Any] | None) -> str:
    """The datatype of a model's labels, from their JSON-native values."""
    first = labels[0] if labels else 0.0
    if isinstance(first, bool):
        return "BOOL"
    if isinstance(first, int):
        return "INT64"
    return "BYTES" if isinstance(first, str) else "FP64"


def model_metadata(
    name: str, sha256: str, schema: Schema, classes: list[Any] | None, has_proba: bool
) -> ModelMetadataV2:
    outputs = [TensorMetadata(name=PREDICT, datatype=label_datatype(classes), shape=[-1])]
    if has_proba and classes is not None:
        outputs.append(TensorMetadata(name=PROBA, datatype="FP64", shape=[-1, len(classes)]))
    return ModelMetadataV2(
        name=name,
        versions=[sha256],
        platform="sklearn",
        inputs=[
            TensorMetadata(name=c.name, datatype=DATATYPE[c.kind], shape=[-1])
            for c in schema.columns
        ],
        outputs=outputs,
    )


def read(body: bytes, *, has_proba: bool) -> Inference:
    """The request's envelope: inputs (checked later, against the schema), the outputs to
    answer with (both, for a model with probabilities, when none are named) and the id."""
    document = payload.parse_json(body)
    if not isinstance(document, dict):
        raise BadRequest(f"the body is a JSON {json_type(document)}; expected an object")
    extra = sorted(set(document) - FIELDS)
    if extra:
        raise BadRequest(f"unknown fields in the body: {extra}", details={"fields": extra})
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest('"inputs" must be a non-empty array of tensors, one per column')
    ident = document.get("id")
    if "id" in document and not isinstance(ident, str):
        raise BadRequest(f'"id" must be a string, got {json_type(ident)}')
    if not isinstance(document.get("parameters", {}), dict):
        raise BadRequest('"parameters" must be an object')
    available = outputs(has_proba)
    chosen = _outputs(document["outputs"], available) if "outputs" in document else available
    return Inference(inputs, chosen, ident)


def outputs(has_proba: bool) -> tuple[str, ...]:
    """The outputs a model gives: its labels, and its probabilities when it has them."""
    return (PREDICT, PROBA) if has_proba else (PREDICT,)


def _outputs(requested: Any, available: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(requested, list) or not requested:
        raise BadRequest('"outputs" must be a non-empty array of {"name": ...}')
    names = []
    for index, output in enumerate(requested):
        name = output.get("name") if isinstance(output, dict) else None
        if name not in available:
            raise BadRequest(
                f"outputs[{index}]: unknown output {shorten(name)}; this model has "
                f"{list(available)}",
                details={"outputs": list(available)},
            )
        names.append(name)
    return tuple(dict.fromkeys(names))


def columns(inference: Inference, schema: Schema) -> dict[str, list[Any]]:
    """One raw column per input tensor, after the tensor-level checks (datatype, shape,
    length, repeated names); values are checked by the shared validation."""
    kinds = {c.name: c for c in schema.columns}
    raw: dict[str, list[Any]] = {}
    for index, tensor in enumerate(inference.inputs):
        name, datatype, shape, data = _tensor(index, tensor)
        if name in raw:
            raise BadRequest(f"input {shorten(name)} is sent twice", details={"input": name})
        column = kinds.get(name)
        if column is not None:
            _check_datatype(column, datatype)
        raw[name] = _values(name, shape, data)
    return raw


def _tensor(index: int, tensor: Any) -> tuple[str, str, list[int], list[Any]]:
    where = f"inputs[{index}]"
    if not isinstance(tensor, dict):
        raise BadRequest(f"{where} is a {json_type(tensor)}; expected a tensor object")
    missing = [key for key in ("name", "datatype", "shape", "data") if key not in tensor]
    if missing:
        raise BadRequest(f"{where} lacks {missing}", details={"input": index, "missing": missing})
    name, datatype, shape = tensor["name"], tensor["datatype"], tensor["shape"]
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise BadRequest(f"{where}: name and datatype must be strings")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(
            f"input {shorten(name)}: shape must be an array of sizes, got {shorten(shape)}"
        )
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise BadRequest(
            f"input {shorten(name)}: shape {shape} is not [N] or [N, 1]: send one tensor per "
            "column",
            details={"input": name, "shape": shape},
        )
    if not isinstance(tensor["data"], list):
        raise BadRequest(f"input {shorten(name)}: data must be an array")
    return name, datatype, shape, tensor["data"]


def _check_datatype(column: Column, datatype: str) -> None:
    if datatype not in FITS[column.kind]:
        expected = DATATYPE[column.kind]
        raise SchemaViolation(
            f"input does not match the model's schema: column {column.name!r}: datatype "
            f"{shorten(datatype)} does not fit its {column.kind} values; send {expected}",
            details={
                "errors": [
                    {
                        "column": column.name,
                        "problem": f"datatype {datatype} does not fit; expected {expected}",
                    }
                ],
                "error_count": 1,
            },
        )


def _values(name: str, shape: list[int], data: list[Any]) -> list[Any]:
    """The tensor's values, flat: a [N, 1] tensor may nest each row's one value."""
    if data and all(isinstance(row, list) for row in data):
        if not all(len(row) == 1 for row in data):
            raise BadRequest(
                f"input {shorten(name)}: nested data must hold one value per row",
                details={"input": name},
            )
        data = [row[0] for row in data]
    expected = math.prod(shape)
    if len(data) != expected:
        raise BadRequest(
            f"input {shorten(name)}: shape {shape} holds {expected} values, data has {len(data)}",
            details={"input": name, "shape": shape, "values": len(data)},
        )
    return data


def request(inference: Inference, schema: Schema, *, max_rows: int, unknown: str) -> Request:
    """The inputs as a checked request, asking the model for what the outputs need."""
    output = "both" if PROBA in inference.outputs else "predict"
    raw = columns(inference, schema)
    return payload.from_columns(raw, schema, output=output, max_rows=max_rows, unknown=unknown)


def response(prediction: Prediction, inference: Inference, name: str) -> dict[str, Any]:
    """The requested outputs as tensors (a plain dict: orjson renders it, unvalidated)."""
    rows = prediction.rows
    outputs = []
    if PREDICT in inference.outputs:
        labels = prediction.predictions
        outputs.append(
            {"name": PREDICT, "datatype": label_datatype(labels), "shape": [rows], "data": labels}
        )
    if PROBA in inference.outputs and prediction.probabilities is not None:
        width = len(prediction.probabilities[0])
        flat = [p for row in prediction.probabilities for p in row]
        outputs.append({"name": PROBA, "datatype": "FP64", "shape": [rows, width], "data": flat})
    answer: dict[str, Any] = {
        "model_name": name,
        "model_version": prediction.model.sha256,
        "outputs": outputs,
    }
    if inference.id is not None:
        answer["id"] = inference.id
    return answer
