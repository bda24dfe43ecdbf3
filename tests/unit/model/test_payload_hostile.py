"""Regression tests for the bugs the hostile-input corpus found in request validation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from service.errors import ServiceError
from service.model import payload
from service.model.schema import Column, Schema

SCHEMA = Schema(
    columns=(Column("x", "number"), Column("color", "string", categories=("red", "blue"))),
    example={},
    source="test",
)
DEPTH = 1000
"""Deeper than Python's recursion limit allows repr() to go, within orjson's 1024 levels."""


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def failure(body: bytes, *, max_rows: int = 100) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        payload.parse(body, SCHEMA, max_rows=max_rows, unknown="reject")
    return caught.value


def deep_document(depth: int, *, where: str) -> bytes:
    """A body with a value nested ``depth`` levels in a column or in ``output``."""
    inner = "[" * depth + "1" + "]" * depth
    if where == "column":
        return f'{{"data": {{"x": [{inner}], "color": ["red"]}}}}'.encode()
    return f'{{"data": {{"x": [1], "color": ["red"]}}, "output": {inner}}}'.encode()


@pytest.mark.parametrize(
    ("where", "status", "code"),
    [("column", 422, "schema_violation"), ("output", 400, "bad_request")],
    ids=["in-a-column", "in-output"],
)
def test_deeply_nested_values_are_client_errors(where: str, status: int, code: str) -> None:
    """A value nested 1000 levels made the error message's repr() raise RecursionError: a 500."""
    error = failure(deep_document(DEPTH, where=where))
    assert (error.status_code, error.code) == (status, code)
    assert len(error.message) < 300
    orjson.dumps(error.details)


def test_long_arrays_are_shortened_without_rendering_them_whole() -> None:
    """The problem names the value in at most 60 characters, whatever its size or depth."""
    for value in (nested(DEPTH), list(range(100_000)), {"k": nested(50)}):
        text = payload.shorten(value)
        assert len(text) <= 60
        assert text.startswith(("[", "{"))


def test_scalars_are_still_shown_as_python_repr() -> None:
    """Existing messages keep their wording: strings quoted, long ones cut with an ellipsis."""
    assert payload.shorten("lots") == "'lots'"
    assert payload.shorten(1.5) == "1.5"
    assert payload.shorten("a" * 100) == "'" + "a" * 56 + "..."


@pytest.mark.parametrize(
    "records",
    [[{}] * 101, [{"x": 1.0, "color": "red"}] * 101, [1] * 101],
    ids=["empty-records", "full-records", "non-object-records"],
)
def test_record_count_is_held_to_max_rows(records: list[Any]) -> None:
    """A million ``{}`` records answered 422 "data is empty" after walking every record;
    every record is a row, so the row limit applies first."""
    error = failure(orjson.dumps({"data": records}), max_rows=100)
    assert (error.status_code, error.code) == (413, "too_many_rows")
    assert error.details == {"rows": 101, "max_rows": 100}


def test_records_within_the_limit_are_unchanged() -> None:
    """One empty record is still reported as empty data, as before."""
    error = failure(b'{"data": [{}]}')
    assert (error.status_code, error.code) == (422, "schema_violation")


def test_deeply_nested_value_through_the_app_is_not_a_500(client: FlaskClient) -> None:
    """End to end in the app: the JSON error shape with 422, never internal_error."""
    inner = "[" * DEPTH + "30" + "]" * DEPTH
    example = {
        "income": [42000.0],
        "debt_ratio": [0.2],
        "region": ["north"],
        "employment": ["salaried"],
    }
    body = '{"data": {"age": [' + inner + "], " + orjson.dumps(example).decode()[1:] + "}"
    response = client.post("/model/predict", data=body, content_type="application/json")
    assert response.status_code == 422
    assert response.json["error"]["code"] == "schema_violation"
