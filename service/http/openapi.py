"""The OpenAPI 3.1 document of the whole API, generated from the running app so it cannot drift.

Each route declares its operation where it is defined, with :func:`operation`: a tag, a
summary, and its responses status by status (the response model its view returns, or a
sentence). This module walks Flask's ``url_map`` (a route that declares nothing makes
:func:`document` fail) and reads the models' schemas from pydantic, whose JSON Schema is
OpenAPI 3.1's dialect. Written here is only what this service alone knows: the prediction
request, built from the loaded model's schema and the settings, the prediction response
narrowed to the model's labels, and the error codes each status can carry, collected from
``service.errors``, werkzeug and nginx's own pages (``deploy/nginx/errors.conf``).
``service.http.docs`` serves the document and its Swagger UI page.
"""

from __future__ import annotations

import csv
import http
import importlib.metadata
import inspect
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from weakref import WeakKeyDictionary

from flask import Flask
from flask.typing import RouteCallable
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema
from werkzeug.exceptions import default_exceptions
from werkzeug.routing import Rule

from service.errors import REQUEST_ID_PATTERN, ErrorBody, ErrorDetail, code_for, every_error
from service.model.predictor import OUTPUTS, Model, Prediction
from service.model.schema import Column
from service.protocols import open_inference
from service.settings import Settings

OPENAPI_VERSION = "3.1.0"
JSON = dict[str, Any]
"""A JSON object: a schema, an operation, a response."""
REF = "#/components/schemas/{model}"
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
"""Added by Flask to every route; not operations of their own."""

NGINX_CODES: dict[int, tuple[str, ...]] = {
    400: ("bad_request", "request_header_too_large"),
    403: ("forbidden",),
    404: ("not_found",),
    405: ("method_not_allowed",),
    413: ("request_entity_too_large",),
    414: ("request_uri_too_large",),
    429: ("too_many_requests",),
    503: ("overloaded", "service_unavailable"),
    504: ("upstream_timeout",),
}
"""Codes of the JSON error pages nginx answers with itself (a unit test reads errors.conf)."""

DEPLOYMENT_FAILURES: dict[int, str] = {
    500: "A bug (`internal_error`): no trace in the body; the log has it under the request id.",
    429: "Past this client's request rate (`too_many_requests`, nginx's CLIENT_RATE; the probes "
    "and the admin API are exempt): retry after Retry-After.",
    503: "Unavailable for now: full (`overloaded`: nginx's cap on predictions in flight, or the "
    "worker's MAX_QUEUED_ROWS), no worker answered, model not ready, worker replaced: retry "
    "after Retry-After.",
    504: "Too slow: a prediction past its deadline, or no answer in time for nginx.",
}
"""Failures any operation can meet, added to every operation."""

RETRY_STATUSES = frozenset({"429", "503"})
RETRY_AFTER: JSON = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}

ADMIN_FAILURES: dict[int, str] = {
    401: "No bearer token (`unauthorized`).",
    403: "Wrong token, admin API disabled (no ADMIN_TOKEN), or an address outside nginx's "
    "allow list (`forbidden`).",
}
"""What a route guarded by the admin token adds to its own responses."""


# ---- what a route declares -----------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a declaration may read: the served model and the settings."""

    model: Model
    settings: Settings


@dataclass(frozen=True)
class Reply:
    """A response that is more than a model or a sentence: another media type (its body a
    string), headers, links to what a client does next."""

    description: str = ""
    """Defaults to the body model's first docstring line."""
    body: type[BaseModel] | None = None
    media: tuple[str, ...] = ()
    headers: Mapping[str, JSON] = field(default_factory=dict)
    links: Mapping[str, JSON] = field(default_factory=dict)


Responses = Mapping[int, type[BaseModel] | Reply | str]
"""Per status: the model the view returns as JSON, a :class:`Reply`, or a sentence (for a
status of 400 or more, the error shape with the codes that status can carry)."""


@dataclass(frozen=True)
class Operation:
    """One route's documentation, declared beside the route by :func:`operation`."""

    tag: str
    summary: str
    responses: Responses
    description: str = ""
    parameters: tuple[JSON, ...] = ()
    secured: bool | Callable[[Settings], bool] = False
    """Whether the admin token guards it, which adds :data:`ADMIN_FAILURES`."""
    details: Callable[[Context], JSON] | None = None
    """What the served model and the settings decide: a request body, a description."""
    error_body: type[BaseModel] | None = None
    """The error shape of a protocol's own routes (Open Inference, MLflow); None: ours."""


DECLARED: WeakKeyDictionary[Callable[..., Any], Operation] = WeakKeyDictionary()
"""Every view's declaration, by view function (unwrapped: a decorator may wrap it later).
Weak: a view made per app, like the metrics one, goes with its app."""


def operation(
    tag: str,
    summary: str,
    responses: Responses,
    *,
    description: str = "",
    parameters: tuple[JSON, ...] = (),
    secured: bool | Callable[[Settings], bool] = False,
    details: Callable[[Context], JSON] | None = None,
    error_body: type[BaseModel] | None = None,
) -> Callable[[Callable[..., Any]], RouteCallable]:
    """Declare a view's documentation where the view is defined; :func:`document` reads it.

    The view may return a response model: ``ServiceFlask`` renders those, which Flask's own
    types do not know, hence the cast to a route Flask accepts.
    """

    def declare(view: Callable[..., Any]) -> RouteCallable:
        DECLARED[inspect.unwrap(view)] = Operation(
            tag, summary, responses, description, parameters, secured, details, error_body
        )
        return cast("RouteCallable", view)

    return declare


def parameter(
    where: str, name: str, schema: JSON, description: str = "", *, required: bool = True
) -> JSON:
    """A path, header or query parameter; ``schema_of`` gives a typed one its schema."""
    result: JSON = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        result["description"] = description
    return result


def schema_of(annotation: Any) -> JSON:
    """The JSON Schema of a type (``Sha256``: a string and its pattern), for a parameter."""
    return TypeAdapter(annotation).json_schema()


class UndocumentedRoute(LookupError):
    """A route's view declares no :func:`operation`; declare one beside it."""


def declaration_of(app: Flask, rule: Rule) -> Operation:
    """The operation a route's view declared (looked up through any wrapper)."""
    found = DECLARED.get(inspect.unwrap(app.view_functions[rule.endpoint]))
    if found is None:
        raise UndocumentedRoute(
            f"route {rule.rule} (endpoint {rule.endpoint!r}) declares no "
            "service.http.openapi.operation"
        )
    return found


# ---- component schemas, from the response models ----------------------------------------------


class ResponseSchemas(GenerateJsonSchema):
    """pydantic's JSON Schema for response bodies: no per-field titles (they repeat the
    names), no defaults (a field left unset is left out of the body, never sent as one)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


def model_schemas(models: set[type[BaseModel]]) -> dict[str, JSON]:
    """Every model's schema, and those of the models inside it, by component name."""
    ordered = sorted(models, key=lambda m: m.__name__)
    _, top = models_json_schema(
        [(m, "serialization") for m in ordered], ref_template=REF, schema_generator=ResponseSchemas
    )
    return top.get("$defs", {})


def ref(name: str) -> JSON:
    return {"$ref": REF.format(model=name)}


def json_body(schema: JSON) -> JSON:
    return {"application/json": {"schema": schema}}


def first_line(model: type[BaseModel] | None) -> str:
    """A response's description: the first line of its model's docstring."""
    return (inspect.getdoc(model) or "").split("\n", 1)[0] if model is not None else ""


def response_object(
    status: int, declared: type[BaseModel] | Reply | str, error_body: type[BaseModel] | None
) -> JSON:
    """One declared response as OpenAPI's response object."""
    if isinstance(declared, str):
        return failure(status, declared, error_body) if status >= 400 else {"description": declared}
    full = declared if isinstance(declared, Reply) else Reply(body=declared)
    content = {media: {"schema": {"type": "string"}} for media in full.media}
    if full.body is not None:
        content.update(json_body(ref(full.body.__name__)))
    result: JSON = {"description": full.description or first_line(full.body)}
    if content:
        result["content"] = content
    if full.headers:
        result["headers"] = dict(full.headers)
    if full.links:
        result["links"] = dict(full.links)
    return result


def failure(status: int, description: str, protocol: type[BaseModel] | None = None) -> JSON:
    """An error response: the one error shape, with the codes this status can carry; on a
    protocol's route, its own shape or ours (nginx's pages: a body over the limit, no
    worker answering)."""
    schema = ref(f"Error{status}")
    if protocol is not None:
        schema = {"anyOf": [ref(protocol.__name__), schema]}
    response: JSON = {"description": description, "content": json_body(schema)}
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}
        }
    return response


def body_models(operations: Iterable[Operation]) -> set[type[BaseModel]]:
    """The response models the declared operations name, and the error shape."""
    models: set[type[BaseModel]] = {ErrorBody}
    for op in operations:
        if op.error_body is not None:
            models.add(op.error_body)
        for declared in op.responses.values():
            body = declared.body if isinstance(declared, Reply) else declared
            if isinstance(body, type):
                models.add(body)
    return models


# ---- error codes, from the code that raises them ------------------------------------------


def error_codes(status: int) -> list[str]:
    """Every ``error.code`` a response of ``status`` can carry, whoever produced it."""
    codes = {c.code for c in every_error() if c.status_code == status}
    werkzeug = default_exceptions.get(status)
    if werkzeug is not None:
        codes.add(code_for(werkzeug().name))
    codes.update(NGINX_CODES.get(status, ()))
    return sorted(codes)


def error_schema(status: int) -> JSON:
    return {
        "title": f"Error {status} ({http.HTTPStatus(status).phrase})",
        "allOf": [
            ref(ErrorBody.__name__),
            {"properties": {"error": {"properties": {"code": {"enum": error_codes(status)}}}}},
        ],
    }


# ---- the prediction request and response, from the loaded model -----------------------------

NUMBERS = "Finite: a literal beyond a double's range (about 1.8e308) is malformed JSON (400)."
"""Not a ``maximum``: the server rounds to a double first, so no JSON Schema bound is exact."""
KIND_SCHEMAS: dict[str, JSON] = {
    "number": {"type": "number", "description": NUMBERS},
    "integer": {"type": "integer", "description": NUMBERS + " Integral floats (2.0) count."},
    "boolean": {"type": "boolean"},
    "string": {"type": "string"},
}


def nullable(schema: JSON) -> JSON:
    return {"anyOf": [schema, {"type": "null"}]}


def value_schema(column: Column) -> JSON:
    """One cell: the kind's JSON type, the known categories when others are rejected, null."""
    schema = dict(KIND_SCHEMAS[column.kind])
    if column.categories is not None and not column.unknown_categories:
        schema = {"type": schema["type"], "enum": list(column.categories)}
    return nullable(schema) if column.nullable else schema


def columns_layout(columns: tuple[Column, ...], settings: Settings) -> JSON:
    """``{column: [values]}``; every column, all of one length (which JSON Schema cannot say)."""
    rows = {"minItems": 1, "maxItems": settings.max_rows}
    extra: JSON | bool = False
    if settings.unknown_columns == "ignore":
        extra = {"type": "array", **rows}
    return {
        "title": "Columns",
        "description": "One array per column, all of the same length (one value per row).",
        "type": "object",
        "properties": {
            c.name: {"type": "array", "items": value_schema(c), **rows} for c in columns
        },
        "required": [c.name for c in columns],
        "additionalProperties": extra,
    }


def records_layout(columns: tuple[Column, ...], settings: Settings) -> JSON:
    """``[{column: value}]``; a key absent from a record reads as null, so a nullable column
    may be left out of some records, but not out of all of them."""
    record: JSON = {
        "type": "object",
        "properties": {c.name: value_schema(c) for c in columns},
        "required": [c.name for c in columns if not c.nullable],
        "additionalProperties": settings.unknown_columns == "ignore",
    }
    schema: JSON = {
        "title": "Records",
        "description": "One object per row.",
        "type": "array",
        "items": record,
        "minItems": 1,
        "maxItems": settings.max_rows,
    }
    present = [{"contains": {"required": [c.name]}} for c in columns if c.nullable]
    if present:
        schema["allOf"] = present
    return schema


def prediction_request(
    columns: tuple[Column, ...], allowed_outputs: list[str], settings: Settings
) -> JSON:
    """The ``POST /model/predict`` body: the model's columns in either layout."""
    return {
        "type": "object",
        "properties": {
            "data": {
                "oneOf": [columns_layout(columns, settings), records_layout(columns, settings)]
            },
            "output": {
                "description": "`proba` and `both` add probabilities and classes.",
                "enum": allowed_outputs,
                "default": "predict",
            },
        },
        "required": ["data"],
        "additionalProperties": False,
    }


def served_prediction(schema: JSON, model: Model, settings: Settings) -> JSON:
    """:class:`Prediction` narrowed to the served model: its labels, as many
    probabilities as classes (none without ``predict_proba``), at most MAX_ROWS rows."""
    properties = schema["properties"]
    classes = model.classes
    properties["predictions"]["items"] = (
        {"type": "number"} if classes is None else {"enum": classes}
    )
    properties["rows"]["maximum"] = settings.max_rows
    if model.has_proba and classes is not None:
        width = {"minItems": len(classes), "maxItems": len(classes)}
        properties["probabilities"]["items"].update(width)
        properties["classes"].update(const=classes, **width)
    else:
        del properties["probabilities"], properties["classes"]
    return schema


def outputs(model: Model) -> list[str]:
    return list(OUTPUTS) if model.has_proba else ["predict"]


def prediction_details(ctx: Context) -> JSON:
    """What ``POST /model/predict`` takes: the served model's columns, within the limits."""
    example = {"data": {name: [value] for name, value in ctx.model.schema.example.items()}}
    csv_example = csv_row(ctx.model.schema.example)
    return {
        "description": (
            f"At most {ctx.settings.max_rows} rows and {ctx.settings.max_body_bytes} bytes. "
            f"Unknown columns are {ctx.settings.unknown_columns}ed. "
            "The request schema is the served model's."
        ),
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ref("PredictionRequest"), "example": example},
                "text/csv": {
                    "schema": {"type": "string", "description": CSV_BODY},
                    "example": csv_example,
                },
            },
        },
        "parameters": [
            parameter(
                "query",
                "output",
                {"enum": list(OUTPUTS), "default": "predict"},
                "What to answer with, for a CSV body; a JSON body may say it here or in `output` "
                "(the two must agree).",
                required=False,
            )
        ],
    }


def invocations_details(ctx: Context) -> JSON:
    """What ``POST /invocations`` takes: the served model's columns in MLflow's layouts."""
    columns, settings = ctx.model.schema.columns, ctx.settings
    example = {"dataframe_records": [ctx.model.schema.example]}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": mlflow_request(columns, settings),
                    "example": example,
                },
                "text/csv": {"schema": {"type": "string", "description": CSV_BODY}},
            },
        }
    }


def mlflow_request(columns: tuple[Column, ...], settings: Settings) -> JSON:
    """Exactly one of MLflow's four layouts of a DataFrame."""
    names = [c.name for c in columns]
    width = {"minItems": len(names), "maxItems": len(names)}
    split = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"enum": names}, "uniqueItems": True, **width},
            "data": {
                "type": "array",
                "items": {"type": "array", **width},
                "minItems": 1,
                "maxItems": settings.max_rows,
            },
            "index": {"type": "array"},
        },
        "required": ["columns", "data"],
        "additionalProperties": False,
    }
    records = records_layout(columns, settings)
    either = {"oneOf": [records, columns_layout(columns, settings)]}
    layouts = {
        "dataframe_split": split,
        "dataframe_records": records,
        "instances": either,
        "inputs": either,
    }
    return {
        "oneOf": [
            {
                "type": "object",
                "properties": {key: schema},
                "required": [key],
                "additionalProperties": False,
            }
            for key, schema in layouts.items()
        ]
    }


def infer_details(ctx: Context) -> JSON:
    """What ``POST /v2/models/{name}/infer`` takes: one tensor per column of the served model."""
    names = [c.name for c in ctx.model.schema.columns]
    tensor = {
        "type": "object",
        "properties": {
            "name": {"enum": names},
            "datatype": {"enum": open_inference.ACCEPTED},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
        "required": ["name", "datatype", "shape", "data"],
    }
    output = {
        "type": "object",
        "properties": {"name": {"enum": list(open_inference.outputs(ctx.model.has_proba))}},
        "required": ["name"],
    }
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": tensor, "minItems": 1},
            "outputs": {"type": "array", "items": output, "minItems": 1},
        },
        "required": ["inputs"],
        "additionalProperties": False,
    }
    example = {
        "inputs": [
            {
                "name": c.name,
                "datatype": open_inference.DATATYPE[c.kind],
                "shape": [1],
                "data": [ctx.model.schema.example[c.name]],
            }
            for c in ctx.model.schema.columns
        ]
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


CSV_BODY = (
    "A header line naming the columns, then one line per row; quoted fields as RFC 4180; "
    "an empty cell is a missing value; UTF-8 without a byte-order mark."
)


def csv_row(example: dict[str, Any]) -> str:
    """The example row as a CSV body."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(example)
    writer.writerow(["" if value is None else value for value in example.values()])
    return out.getvalue()


# ---- the generator ----------------------------------------------------------------------------


def openapi_path(rule: Rule) -> str:
    """``/models/<sha256>`` and ``/static/<path:filename>`` as OpenAPI templates."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)


def operation_for(rule: Rule, method: str, declaration: Operation, ctx: Context) -> JSON:
    """The route's declared operation, completed with what every operation shares."""
    result: JSON = {
        "tags": [declaration.tag],
        "summary": declaration.summary,
        "operationId": rule.endpoint + ("" if method == "get" else f".{method}"),
        "responses": {
            str(status): response_object(status, declared, declaration.error_body)
            for status, declared in sorted(declaration.responses.items())
        },
    }
    if declaration.description:
        result["description"] = declaration.description
    if declaration.parameters:
        result["parameters"] = list(declaration.parameters)
    if declaration.details is not None:
        result.update(declaration.details(ctx))
    secured = declaration.secured
    if secured is True or (callable(secured) and secured(ctx.settings)):
        result["security"] = [{"adminToken": []}]
        for status, why in ADMIN_FAILURES.items():
            result["responses"].setdefault(str(status), failure(status, why))
    declared_parameters = {p["name"] for p in result.get("parameters", []) if p["in"] == "path"}
    missing = sorted(rule.arguments - declared_parameters)
    if missing:
        result["parameters"] = result.get("parameters", []) + [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in missing
        ]
    for status, why in DEPLOYMENT_FAILURES.items():
        result["responses"].setdefault(str(status), failure(status, why, declaration.error_body))
    for status, response in result["responses"].items():
        headers = response.setdefault("headers", {})
        headers.setdefault("X-Request-ID", {"$ref": "#/components/headers/X-Request-ID"})
        if status in RETRY_STATUSES:
            headers.setdefault("Retry-After", RETRY_AFTER)
    return result


def route_methods(rule: Rule) -> list[str]:
    return sorted(m.lower() for m in (rule.methods or set()) - IMPLICIT_METHODS)


def declarations(app: Flask) -> list[tuple[Rule, Operation]]:
    """Every route with its declared operation; fails on an undocumented route."""
    ordered = sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))
    return [(rule, declaration_of(app, rule)) for rule in ordered]


def paths(declared_routes: list[tuple[Rule, Operation]], ctx: Context) -> JSON:
    """Every route of the app, each method an operation."""
    result: JSON = {}
    for rule, declaration in declared_routes:
        item = result.setdefault(openapi_path(rule), {})
        for method in route_methods(rule):
            item[method] = operation_for(rule, method, declaration, ctx)
    return result


def statuses(paths_object: JSON) -> set[int]:
    return {
        int(status)
        for item in paths_object.values()
        for operation in item.values()
        for status in operation["responses"]
    }


def components(models: set[type[BaseModel]], ctx: Context, used: set[int]) -> JSON:
    schemas = model_schemas(models)
    name = Prediction.__name__
    schemas[name] = served_prediction(schemas[name], ctx.model, ctx.settings)
    schemas["PredictionRequest"] = prediction_request(
        ctx.model.schema.columns, outputs(ctx.model), ctx.settings
    )
    schemas.update({f"Error{s}": error_schema(s) for s in sorted(used | {404, 405}) if s >= 400})
    return {
        "schemas": schemas,
        "headers": {
            "X-Request-ID": {
                "description": "The request's id (yours if well formed); logs carry it too.",
                "required": True,
                "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
            },
            "WWW-Authenticate": {"required": True, "schema": {"const": "Bearer"}},
        },
        "responses": {
            "MethodNotAllowed": {
                "description": "Any path with a method it does not list; `Allow` lists those.",
                "headers": {"Allow": {"required": True, "schema": {"type": "string"}}},
                "content": json_body(ref("Error405")),
            },
            "NotFound": {"description": "Any other path.", "content": json_body(ref("Error404"))},
        },
        "securitySchemes": {
            "adminToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "ADMIN_TOKEN (or ADMIN_TOKEN_FILE) of the server.",
            }
        },
    }


def error_shape() -> str:
    """The error shape in a sentence, from its model: ``{"error": {"code", ...}}``."""
    fields = ", ".join(f'"{name}"' for name in ErrorDetail.model_fields)
    return '`{"error": {' + fields + "}}`"


def package_version() -> str:
    try:
        return importlib.metadata.version("model-serving")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


class OpenAPIDocument(BaseModel):
    """The OpenAPI document."""

    openapi: str
    info: JSON
    tags: list[JSON]
    paths: JSON
    components: JSON


def document(app: Flask) -> OpenAPIDocument:
    """The OpenAPI document of ``app`` as it is now: its routes and its served model."""
    runtime = app.extensions["runtime"]
    ctx = Context(model=runtime.model, settings=runtime.settings)
    declared_routes = declarations(app)
    paths_object = paths(declared_routes, ctx)
    models = body_models(declaration for _, declaration in declared_routes)
    return OpenAPIDocument(
        openapi=OPENAPI_VERSION,
        info={
            "title": "model-serving",
            "version": package_version(),
            "summary": "A scikit-learn pipeline over HTTP",
            "description": (
                f"Serving `{type(ctx.model.estimator).__name__}` "
                f"(sha256 `{ctx.model.sha256}`). Every error has one shape: {error_shape()}."
            ),
        },
        tags=[
            {"name": name} for name in ("model", "probes", "admin", "documentation", "operations")
        ],
        paths=paths_object,
        components=components(models, ctx, statuses(paths_object)),
    )
