"""Turning a prediction request body into a DataFrame the model can trust.

Everything a client can get wrong is caught here, before the pipeline runs,
and reported as the service's own error naming the column and the row: the
pipeline never sees a value the schema does not allow, so it never raises a
pandas ``KeyError`` or a numpy ``ValueError`` at the client.

orjson parses the body: it is strict (NaN/Infinity literals, invalid UTF-8
and nesting past 1024 levels are errors, not surprises) and several times
faster than the standard library on the number arrays this API carries.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from service.errors import BadRequest, MalformedJSON, PayloadTooLarge, SchemaViolation
from service.model.schema import Column, Schema

OUTPUTS = ("predict", "proba", "both")
MAX_REPORTED_ERRORS = 20
"""Cap on listed problems so a million bad rows do not make a million-line error."""


Columns = dict[str, Any]
"""Validated columns in schema order: numpy arrays for numbers and booleans, lists for text."""


@dataclass(frozen=True)
class Request:
    """A validated prediction request, kept as columns so requests can be batched cheaply."""

    columns: Columns
    output: str
    rows: int
    has_nulls: bool


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"the body is not valid JSON: {exc}") from exc


def _columns_from_records(records: list[Any]) -> dict[str, list[Any]]:
    """Records ``[{col: v}, ...]`` to columns; a key absent from a record reads as null."""
    names: dict[str, None] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest(
                f"data[{index}] is a {json_type(record)}; records must be objects",
                details={"row": index},
            )
        names.update(dict.fromkeys(record))
    return {name: [record.get(name) for record in records] for name in names}


def json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def raw_columns(data: Any, max_rows: int) -> dict[str, list[Any]]:
    if isinstance(data, list):
        _check_rows(len(data), max_rows)  # records count as rows even when they carry no keys
        return _columns_from_records(data)
    if not isinstance(data, dict):
        raise BadRequest(
            f'"data" is a {json_type(data)}; expected an object of columns or an array of records'
        )
    bad = [name for name, values in data.items() if not isinstance(values, list)]
    if bad:
        raise BadRequest(
            f"columns must be arrays of values; not arrays: {bad}", details={"columns": bad}
        )
    return data


def _check_shape(columns: Mapping[str, list[Any]], max_rows: int) -> int:
    if not columns:
        raise SchemaViolation("data is empty: send at least one row", details={"errors": []})
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise SchemaViolation(
            "columns have different lengths (ragged data)", details={"column_lengths": lengths}
        )
    rows = next(iter(lengths.values()))
    if rows == 0:
        raise SchemaViolation("data is empty: send at least one row", details={"errors": []})
    _check_rows(rows, max_rows)
    return rows


def _check_rows(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise PayloadTooLarge(
            f"{rows} rows exceed the limit of {max_rows} per request",
            details={"rows": rows, "max_rows": max_rows},
        )


# ---- per-kind conversion: a fast path for clean columns, a slow one to name bad rows ----


def _is_number(v: Any) -> bool:
    return type(v) in (int, float)


def _is_integer(v: Any) -> bool:
    return type(v) is int or (type(v) is float and v.is_integer())


def _is_boolean(v: Any) -> bool:
    return type(v) is bool


def _is_string(v: Any) -> bool:
    return type(v) is str


ACCEPTS: dict[str, Callable[[Any], bool]] = {
    "number": _is_number,
    "integer": _is_integer,
    "boolean": _is_boolean,
    "string": _is_string,
}
CLEAN_TYPES: dict[str, frozenset[type]] = {
    "number": frozenset({int, float}),
    "integer": frozenset({int}),
    "boolean": frozenset({bool}),
    "string": frozenset({str}),
}


NUMPY_TYPES: dict[str, type] = {"number": np.float64, "integer": np.int64, "boolean": np.bool_}


def _is_unknown_category(column: Column, value: Any) -> bool:
    if column.categories is None or column.unknown_categories:
        return False
    return value not in column.categories


def _problem(column: Column, value: Any) -> str | None:
    """Why ``value`` does not fit ``column``, or None when it does."""
    if value is None:
        return None if column.nullable else "null is not allowed in this column"
    if not ACCEPTS[column.kind](value):
        return f"expected {column.kind}, got {json_type(value)} {shorten(value)}"
    if column.kind in ("number", "integer") and not np.isfinite(value):
        return f"{value} is not a finite number"
    if _is_unknown_category(column, value):
        return f"unknown category {shorten(value)}; known: {list(column.categories or ())}"
    return None


_CONTAINER_REPR = reprlib.Repr()
_CONTAINER_REPR.maxlevel = 3
"""Arrays and objects are shown this deep at most: the full repr of a value nested a
thousand levels (orjson parses up to 1024) raises RecursionError, and of a long array
costs as much as the array, only for the first 60 characters to be kept."""


def shorten(value: Any) -> str:
    text = _CONTAINER_REPR.repr(value) if isinstance(value, list | dict) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _clip(name: str, limit: int = 200) -> str:
    """A client-chosen column name, short enough to echo in an error."""
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _errors(column: Column, values: list[Any]) -> list[dict[str, Any]]:
    errors = []
    for row, value in enumerate(values):
        problem = _problem(column, value)
        if problem is not None:
            errors.append({"column": column.name, "row": row, "problem": problem})
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
    return errors


def _fast_array(column: Column, values: list[Any]) -> np.ndarray | list[Any] | None:
    """The column as a typed array when every value is clean, else None (take the slow path)."""
    if not set(map(type, values)) <= CLEAN_TYPES[column.kind]:
        return None
    closed = column.categories is not None and not column.unknown_categories
    if closed and not set(values) <= set(column.categories or ()):
        return None
    if column.kind == "string":
        return values
    try:  # fromiter: a third faster than np.array for a list of Python numbers
        array: np.ndarray = np.fromiter(values, dtype=NUMPY_TYPES[column.kind], count=len(values))
    except OverflowError:
        return None
    if column.kind == "number" and not np.isfinite(array).all():
        return None
    return array


def _convert(column: Column, values: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """Converted values and the problems found (empty when the column is valid)."""
    array = _fast_array(column, values)
    if array is not None:
        return array, []
    errors = _errors(column, values)
    if errors:
        return None, errors
    if column.kind in ("number", "integer"):  # valid with nulls, or integral floats
        return np.array([np.nan if v is None else v for v in values], dtype=float), []
    return values, []


def _select(schema: Schema, columns: Mapping[str, list[Any]], unknown: str) -> list[dict]:
    problems = [
        {"column": name, "problem": "required column is missing"}
        for name in schema.names
        if name not in columns
    ]
    if unknown == "reject":
        known = set(schema.names)
        problems += [
            {"column": _clip(name), "problem": "unknown column (the model does not read it)"}
            for name in columns
            if name not in known
        ]
    return problems


def build_frame(columns: Columns) -> pd.DataFrame:
    """The pipeline's input in one step: the columns already carry the schema's dtypes."""
    return pd.DataFrame(columns, copy=False)


def to_frame(schema: Schema, columns: Mapping[str, list[Any]], *, unknown: str) -> pd.DataFrame:
    """Validate raw columns and build the frame (warm-up and packing use this)."""
    return build_frame(validate(schema, columns, unknown=unknown))


def validate(schema: Schema, columns: Mapping[str, list[Any]], *, unknown: str) -> Columns:
    """Check raw columns against the schema; converted columns in the schema's order."""
    problems = _select(schema, columns, unknown)
    converted: Columns = {}
    for column in schema.columns:
        if column.name not in columns:
            continue
        values, errors = _convert(column, columns[column.name])
        problems += errors
        converted[column.name] = values
    if problems:
        shown = problems[:MAX_REPORTED_ERRORS]
        raise SchemaViolation(
            _summary(shown, len(problems)),
            details={"errors": shown, "error_count": len(problems)},
        )
    return converted


def _summary(problems: list[dict[str, Any]], total: int) -> str:
    first = problems[0]
    where = f"column {first['column']!r}" + (f", row {first['row']}" if "row" in first else "")
    more = f" (and {total - 1} more)" if total > 1 else ""
    return f"input does not match the model's schema: {where}: {first['problem']}{more}"


def parse(
    body: bytes, schema: Schema, *, max_rows: int, unknown: str, output: str | None = None
) -> Request:
    """Parse and validate a ``POST /model/predict`` body; ``output``: the query's
    ``?output=``, if any, which a body's ``"output"`` must then agree with."""
    document = parse_json(body)
    if not isinstance(document, dict):
        raise BadRequest(f"the body is a JSON {json_type(document)}; expected an object")
    if "data" not in document:
        raise BadRequest('the body has no "data" field', details={"fields": list(document)})
    asked = check_output(document.get("output", output or "predict"), '"output"')
    if output is not None and asked != output:
        raise BadRequest(f'"output" is {asked!r} but ?output= is {output!r}: say it once')
    extra = sorted(set(document) - {"data", "output"})
    if extra:
        raise BadRequest(f"unknown fields in the body: {extra}", details={"fields": extra})
    raw = raw_columns(document["data"], max_rows)
    return from_columns(raw, schema, output=asked, max_rows=max_rows, unknown=unknown)


def check_output(output: Any, where: str) -> str:
    """One of :data:`OUTPUTS`, else a 400 saying which are."""
    if output not in OUTPUTS:
        raise BadRequest(
            f"{where} must be one of {list(OUTPUTS)}, got {shorten(output)}",
            details={"allowed": list(OUTPUTS)},
        )
    return str(output)


def from_columns(
    raw: Mapping[str, list[Any]], schema: Schema, *, output: str, max_rows: int, unknown: str
) -> Request:
    """Raw columns, as any front door (this API's JSON, CSV, the Open Inference Protocol,
    MLflow's formats) reads them, checked and converted: from here every protocol shares
    the batching, the plan, the limits and the messages."""
    rows = _check_shape(raw, max_rows)
    columns = validate(schema, raw, unknown=unknown)
    return Request(columns=columns, output=output, rows=rows, has_nulls=_has_nulls(schema, raw))


def _has_nulls(schema: Schema, raw: Mapping[str, list[Any]]) -> bool:
    """Whether a nullable column carries a null: then scikit-learn must check for NaN itself."""
    return any(c.nullable and None in raw.get(c.name, ()) for c in schema.columns)
