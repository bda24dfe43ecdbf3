"""MLflow's request layouts read into the same columns, and its error codes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from service.errors import BadRequest, SchemaViolation
from service.model.schema import Schema
from service.protocols import mlflow

RECORDS = [
    {"age": 30, "income": 1.5, "member": True, "plan": "pro"},
    {"age": 41, "income": None, "member": False, "plan": "basic"},
]
NAMES = ["age", "income", "member", "plan"]
LAYOUTS = {
    "dataframe_split": {"columns": NAMES, "data": [[r[n] for n in NAMES] for r in RECORDS]},
    "dataframe_records": RECORDS,
    "instances": RECORDS,
    "inputs": {n: [r[n] for r in RECORDS] for n in NAMES},
}


def parse(document: Any, schema: Schema) -> dict[str, Any]:
    body = orjson.dumps(document)
    return mlflow.parse(body, schema, max_rows=100, unknown="reject").columns


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_reads_the_same_columns(schema: Schema, layout: str) -> None:
    columns = parse({layout: LAYOUTS[layout]}, schema)
    assert columns["age"].tolist() == [30, 41]
    assert columns["plan"] == ["pro", "basic"]
    assert columns["income"][0] == 1.5


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({}, "exactly one of"),
        ({"instances": RECORDS, "inputs": RECORDS}, "it has ['instances', 'inputs']"),
        ({"instances": RECORDS, "extra": 1}, "unknown fields in the body: ['extra']"),
        ({"instances": RECORDS, "params": {"k": 1}}, 'takes no "params"'),
        ({"dataframe_split": {"columns": NAMES}}, 'with "columns" and "data"'),
        ({"dataframe_split": {"columns": NAMES, "data": [[1, 2]]}}, "data[0] has 2 values"),
        ({"dataframe_split": {"columns": ["age", "age"], "data": []}}, "repeats a name"),
        ({"dataframe_records": {"age": [1]}}, "expected records"),
        ({"instances": [[30, 1.5, True, "pro"]]}, "unnamed values"),
    ],
    ids=[
        "none",
        "two",
        "extra",
        "params",
        "split-no-data",
        "split-ragged",
        "split-repeat",
        "records-object",
        "unnamed",
    ],
)
def test_a_body_mlflow_would_refuse_is_a_400(schema: Schema, document: Any, words: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse(document, schema)
    assert words in caught.value.message, caught.value.message


def test_values_are_checked_as_everywhere(schema: Schema) -> None:
    with pytest.raises(SchemaViolation, match="column 'age', row 1: expected integer"):
        parse({"dataframe_records": [RECORDS[0], {**RECORDS[1], "age": "x"}]}, schema)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("malformed_json", 400, "MALFORMED_REQUEST"),
        ("schema_violation", 422, "INVALID_PARAMETER_VALUE"),
        ("too_many_rows", 413, "BAD_REQUEST"),
        ("not_ready", 503, "TEMPORARILY_UNAVAILABLE"),
        ("internal_error", 500, "INTERNAL_ERROR"),
    ],
)
def test_error_codes_are_mlflows(code: str, status: int, expected: str) -> None:
    assert mlflow.error_code(code, status) == expected
