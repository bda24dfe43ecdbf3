"""The Open Inference Protocol's requests read into checked columns, and its answers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from service.errors import BadRequest, SchemaViolation
from service.model.predictor import Prediction, ServedVersion
from service.model.schema import Schema
from service.protocols import open_inference

TENSORS = [
    {"name": "age", "datatype": "INT64", "shape": [2], "data": [30, 41]},
    {"name": "income", "datatype": "FP64", "shape": [2, 1], "data": [[1.5], [2.5]]},
    {"name": "member", "datatype": "BOOL", "shape": [2], "data": [True, False]},
    {"name": "plan", "datatype": "BYTES", "shape": [2], "data": ["pro", "basic"]},
]


def body(**fields: Any) -> bytes:
    return orjson.dumps({"inputs": TENSORS, **fields})


def read(document: bytes, schema: Schema, has_proba: bool = True) -> dict[str, Any]:
    inference = open_inference.read(document, has_proba=has_proba)
    request = open_inference.request(inference, schema, max_rows=100, unknown="reject")
    return request.columns


def with_tensor(index: int, **changes: Any) -> bytes:
    tensors = [dict(t) for t in TENSORS]
    tensors[index].update(changes)
    return orjson.dumps({"inputs": tensors})


def test_one_tensor_per_column_flat_or_nested(schema: Schema) -> None:
    columns = read(body(), schema)
    assert columns["age"].tolist() == [30, 41]
    assert columns["income"].tolist() == [1.5, 2.5]
    assert columns["plan"] == ["pro", "basic"]


def test_a_number_column_takes_any_numeric_datatype(schema: Schema) -> None:
    assert read(with_tensor(1, datatype="FP32", data=[1, 2]), schema)["income"].tolist() == [1, 2]


def test_outputs_default_to_what_the_model_has_and_can_be_chosen() -> None:
    assert open_inference.read(body(), has_proba=True).outputs == ("predict", "predict_proba")
    assert open_inference.read(body(), has_proba=False).outputs == ("predict",)
    chosen = body(outputs=[{"name": "predict_proba"}], id="r1")
    inference = open_inference.read(chosen, has_proba=True)
    assert (inference.outputs, inference.id) == (("predict_proba",), "r1")


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (b"[]", "expected an object"),
        (orjson.dumps({"inputs": []}), "non-empty array"),
        (body(extra=1), "unknown fields in the body: ['extra']"),
        (body(id=5), '"id" must be a string'),
        (body(outputs=[{"name": "predict_log_proba"}]), "unknown output 'predict_log_proba'"),
        (b'{"inputs": [{"name": "age"', "not valid JSON"),
    ],
    ids=["array", "no-inputs", "unknown-field", "id-type", "unknown-output", "truncated"],
)
def test_a_malformed_envelope_is_a_400(document: bytes, words: str) -> None:
    with pytest.raises(BadRequest) as caught:
        open_inference.read(document, has_proba=True)
    assert words in caught.value.message


def test_proba_is_no_output_of_a_model_without_it() -> None:
    with pytest.raises(BadRequest, match=r"this model has \['predict'\]"):
        open_inference.read(body(outputs=[{"name": "predict_proba"}]), has_proba=False)


@pytest.mark.parametrize(
    ("document", "error", "words"),
    [
        (with_tensor(3, datatype="FP64"), SchemaViolation, "'plan': datatype 'FP64' does not fit"),
        (with_tensor(0, datatype="FP64"), SchemaViolation, "send INT64"),
        (with_tensor(0, shape=[3], data=[1, 2, 3]), SchemaViolation, "different lengths"),
        (with_tensor(0, shape=[2], data=[1, 2, 3]), BadRequest, "holds 2 values, data has 3"),
        (with_tensor(0, shape=[1, 2], data=[1, 2]), BadRequest, "is not [N] or [N, 1]"),
        (with_tensor(0, shape=["2"]), BadRequest, "shape must be an array of sizes"),
        (orjson.dumps({"inputs": [TENSORS[0]] * 2}), BadRequest, "'age' is sent twice"),
        (with_tensor(0, name="height"), SchemaViolation, "'age': required column is missing"),
        (with_tensor(3, data=["pro", 7]), SchemaViolation, "column 'plan', row 1"),
        (with_tensor(1, data=[[1.0, 2.0], [3.0, 4.0]]), BadRequest, "one value per row"),
        (orjson.dumps({"inputs": [{"name": "age"}]}), BadRequest, "lacks ['datatype', 'shape'"),
    ],
    ids=[
        "bytes-as-fp64",
        "int-as-fp64",
        "lengths",
        "data-vs-shape",
        "two-columns",
        "shape-type",
        "repeated",
        "unknown-and-missing",
        "bad-value",
        "nested-wide",
        "no-datatype",
    ],
)
def test_a_bad_tensor_is_named(
    schema: Schema, document: bytes, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as caught:
        read(document, schema)
    assert words in str(caught.value), str(caught.value)


def test_metadata_describes_one_tensor_per_column(schema: Schema) -> None:
    metadata = open_inference.model_metadata("m", "a" * 64, schema, ["no", "yes"], True)
    assert [(t.name, t.datatype, t.shape) for t in metadata.inputs] == [
        ("age", "INT64", [-1]),
        ("income", "FP64", [-1]),
        ("member", "BOOL", [-1]),
        ("plan", "BYTES", [-1]),
    ]
    assert [(t.name, t.datatype, t.shape) for t in metadata.outputs] == [
        ("predict", "BYTES", [-1]),
        ("predict_proba", "FP64", [-1, 2]),
    ]
    regressor = open_inference.model_metadata("m", "a" * 64, schema, None, False)
    assert [(t.name, t.datatype) for t in regressor.outputs] == [("predict", "FP64")]


def test_the_answer_holds_the_requested_outputs_row_major() -> None:
    prediction = Prediction.model_construct(
        predictions=[1, 0],
        probabilities=[[0.25, 0.75], [0.5, 0.5]],
        classes=[0, 1],
        model=ServedVersion(sha256="b" * 64),
        rows=2,
    )
    inference = open_inference.read(body(id="q"), has_proba=True)
    answer = open_inference.response(prediction, inference, "m")
    assert answer["model_name"] == "m" and answer["model_version"] == "b" * 64
    assert answer["id"] == "q"
    assert answer["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [2], "data": [1, 0]},
        {
            "name": "predict_proba",
            "datatype": "FP64",
            "shape": [2, 2],
            "data": [0.25, 0.75, 0.5, 0.5],
        },
    ]


@pytest.mark.parametrize("field", ["outputs", "id", "parameters"])
def test_a_null_field_is_not_an_absent_one(field: str) -> None:
    with pytest.raises(BadRequest, match=f'"{field}" must be'):
        open_inference.read(body(**{field: None}), has_proba=True)
