"""CSV request bodies: a header row naming the columns, then one line per row.

Python's ``csv`` module reads them (quoted fields, doubled quotes, line breaks inside
quotes, in C): pandas' ``read_csv`` would guess each column's type, where the served
model's schema already says it, and would turn a stray word in a number column into a
silent NaN instead of an error naming the cell. Cells are converted by their column's
kind; an empty cell is a missing value. A cell that does not convert is passed on as text,
so the shared validation names it ("expected number, got string 'abc'").

What a CSV writer gets wrong is said plainly, before validation: no header, another
delimiter, a byte-order mark, a ragged line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from service.errors import BadRequest, SchemaViolation
from service.model import payload
from service.model.payload import Request, shorten
from service.model.schema import Schema

DELIMITERS = (";", "\t", "|")
"""Other delimiters a header may reveal: one field holding the column names joined by one."""
BOM = b"\xef\xbb\xbf"
TRUE, FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


def _number(cell: str) -> Any:
    return float(cell)


def _integer(cell: str) -> Any:
    try:
        return int(cell)
    except ValueError:
        return float(cell)  # "2.0" is an integer, as 2.0 is in JSON


def _boolean(cell: str) -> Any:
    lowered = cell.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(cell)


CONVERT: dict[str, Callable[[str], Any]] = {
    "number": _number,
    "integer": _integer,
    "boolean": _boolean,
    "string": str,
}


def _cell(convert: Callable[[str], Any], cell: str) -> Any:
    if cell == "":
        return None
    try:
        return convert(cell)
    except ValueError:
        return cell


def _text(body: bytes) -> str:
    if body.startswith(BOM):
        raise BadRequest(
            "the CSV starts with a byte-order mark (U+FEFF): save it as UTF-8 without one",
            details={"line": 1},
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"the CSV is not UTF-8: byte {exc.start} is {body[exc.start : exc.start + 1]!r}",
            details={"byte": exc.start},
        ) from None


def _check_header(header: list[str], schema: Schema) -> None:
    known = set(schema.names)
    if known.intersection(header):
        if len(set(header)) < len(header):
            repeated = sorted({name for name in header if header.count(name) > 1})
            raise BadRequest(f"the CSV header repeats {repeated}", details={"columns": repeated})
        return
    if len(header) == 1:
        for delimiter in DELIMITERS:
            if known.intersection(header[0].split(delimiter)):
                raise BadRequest(
                    f"the CSV header is one field, {shorten(header[0])}: separate fields "
                    f"with commas, not {delimiter!r}",
                    details={"line": 1, "delimiter": delimiter},
                )
    raise BadRequest(
        "the CSV's first line must be a header naming the columns; it names none of the "
        f"model's ({list(schema.names)[:10]}): {shorten(','.join(header))}",
        details={"line": 1},
    )


def read(body: bytes, schema: Schema) -> tuple[dict[str, list[Any]], list[int]]:
    """Raw columns by header name, and the CSV line each row starts on (for errors). The
    row limit is checked after (MAX_BODY_BYTES bounds what is read)."""
    reader = csv.reader(io.StringIO(_text(body), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise BadRequest("the CSV is empty: send a header line, then rows")
        _check_header(header, schema)
        kinds = {c.name: c.kind for c in schema.columns}
        converters = [CONVERT[kinds.get(name, "string")] for name in header]
        cells: list[list[Any]] = [[] for _ in header]
        lines: list[int] = []
        start = reader.line_num + 1
        for row in reader:
            if not row:  # a blank line; csv gives [] for it
                start = reader.line_num + 1
                continue
            if len(row) != len(header):
                raise BadRequest(
                    f"CSV line {start} has {len(row)} fields; the header has {len(header)}",
                    details={"line": start, "fields": len(row), "header_fields": len(header)},
                )
            lines.append(start)
            for values, convert, cell in zip(cells, converters, row, strict=True):
                values.append(_cell(convert, cell))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise BadRequest(
            f"the CSV is malformed at line {reader.line_num}: {exc}",
            details={"line": reader.line_num},
        ) from None
    return dict(zip(header, cells, strict=True)), lines


def located(exc: SchemaViolation, lines: list[int]) -> SchemaViolation:
    """The shared validation's error with each row's CSV line beside it: a CSV's author
    counts lines, not rows."""
    errors = [
        {**error, "line": lines[error["row"]]} if "row" in error else error
        for error in exc.details.get("errors", [])
    ]
    message = exc.message
    if errors and "line" in errors[0]:
        first = errors[0]
        message = message.replace(
            f"row {first['row']}", f"row {first['row']} (CSV line {first['line']})", 1
        )
    return SchemaViolation(message, details={**exc.details, "errors": errors})


def parse(body: bytes, schema: Schema, *, output: str, max_rows: int, unknown: str) -> Request:
    """A CSV body as a checked request; errors name the CSV line as well as the row."""
    raw, lines = read(body, schema)
    try:
        return payload.from_columns(raw, schema, output=output, max_rows=max_rows, unknown=unknown)
    except SchemaViolation as exc:
        raise located(exc, lines) from None
