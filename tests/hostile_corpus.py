"""Hostile inputs for the public listener, as data: what is sent, and what must come back.

``tests/integration/test_hostile.py`` sends every case to the real stack (nginx in
front of gunicorn) with a raw socket, so each byte on the wire is the one written
here: no client library normalises a path, adds a header or refuses a method.

The demo model reads ``age`` (integer), ``income`` and ``debt_ratio`` (numbers),
``region`` (categories, unknown ones ignored) and ``employment`` (categories,
unknown ones rejected). The stack under test runs with ``MAX_ROWS`` and
``MAX_BODY_BYTES`` below, so the row limit can be crossed with a body under the
byte limit, and the byte limit with a body streamed rather than held.

Every expected answer is the service's JSON error shape, or a 2xx where the input
is odd but valid; none is a 5xx. Cases marked ``by="nginx"`` are answered by nginx
before any worker sees the request. The other protocols' routes answer in their own
shapes (:attr:`Case.protocol`): the Open Inference Protocol's ``{"error": message}``, where
``code`` is words the message must hold, and MLflow's ``{"error_code", "message"}``.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_ROWS = 1000
BODY_LIMIT = 4 * 1024 * 1024
"""Big enough for a million short values and a 1 MB string, small next to 100 MB."""
HUGE = 100 * 1024 * 1024
MEGABYTE = 1024 * 1024

ROW: dict[str, Any] = {
    "age": 41,
    "income": 52000.0,
    "debt_ratio": 0.31,
    "region": "east",
    "employment": "salaried",
}
JSON = (("Content-Type", "application/json"),)
PREDICTION = frozenset({"predictions", "model", "rows"})
PROBABILITIES = PREDICTION | {"probabilities", "classes"}


@dataclass(frozen=True)
class Streamed:
    """A body too large to hold: ``prefix``, then ``filler`` repeated up to ``size`` bytes,
    generated as it is sent; with ``chunked`` it goes out in chunked transfer encoding."""

    prefix: bytes
    filler: bytes
    size: int
    chunked: bool = False

    def pieces(self) -> Iterator[bytes]:
        block = self.filler * (64 * 1024 // len(self.filler))
        yield self.prefix
        sent = len(self.prefix)
        while sent < self.size:
            piece = block[: self.size - sent]
            sent += len(piece)
            yield piece


Body = bytes | Callable[[], bytes] | Streamed
"""Literal bytes; a function for bodies of megabytes (built when sent); or a stream."""


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    code: str | None
    """The error code expected in the body; None for a success."""
    body: Body = b""
    method: str = "POST"
    target: str = "/model/predict"
    headers: tuple[tuple[str, str], ...] = JSON
    content_length: bool = True
    """Add ``Content-Length`` for the body (streams: or ``Transfer-Encoding: chunked``)."""
    version: str = "HTTP/1.1"
    host: bool = True
    raw: bytes | None = None
    """Bytes sent verbatim instead of a request built from the fields above."""
    by: str = "app"
    """Who answers: ``app`` (Flask), ``nginx`` (no worker sees the request) or ``gunicorn``
    (its HTTP parser refuses the request before Flask runs)."""
    heavy: bool = False
    """Megabytes of input or 100,000 levels of nesting: right after it, the stack must
    still answer a valid prediction (every case checks that no worker was replaced)."""
    may_drop: bool = False
    """nginx may close the connection before the whole body is sent; if no answer can be
    read then, the case still passes (the workers are checked all the same)."""
    keys: frozenset[str] | None = None
    """For a success: the exact top-level keys of the JSON answer."""
    group: str = ""

    @property
    def protocol(self) -> str:
        """Whose error shape the answer has: ``v2``, ``mlflow`` or ``native``."""
        if self.target.startswith("/v2/"):
            return "v2"
        return "mlflow" if self.target == "/invocations" else "native"


def dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def columns(rows: int = 1, **replace: list[Any]) -> dict[str, list[Any]]:
    """The valid row repeated ``rows`` times as columns, with some columns replaced."""
    data = {name: [value] * rows for name, value in ROW.items()}
    data.update(replace)
    return data


def predict_body(rows: int = 1, **replace: list[Any]) -> bytes:
    return dumps({"data": columns(rows, **replace)})


def with_literal(column: str, literal: str) -> bytes:
    """A valid body whose ``column`` holds one value written as raw JSON text."""
    others = dumps({"data": {k: v for k, v in columns().items() if k != column}})
    return others[:-2] + f',"{column}":[{literal}]}}}}'.encode()


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


VALID = predict_body()


def _multipart() -> bytes:
    return (
        b'--XyZ\r\nContent-Disposition: form-data; name="data"\r\n'
        b"Content-Type: application/json\r\n\r\n" + VALID + b"\r\n--XyZ--\r\n"
    )


def _million_values() -> bytes:
    """1,000,001 rows of one column in 2 MB: the row limit, not memory, must stop it."""
    return b'{"data":{"age":[' + b"0," * 1_000_000 + b"0]}}"


def _million_empty_records() -> bytes:
    return b'{"data":[' + b"{}," * 1_000_000 + b"{}]}"


def _records(rows: int) -> bytes:
    return dumps({"data": [ROW] * rows})


def _many_unknown_columns() -> bytes:
    return dumps({"data": columns() | {f"c{i}": [1] for i in range(10_000)}})


def _deep(depth: int, opener: str, closer: str) -> Callable[[], bytes]:
    return lambda: ('{"data":' + opener * depth + "1" + closer * depth + "}").encode()


def _big_string(column: str) -> Callable[[], bytes]:
    return lambda: predict_body(**{column: ["x" * MEGABYTE]})


def _just_over_limit() -> bytes:
    head = b'{"data":{"age":['
    return head + b"1," * ((BODY_LIMIT - len(head)) // 2) + b"1]}}"


def request(method: str, target: str, *headers: str, version: str = "HTTP/1.1") -> bytes:
    """A raw request head for cases that break HTTP itself."""
    lines = [f"{method} {target} {version}", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


INFER = "/v2/models/pipeline/infer"
CSV = (("Content-Type", "text/csv"),)
CSV_HEADER = ",".join(ROW)
CSV_ROW = ",".join(str(value) for value in ROW.values())
DATATYPES = {int: "INT64", float: "FP64", str: "BYTES"}


def tensors(rows: int = 1, **replace: dict[str, Any]) -> list[dict[str, Any]]:
    """The valid row as Open Inference tensors, with some tensors' fields replaced."""
    built = {
        name: {"name": name, "datatype": DATATYPES[type(v)], "shape": [rows], "data": [v] * rows}
        for name, v in ROW.items()
    }
    for name, fields in replace.items():
        built[name] = {**built.get(name, {"name": name}), **fields}
    return list(built.values())


def infer_body(rows: int = 1, **replace: dict[str, Any]) -> bytes:
    return dumps({"inputs": tensors(rows, **replace)})


def csv_text(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _csv_over_row_limit() -> bytes:
    return csv_text(CSV_HEADER, *[CSV_ROW] * (MAX_ROWS + 1))


def _protocol_cases() -> list[Case]:
    """Malformed Open Inference requests and CSV bodies, on every route that reads them."""
    without_age = [t for t in tensors() if t["name"] != "age"]
    return [
        Case(
            "v2-valid",
            200,
            None,
            infer_body(),
            target=INFER,
            keys=frozenset({"model_name", "model_version", "outputs"}),
        ),
        Case(
            "v2-wrong-datatype",
            422,
            "datatype 'BYTES' does not fit",
            infer_body(age={"datatype": "BYTES", "data": ["41"]}),
            target=INFER,
        ),
        Case(
            "v2-shapes-differ",
            422,
            "different lengths",
            infer_body(age={"shape": [2], "data": [41, 42]}),
            target=INFER,
        ),
        Case(
            "v2-unknown-input",
            422,
            "unknown column",
            infer_body(height={"datatype": "FP64", "shape": [1], "data": [1.8]}),
            target=INFER,
        ),
        Case(
            "v2-missing-input",
            422,
            "'age': required column is missing",
            dumps({"inputs": without_age}),
            target=INFER,
        ),
        Case(
            "v2-data-not-shape",
            400,
            "shape [2] holds 2 values, data has 1",
            infer_body(age={"shape": [2]}),
            target=INFER,
        ),
        Case(
            "v2-two-dimensions",
            400,
            "is not [N] or [N, 1]",
            infer_body(age={"shape": [1, 2], "data": [41, 42]}),
            target=INFER,
        ),
        Case(
            "v2-non-utf8-bytes",
            400,
            "not valid JSON",
            infer_body().replace(b'"east"', b'"\xff\xfe"'),
            target=INFER,
        ),
        Case(
            "v2-no-inputs",
            400,
            '"inputs" must be a non-empty array',
            dumps({"inputs": {}}),
            target=INFER,
        ),
        Case(
            "v2-tensor-not-object",
            400,
            "expected a tensor object",
            dumps({"inputs": [1]}),
            target=INFER,
        ),
        Case(
            "v2-binary-extension",
            400,
            "binary tensor data extension",
            infer_body(),
            target=INFER,
            headers=(*JSON, ("Inference-Header-Content-Length", "12")),
        ),
        Case(
            "v2-unknown-model",
            404,
            "'other' is not served here",
            infer_body(),
            target="/v2/models/other/infer",
        ),
        Case("csv-valid", 200, None, csv_text(CSV_HEADER, CSV_ROW), headers=CSV, keys=PREDICTION),
        Case("csv-ragged", 400, "bad_request", csv_text(CSV_HEADER, CSV_ROW, "41,1"), headers=CSV),
        Case("csv-no-header", 400, "bad_request", csv_text(CSV_ROW, CSV_ROW), headers=CSV),
        Case(
            "csv-semicolons",
            400,
            "bad_request",
            csv_text(CSV_HEADER.replace(",", ";"), CSV_ROW.replace(",", ";")),
            headers=CSV,
        ),
        Case(
            "csv-byte-order-mark",
            400,
            "bad_request",
            b"\xef\xbb\xbf" + csv_text(CSV_HEADER, CSV_ROW),
            headers=CSV,
        ),
        Case(
            "csv-latin-1",
            400,
            "bad_request",
            csv_text(CSV_HEADER, CSV_ROW).replace(b"east", b"\xe9ast"),
            headers=CSV,
        ),
        Case(
            "csv-stray-quote",
            400,
            "bad_request",
            csv_text(CSV_HEADER, CSV_ROW.replace("east", '"ea"st')),
            headers=CSV,
        ),
        Case("csv-empty", 400, "bad_request", b"", headers=CSV),
        Case(
            "csv-bad-cell",
            422,
            "schema_violation",
            csv_text(CSV_HEADER, CSV_ROW.replace("41", "forty-one", 1)),
            headers=CSV,
        ),
        Case("csv-over-row-limit", 413, "too_many_rows", _csv_over_row_limit, headers=CSV),
        Case(
            "mlflow-csv-ragged",
            400,
            "BAD_REQUEST",
            csv_text(CSV_HEADER, "41"),
            target="/invocations",
            headers=CSV,
        ),
        Case(
            "mlflow-no-layout",
            400,
            "BAD_REQUEST",
            dumps({"data": columns()}),
            target="/invocations",
        ),
        Case("mlflow-not-json", 400, "MALFORMED_REQUEST", b"{", target="/invocations"),
        Case(
            "mlflow-bad-value",
            422,
            "INVALID_PARAMETER_VALUE",
            dumps({"dataframe_records": [{**ROW, "age": "x"}]}),
            target="/invocations",
        ),
        Case(
            "mlflow-text-plain",
            415,
            "BAD_REQUEST",
            VALID,
            target="/invocations",
            headers=(("Content-Type", "text/plain"),),
        ),
    ]


def _groups() -> Iterator[tuple[str, list[Case]]]:
    yield ("protocols", _protocol_cases())
    yield (
        "malformed-json",
        [
            Case("empty-body", 400, "malformed_json", b""),
            Case("whitespace-only", 400, "malformed_json", b" \n\t "),
            Case("lone-brace", 400, "malformed_json", b"{"),
            Case("truncated-after-key", 400, "malformed_json", b'{"data":'),
            Case("truncated-halfway", 400, "malformed_json", VALID[: len(VALID) // 2]),
            Case("truncated-last-byte", 400, "malformed_json", VALID[:-1]),
            Case("trailing-garbage", 400, "malformed_json", VALID + b" x"),
            Case("two-documents", 400, "malformed_json", VALID + VALID),
            Case("single-quotes", 400, "malformed_json", VALID.replace(b'"', b"'")),
            Case("trailing-comma", 400, "malformed_json", VALID[:-2] + b",}}"),
            Case("comment", 400, "malformed_json", VALID[:-1] + b"/* hi */}"),
            Case("unquoted-keys", 400, "malformed_json", b"{data:{age:[41]}}"),
            Case("python-none", 400, "malformed_json", with_literal("age", "None")),
            Case("byte-order-mark", 400, "malformed_json", b"\xef\xbb\xbf" + VALID),
            Case("utf-16", 400, "malformed_json", VALID.decode().encode("utf-16")),
            Case(
                "gzip-content-encoding",
                400,
                "malformed_json",
                gzip.compress(VALID),
                headers=(*JSON, ("Content-Encoding", "gzip")),
            ),
        ],
    )
    yield (
        "content-type",
        [
            Case(
                "text-plain",
                415,
                "unsupported_media_type",
                VALID,
                headers=(("Content-Type", "text/plain"),),
            ),
            Case(
                "form-urlencoded",
                415,
                "unsupported_media_type",
                b"data=" + VALID,
                headers=(("Content-Type", "application/x-www-form-urlencoded"),),
            ),
            Case("none", 415, "unsupported_media_type", VALID, headers=()),
            Case(
                "multipart",
                415,
                "unsupported_media_type",
                _multipart(),
                headers=(("Content-Type", "multipart/form-data; boundary=XyZ"),),
            ),
            Case(
                "text-json",
                415,
                "unsupported_media_type",
                VALID,
                headers=(("Content-Type", "text/json"),),
            ),
            Case(
                "garbage",
                415,
                "unsupported_media_type",
                VALID,
                headers=(("Content-Type", ";;;=="),),
            ),
            Case(
                "json-charset-utf8",
                200,
                None,
                VALID,
                headers=(("Content-Type", "application/json; charset=utf-8"),),
                keys=PREDICTION,
            ),
            Case(
                "json-charset-latin1-ignored",
                200,
                None,
                VALID,
                headers=(("Content-Type", "application/json; charset=iso-8859-1"),),
                keys=PREDICTION,
            ),
            Case(
                "json-upper-case",
                200,
                None,
                VALID,
                headers=(("Content-Type", "APPLICATION/JSON"),),
                keys=PREDICTION,
            ),
        ],
    )
    yield (
        "top-level",
        [
            Case("empty-array", 400, "bad_request", b"[]"),
            Case("array-of-bodies", 400, "bad_request", b"[" + VALID + b"]"),
            Case("number", 400, "bad_request", b"42"),
            Case("string", 400, "bad_request", b'"data"'),
            Case("null", 400, "bad_request", b"null"),
            Case("boolean", 400, "bad_request", b"true"),
            Case("body-as-json-string", 400, "bad_request", dumps(VALID.decode())),
        ],
    )
    yield (
        "data-field",
        [
            Case("missing", 400, "bad_request", b"{}"),
            Case("misspelled", 400, "bad_request", dumps({"Data": columns()})),
            Case("null", 400, "bad_request", b'{"data":null}'),
            Case("number", 400, "bad_request", b'{"data":1}'),
            Case("string", 400, "bad_request", b'{"data":"age=41"}'),
            Case("boolean", 400, "bad_request", b'{"data":false}'),
            Case("column-not-array", 400, "bad_request", dumps({"data": ROW})),
            Case("column-is-object", 400, "bad_request", predict_body(age={"0": 41})),
            Case("unknown-field", 400, "bad_request", dumps({"data": columns(), "debug": True})),
            Case("output-unknown", 400, "bad_request", dumps({"data": columns(), "output": "x"})),
            Case("output-null", 400, "bad_request", dumps({"data": columns(), "output": None})),
        ],
    )
    yield (
        "shape",
        [
            Case("ragged", 422, "schema_violation", predict_body(age=[41, 42])),
            Case("one-column-empty", 422, "schema_violation", predict_body(age=[])),
            Case("all-columns-empty", 422, "schema_violation", predict_body(rows=0)),
            Case("empty-object", 422, "schema_violation", b'{"data":{}}'),
            Case("empty-array", 422, "schema_violation", b'{"data":[]}'),
            Case("empty-record", 422, "schema_violation", b'{"data":[{}]}'),
            Case(
                "missing-column",
                422,
                "schema_violation",
                dumps({"data": {k: v for k, v in columns().items() if k != "age"}}),
            ),
            Case("unknown-column", 422, "schema_violation", predict_body(zip=["75001"])),
            Case("10k-unknown-columns", 422, "schema_violation", _many_unknown_columns),
        ],
    )
    yield (
        "records",
        [
            Case("valid", 200, None, dumps({"data": [ROW, ROW]}), keys=PREDICTION),
            Case("arrays", 400, "bad_request", dumps({"data": [list(ROW.values())]})),
            Case("numbers", 400, "bad_request", b'{"data":[1,2,3]}'),
            Case("nulls", 400, "bad_request", b'{"data":[null]}'),
            Case("strings", 400, "bad_request", b'{"data":["age"]}'),
            Case("object-then-number", 400, "bad_request", dumps({"data": [ROW, 5]})),
            Case(
                "missing-key",
                422,
                "schema_violation",
                dumps({"data": [{k: v for k, v in ROW.items() if k != "income"}]}),
            ),
            Case("extra-key", 422, "schema_violation", dumps({"data": [ROW | {"x": 1}]})),
        ],
    )
    yield (
        "rows",
        [
            Case("max-rows-exactly", 200, None, predict_body(rows=MAX_ROWS), keys=PREDICTION),
            Case("max-rows-plus-one", 413, "too_many_rows", predict_body(rows=MAX_ROWS + 1)),
            Case("2000-records", 413, "too_many_rows", lambda: _records(2000)),
            Case("million-values", 413, "too_many_rows", _million_values, heavy=True),
            Case("million-empty-records", 413, "too_many_rows", _million_empty_records, heavy=True),
        ],
    )
    too_large = "request_entity_too_large"
    prefix = b'{"data":{"age":['
    yield (
        "body-size",
        [
            Case("just-over-limit", 413, too_large, _just_over_limit, by="nginx", heavy=True),
            Case(
                "100mb-content-length",
                413,
                too_large,
                Streamed(prefix, b"1,", HUGE),
                by="nginx",
                heavy=True,
                may_drop=True,
            ),
            Case(
                "100mb-chunked",
                413,
                too_large,
                Streamed(prefix, b"1,", HUGE, chunked=True),
                by="nginx",
                heavy=True,
                may_drop=True,
            ),
            Case(
                "100mb-announced-10-bytes-sent",
                413,
                too_large,
                b"0123456789",
                headers=(*JSON, ("Content-Length", str(HUGE))),
                content_length=False,
                by="nginx",
            ),
        ],
    )
    yield (
        "nesting",
        [
            Case("arrays-100k", 400, "malformed_json", _deep(100_000, "[", "]"), heavy=True),
            Case("objects-100k", 400, "malformed_json", _deep(100_000, '{"a":', "}"), heavy=True),
            Case("unclosed-100k", 400, "malformed_json", lambda: b"[" * 100_000),
            Case("arrays-1025", 400, "malformed_json", _deep(1025, "[", "]")),
            Case(
                "1000-in-a-column",
                422,
                "schema_violation",
                with_literal("age", nested(1000, "41")),
            ),
            Case(
                "1000-in-output",
                400,
                "bad_request",
                VALID[:-1] + f',"output":{nested(1000, "0")}}}'.encode(),
            ),
        ],
    )
    yield (
        "numbers",
        [
            Case("1e400", 400, "malformed_json", with_literal("income", "1e400")),
            Case("minus-1e400", 400, "malformed_json", with_literal("income", "-1e400")),
            Case("10000-digit-integer", 400, "malformed_json", with_literal("age", "9" * 10_000)),
            Case("2**70-in-integer", 200, None, with_literal("age", str(2**70)), keys=PREDICTION),
            Case("2**70-in-number", 200, None, with_literal("income", str(2**70)), keys=PREDICTION),
            Case("2**63-in-integer", 200, None, with_literal("age", str(2**63)), keys=PREDICTION),
            Case(
                "below-int64-in-integer",
                200,
                None,
                with_literal("age", str(-(2**63) - 1)),
                keys=PREDICTION,
            ),
            Case(
                "1.7e308-in-two-columns",
                200,
                None,
                predict_body(income=[1.7e308], debt_ratio=[-1.7e308]),
                keys=PREDICTION,
            ),
            Case("1e-400-underflow", 200, None, with_literal("income", "1e-400"), keys=PREDICTION),
            Case(
                "100k-digit-fraction",
                200,
                None,
                with_literal("debt_ratio", "0." + "3" * 100_000),
                keys=PREDICTION,
            ),
            Case("fraction-in-integer", 422, "schema_violation", predict_body(age=[41.5])),
        ],
    )
    yield (
        "non-finite",
        [
            Case("NaN", 400, "malformed_json", with_literal("income", "NaN")),
            Case("Infinity", 400, "malformed_json", with_literal("income", "Infinity")),
            Case("minus-Infinity", 400, "malformed_json", with_literal("income", "-Infinity")),
            Case("nan-lower-case", 400, "malformed_json", with_literal("income", "nan")),
            Case("inf-lower-case", 400, "malformed_json", with_literal("income", "inf")),
            Case("NaN-as-string", 422, "schema_violation", predict_body(income=["NaN"])),
        ],
    )
    yield (
        "types",
        [
            Case("true-in-integer", 422, "schema_violation", predict_body(age=[True])),
            Case("false-in-number", 422, "schema_violation", predict_body(income=[False])),
            Case("null-in-integer", 422, "schema_violation", predict_body(age=[None])),
            Case("null-in-number", 422, "schema_violation", predict_body(debt_ratio=[None])),
            Case("null-in-category", 422, "schema_violation", predict_body(region=[None])),
            Case("numeric-string", 422, "schema_violation", predict_body(age=["41"])),
            Case("number-in-category", 422, "schema_violation", predict_body(employment=[1])),
            Case("object-in-number", 422, "schema_violation", predict_body(income=[{"v": 1}])),
            Case("array-in-number", 422, "schema_violation", predict_body(income=[[1.0]])),
        ],
    )
    yield (
        "strings",
        [
            Case("1mb-in-open-category", 200, None, _big_string("region"), keys=PREDICTION),
            Case("1mb-in-closed-category", 422, "schema_violation", _big_string("employment")),
            Case("1mb-in-integer", 422, "schema_violation", _big_string("age")),
        ],
    )
    yield (
        "categories",
        [
            Case("closed-unknown", 422, "schema_violation", predict_body(employment=["retired"])),
            Case(
                "closed-wrong-case", 422, "schema_violation", predict_body(employment=["SALARIED"])
            ),
            Case("closed-non-ascii", 422, "schema_violation", predict_body(employment=["salarié"])),
            Case("open-unknown", 200, None, predict_body(region=["atlantis"]), keys=PREDICTION),
            Case("open-empty-string", 200, None, predict_body(region=[""]), keys=PREDICTION),
            Case("open-non-ascii", 200, None, predict_body(region=["nörth"]), keys=PREDICTION),
            Case("open-nul-char", 200, None, predict_body(region=["\x00"]), keys=PREDICTION),
        ],
    )
    yield (
        "duplicate-keys",
        [
            Case(
                "output-last-wins",
                200,
                None,
                VALID[:-1] + b',"output":"predict","output":"both"}',
                keys=PROBABILITIES,
            ),
            Case(
                "column-last-wins",
                422,
                "schema_violation",
                VALID[:-2] + b',"age":["forty-one"]}}',
            ),
            Case("data-last-wins", 400, "bad_request", VALID[:-1] + b',"data":null}'),
        ],
    )
    yield (
        "utf-8",
        [
            Case("invalid-byte", 400, "malformed_json", VALID.replace(b"east", b"e\xffst")),
            Case("overlong-slash", 400, "malformed_json", VALID.replace(b"east", b"\xc0\xaf")),
            Case("invalid-in-key", 400, "malformed_json", VALID.replace(b"region", b"regi\xf5n")),
            Case("truncated-sequence", 400, "malformed_json", VALID.replace(b"east", b"\xe2\x82")),
            Case(
                "cesu-8-surrogate", 400, "malformed_json", VALID.replace(b"east", b"\xed\xa0\x80")
            ),
            Case(
                "latin-1-body",
                400,
                "malformed_json",
                VALID.replace(b"east", "ést".encode("latin-1")),
            ),
            Case("lone-high-escape", 400, "malformed_json", VALID.replace(b"east", b"\\ud800")),
            Case("lone-low-escape", 400, "malformed_json", VALID.replace(b"east", b"\\udc00")),
        ],
    )
    yield (
        "query-string",
        [
            Case(  # ?output= chooses the output for a body that does not (CSV's way)
                "output-in-query",
                200,
                None,
                VALID,
                target="/model/predict?output=both",
                keys=PROBABILITIES,
            ),
            Case(
                "output-in-query-and-body-differ",
                400,
                "bad_request",
                dumps({"data": columns(), "output": "predict"}),
                target="/model/predict?output=both",
            ),
            Case(
                "request-timeout-not-a-number",
                400,
                "bad_request",
                VALID,
                headers=(*JSON, ("X-Request-Timeout", "soon")),
            ),
            Case(
                "request-timeout-generous",
                200,
                None,
                VALID,
                headers=(*JSON, ("X-Request-Timeout", "1e9")),
                keys=PREDICTION,
            ),
            Case(
                "output-in-query-unknown",
                400,
                "bad_request",
                VALID,
                target="/model/predict?output=null",
            ),
            Case("debug-flag", 200, None, VALID, target="/model/predict?debug=1", keys=PREDICTION),
            Case(
                "debugger-resource",
                404,
                "not_found",
                method="GET",
                target="/?__debugger__=yes&cmd=resource&f=debugger.js",
                headers=(),
            ),
            Case("debugger-console", 404, "not_found", method="GET", target="/console", headers=()),
            Case(
                "script-on-probe",
                200,
                None,
                method="GET",
                target="/healthz?q=%3Cscript%3Ealert(1)%3C/script%3E",
                headers=(),
                keys=frozenset({"status"}),
            ),
            Case(
                "6kb-query",
                200,
                None,
                VALID,
                target="/model/predict?pad=" + "a" * 6000,
                by="gunicorn",
                keys=PREDICTION,
            ),
        ],
    )
    not_allowed = "method_not_allowed"
    yield (
        "methods",
        [
            Case("put-predict", 405, not_allowed, VALID, method="PUT"),
            Case("patch-predict", 405, not_allowed, VALID, method="PATCH"),
            Case("delete-predict", 405, not_allowed, method="DELETE", headers=()),
            Case("get-predict", 405, not_allowed, method="GET", headers=()),
            Case("head-predict", 405, not_allowed, method="HEAD", headers=()),
            Case("invented-method", 405, not_allowed, VALID, method="FROB"),
            Case("post-model", 405, not_allowed, VALID, target="/model"),
            Case("delete-model", 405, not_allowed, method="DELETE", target="/model", headers=()),
            Case("post-healthz", 405, not_allowed, VALID, target="/healthz"),
            Case("put-download", 405, not_allowed, b"x", method="PUT", target="/model/download"),
            Case(
                "trace-root", 405, not_allowed, method="TRACE", target="/", headers=(), by="nginx"
            ),
            Case("trace-predict", 405, not_allowed, method="TRACE", headers=(), by="nginx"),
            Case("lower-case-get", 400, "bad_request", method="get", target="/healthz", by="nginx"),
            Case(
                "connect",
                400,
                "bad_request",
                raw=request("CONNECT", "127.0.0.1:22", "Host: 127.0.0.1:22"),
                by="nginx",
            ),
        ],
    )
    yield (
        "paths",
        [
            Case("trailing-slash", 404, "not_found", VALID, target="/model/predict/"),
            Case("double-slashes", 404, "not_found", VALID, target="//model//predict"),
            Case("dot-segment", 404, "not_found", VALID, target="/model/./predict"),
            Case("dot-dot-inside", 404, "not_found", VALID, target="/model/../model/predict"),
            Case("unknown", 404, "not_found", method="GET", target="/nowhere", headers=()),
            Case("invalid-percent", 404, "not_found", method="GET", target="/%ff", headers=()),
            Case(
                "internal-location",
                404,
                "not_found",
                method="GET",
                target="/_artifacts/pipeline.pkl",
                headers=(),
                by="nginx",
            ),
            Case(
                "metrics", 404, "not_found", method="GET", target="/metrics", headers=(), by="nginx"
            ),
            Case(
                "dot-dot-escape",
                400,
                "bad_request",
                method="GET",
                target="/../etc/passwd",
                headers=(),
                by="nginx",
            ),
            Case(
                "encoded-dot-dot-escape",
                400,
                "bad_request",
                method="GET",
                target="/%2e%2e/%2e%2e/etc/passwd",
                headers=(),
                by="nginx",
            ),
            Case(
                "encoded-nul",
                400,
                "bad_request",
                method="GET",
                target="/healthz%00.json",
                headers=(),
                by="nginx",
            ),
            Case(
                "20kb-url",
                414,
                "request_uri_too_large",
                method="GET",
                target="/" + "a" * 20_000,
                headers=(),
                by="nginx",
            ),
            Case(
                "asterisk-form",
                400,
                "bad_request",
                raw=request("OPTIONS", "*", "Host: x"),
                by="nginx",
            ),
        ],
    )
    yield (
        "http",
        [
            Case(
                "20kb-header",
                400,
                "request_header_too_large",
                method="GET",
                target="/healthz",
                headers=(("X-Padding", "a" * 20_000),),
                by="nginx",
            ),
            Case("missing-host", 400, "bad_request", VALID, host=False, by="nginx"),
            Case(
                "negative-content-length",
                400,
                "bad_request",
                VALID,
                headers=(*JSON, ("Content-Length", "-1")),
                content_length=False,
                by="nginx",
            ),
            Case(
                "two-content-lengths",
                400,
                "bad_request",
                VALID,
                headers=(*JSON, ("Content-Length", str(len(VALID))), ("Content-Length", "2")),
                content_length=False,
                by="nginx",
            ),
            Case(
                "content-length-and-chunked",
                400,
                "bad_request",
                b"2\r\n{}\r\n0\r\n\r\n",
                headers=(*JSON, ("Content-Length", "2"), ("Transfer-Encoding", "chunked")),
                content_length=False,
                by="nginx",
            ),
            Case(
                "unknown-transfer-encoding",
                400,
                "bad_request",
                VALID,
                headers=(*JSON, ("Transfer-Encoding", "gzip")),
                content_length=False,
                by="nginx",
            ),
            Case(
                "http-2-request-line",
                400,
                "bad_request",
                method="GET",
                target="/healthz",
                headers=(),
                version="HTTP/2.0",
                by="nginx",
            ),
            Case(
                "obsolete-line-folding",
                400,
                "bad_request",
                method="GET",
                target="/healthz",
                headers=(("X-Folded", "a\r\n b"),),
                by="nginx",
            ),
            Case(
                "bare-cr-in-header",
                400,
                "bad_request",
                method="GET",
                target="/healthz",
                headers=(("X-Bare-CR", "a\rb"),),
                by="nginx",
            ),
            Case(
                "bad-chunk-size",
                400,
                "bad_request",
                b"zz\r\n{}\r\n0\r\n\r\n",
                headers=(*JSON, ("Transfer-Encoding", "chunked")),
                content_length=False,
                by="nginx",
            ),
            Case(
                "5kb-path",
                404,
                "not_found",
                method="GET",
                target="/" + "a" * 5000,
                headers=(),
                by="gunicorn",
            ),
            Case(
                "120-headers",
                200,
                None,
                method="GET",
                target="/healthz",
                headers=tuple((f"X-Header-{i}", "v") for i in range(120)),
                by="gunicorn",
                keys=frozenset({"status"}),
            ),
            Case(
                "control-char-in-header",
                400,
                "bad_request",
                method="GET",
                target="/healthz",
                headers=(("X-Control", "a\x01b"),),
                by="gunicorn",
            ),
            Case(
                "raw-utf-8-in-path",
                400,
                "bad_request",
                method="GET",
                target="/h\xc3\xa9",
                headers=(),
                by="gunicorn",
            ),
            Case(
                "tls-hello-on-plain-port",
                400,
                "bad_request",
                raw=b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(64) + b"\r\n\r\n",
                by="nginx",
            ),
        ],
    )


CASES: list[Case] = [
    dataclasses.replace(case, group=group) for group, cases in _groups() for case in cases
]
