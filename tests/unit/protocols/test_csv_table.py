"""CSV bodies: read by the schema's kinds, and every way a CSV writer goes wrong named."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import BadRequest, PayloadTooLarge, SchemaViolation
from service.model.schema import Column, Schema
from service.protocols import csv_table


def parse(body: str | bytes, schema: Schema, max_rows: int = 100) -> dict:
    raw = body.encode() if isinstance(body, str) else body
    request = csv_table.parse(raw, schema, output="predict", max_rows=max_rows, unknown="reject")
    return request.columns


def test_cells_are_read_by_their_column_kind(schema: Schema) -> None:
    columns = parse("age,income,member,plan\n30,1.5,true,pro\n41,,FALSE,basic\n", schema)
    assert columns["age"].tolist() == [30, 41]
    assert columns["income"][0] == 1.5 and np.isnan(columns["income"][1])  # empty: missing
    assert columns["member"].tolist() == [True, False]
    assert columns["plan"] == ["pro", "basic"]


def test_quoted_fields_keep_commas_quotes_and_line_breaks() -> None:
    schema = Schema(columns=(Column("note", "string"),), example={}, source="")
    columns = parse('note\n"a, b"\n"say ""hi"""\n"two\nlines"\n', schema)
    assert columns["note"] == ["a, b", 'say "hi"', "two\nlines"]


def test_column_order_follows_the_header_not_the_schema(schema: Schema) -> None:
    columns = parse("plan,member,income,age\npro,1,2.5,7\n", schema)
    assert list(columns) == ["age", "income", "member", "plan"]  # the schema's order
    assert columns["age"].tolist() == [7]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xef\xbb\xbfage,income,member,plan\n1,2,true,pro\n", "byte-order mark"),
        ("1,2.5,true,pro\n3,4,false,basic\n", "must be a header"),
        ("age;income;member;plan\n1;2;true;pro\n", "not ';'"),
        ("age\tincome\tmember\tplan\n1\t2\ttrue\tpro\n", "not '\\t'"),
        ("age,income,member,plan\n1,2,true,pro\n3,4,false\n", "CSV line 3 has 3 fields"),
        ("age,income,member,plan\n1,2,true,pro,extra\n", "CSV line 2 has 5 fields"),
        (b"age,income,member,plan\n1,2,true,\xff\n", "not UTF-8"),
        ("", "empty"),
        ('age,income,member,plan\n1,2,true,"pro"x\n', "malformed at line 2"),
        ("age,age,member,plan\n1,2,true,pro\n", "repeats ['age']"),
    ],
    ids=[
        "bom",
        "no-header",
        "semicolons",
        "tabs",
        "short-row",
        "long-row",
        "latin1",
        "empty",
        "bad-quote",
        "repeated-name",
    ],
)
def test_malformed_csv_is_a_400_saying_what_is_wrong(
    schema: Schema, body: str | bytes, words: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        parse(body, schema)
    assert caught.value.status_code == 400
    assert words in caught.value.message, caught.value.message


def test_a_bad_cell_is_named_by_column_row_and_line(schema: Schema) -> None:
    body = "age,income,member,plan\n1,2,true,pro\n\n2,abc,true,pro\n"
    with pytest.raises(SchemaViolation) as caught:
        parse(body, schema)
    assert "column 'income', row 1 (CSV line 4)" in caught.value.message
    [error] = caught.value.details["errors"]
    assert (error["row"], error["line"]) == (1, 4)
    assert "got string 'abc'" in error["problem"]


def test_a_header_alone_is_empty_data(schema: Schema) -> None:
    with pytest.raises(SchemaViolation, match="data is empty"):
        parse("age,income,member,plan\n", schema)


def test_rows_past_the_limit_are_refused(schema: Schema) -> None:
    body = "age,income,member,plan\n" + "1,2,true,pro\n" * 3
    with pytest.raises(PayloadTooLarge, match="3 rows exceed the limit of 2"):
        parse(body, schema, max_rows=2)
