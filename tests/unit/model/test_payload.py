"""Request validation: every client mistake becomes a named error, never a pipeline crash."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from service.errors import ServiceError
from service.model import payload
from service.model.schema import Column, Schema

SCHEMA = Schema(
    columns=(
        Column("x", "number"),
        Column("n", "integer"),
        Column("flag", "boolean"),
        Column("color", "string", categories=("red", "blue")),
        Column("maybe", "number", nullable=True),
    ),
    example={},
    source="test",
)
GOOD = {
    "x": [1.5, 2],
    "n": [1, 2],
    "flag": [True, False],
    "color": ["red", "blue"],
    "maybe": [None, 3],
}


def parse(document: Any, *, max_rows: int = 100, unknown: str = "reject") -> payload.Request:
    return payload.parse(orjson.dumps(document), SCHEMA, max_rows=max_rows, unknown=unknown)


def frame_of(document: Any) -> pd.DataFrame:
    return payload.build_frame(parse(document).columns)


def problems(document: Any, **kwargs: Any) -> tuple[int, str, dict[str, Any]]:
    with pytest.raises(ServiceError) as caught:
        parse(document, **kwargs)
    return caught.value.status_code, caught.value.code, caught.value.details


def with_column(name: str, values: list[Any]) -> dict[str, Any]:
    return {"data": {**GOOD, name: values}}


def test_columns_convert_to_typed_frame() -> None:
    request = parse({"data": GOOD, "output": "both"})
    frame = payload.build_frame(request.columns)
    assert list(frame.columns) == ["x", "n", "flag", "color", "maybe"]
    assert frame["x"].dtype == np.float64
    assert frame["n"].dtype == np.int64
    assert frame["flag"].dtype == bool
    assert np.isnan(frame["maybe"][0])
    assert (request.rows, request.output, request.has_nulls) == (2, "both", True)


def test_records_equal_columns() -> None:
    records = [{k: v[i] for k, v in GOOD.items()} for i in range(2)]
    assert frame_of({"data": records}).equals(frame_of({"data": GOOD}))


def test_record_order_of_keys_does_not_matter() -> None:
    records = [dict(reversed(list({k: v[0] for k, v in GOOD.items()}.items())))]
    assert list(frame_of({"data": records}).columns) == list(SCHEMA.names)


@pytest.mark.parametrize(
    ("document", "status", "code"),
    [
        ([1, 2], 400, "bad_request"),
        ("text", 400, "bad_request"),
        ({"rows": GOOD}, 400, "bad_request"),
        ({"data": None}, 400, "bad_request"),
        ({"data": 3}, 400, "bad_request"),
        ({"data": {"x": 1}}, 400, "bad_request"),
        ({"data": [1, 2]}, 400, "bad_request"),
        ({"data": GOOD, "output": "logits"}, 400, "bad_request"),
        ({"data": GOOD, "extra": 1}, 400, "bad_request"),
        ({"data": {}}, 422, "schema_violation"),
        ({"data": []}, 422, "schema_violation"),
        ({"data": {k: [] for k in GOOD}}, 422, "schema_violation"),
    ],
)
def test_shape_errors(document: Any, status: int, code: str) -> None:
    assert problems(document)[:2] == (status, code)


@pytest.mark.parametrize(
    ("column", "values", "row", "fragment"),
    [
        ("x", [1.0, "2"], 1, "expected number, got string '2'"),
        ("x", [True, 1.0], 0, "expected number, got boolean True"),
        ("x", [None, 1.0], 0, "null is not allowed"),
        ("x", [1.0, [1]], 1, "expected number, got array"),
        ("n", [1, 1.5], 1, "expected integer, got number 1.5"),
        ("flag", [1, True], 0, "expected boolean, got number 1"),
        ("color", ["red", "green"], 1, "unknown category 'green'"),
        ("color", ["red", 7], 1, "expected string, got number 7"),
        ("maybe", [1.0, "x"], 1, "expected number, got string"),
    ],
)
def test_value_errors_name_column_and_row(
    column: str, values: list, row: int, fragment: str
) -> None:
    status, code, details = problems(with_column(column, values))
    assert (status, code) == (422, "schema_violation")
    [error] = details["errors"]
    assert (error["column"], error["row"]) == (column, row)
    assert fragment in error["problem"]


def test_non_finite_numbers_are_refused() -> None:
    columns = {**GOOD, "x": [1.0, 1e308 * 10]}
    with pytest.raises(ServiceError) as caught:
        payload.to_frame(SCHEMA, columns, unknown="reject")
    assert caught.value.details["errors"][0]["problem"] == "inf is not a finite number"


def test_missing_and_unknown_columns_are_each_named() -> None:
    data = {k: v for k, v in GOOD.items() if k != "n"} | {"extra": [1, 2]}
    _, _, details = problems({"data": data})
    assert details["errors"] == [
        {"column": "n", "problem": "required column is missing"},
        {"column": "extra", "problem": "unknown column (the model does not read it)"},
    ]


def test_unknown_columns_can_be_ignored() -> None:
    request = parse({"data": {**GOOD, "extra": [1, 2]}}, unknown="ignore")
    assert "extra" not in request.columns


def test_ragged_columns_report_lengths() -> None:
    status, code, details = problems(with_column("x", [1.0]))
    assert (status, code) == (422, "schema_violation")
    assert details["column_lengths"]["x"] == 1
    assert details["column_lengths"]["n"] == 2


def test_too_many_rows_is_413() -> None:
    data = {k: v * 3 for k, v in GOOD.items()}
    assert problems({"data": data}, max_rows=5) == (
        413,
        "too_many_rows",
        {"rows": 6, "max_rows": 5},
    )


def test_error_list_is_capped() -> None:
    data = {k: v * 50 for k, v in GOOD.items()} | {"x": ["bad"] * 100}
    _, _, details = problems({"data": data}, max_rows=1000)
    assert len(details["errors"]) == payload.MAX_REPORTED_ERRORS


@pytest.mark.parametrize(
    "body", [b"{", b'{"data": NaN}', b"\xff\xfe", b"[" * 2000 + b"]" * 2000, b""]
)
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(ServiceError) as caught:
        payload.parse(body, SCHEMA, max_rows=10, unknown="reject")
    assert (caught.value.status_code, caught.value.code) == (400, "malformed_json")


def test_long_unknown_column_names_are_clipped_in_errors() -> None:
    name = "x" * 1_000_000
    _, _, details = problems({"data": {**GOOD, name: [1, 2]}})
    [unknown] = [e for e in details["errors"] if "unknown" in e["problem"]]
    assert len(unknown["column"]) == 200


def test_closed_numeric_categories_are_checked_on_the_fast_path() -> None:
    schema = Schema(
        columns=(Column("level", "integer", categories=(1, 2, 3)),), example={}, source="test"
    )
    with pytest.raises(ServiceError) as caught:
        payload.validate(schema, {"level": [1, 7]}, unknown="reject")
    assert caught.value.details["errors"][0]["row"] == 1
    assert payload.validate(schema, {"level": [1, 3]}, unknown="reject")["level"].tolist() == [1, 3]
