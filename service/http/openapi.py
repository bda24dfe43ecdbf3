"""The OpenAPI 3.1 document of the whole API, generated from the running app so it cannot drift.

Paths, methods and path parameters come from Flask's ``url_map``: a route with no entry
in :data:`OPERATIONS` makes :func:`document` fail, and a unit test compares the two sets.
What a route cannot tell (bodies, responses) is declared here, keyed by endpoint name.
The prediction request and response are built from the loaded model's schema and the
settings (columns, JSON types, closed categories, nullability, row limit, classes), so the
document describes the model actually served. Error codes per status are collected from
``service.errors``, werkzeug, and the nginx error pages (``deploy/nginx/errors.conf``).

``GET /docs`` is Swagger UI from the assets bundled in the ``flask-swagger-ui`` wheel (a
Swagger UI 5 build, which renders OpenAPI 3.1), served by this blueprint: no CDN.
"""

from __future__ import annotations

import http
import importlib.metadata
import importlib.resources
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from flask import Blueprint, Flask, Response, current_app, url_for
from werkzeug.exceptions import NotFound, default_exceptions
from werkzeug.routing import Rule

from service.errors import every_error
from service.model.predictor import OUTPUTS, Model
from service.model.schema import KINDS, Column
from service.settings import Settings

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.1.0"
JSON = dict[str, Any]
"""A JSON object: a schema, an operation, a response."""
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
"""Added by Flask to every route; not operations of their own."""

REQUEST_ID_PATTERN = "^[A-Za-z0-9._-]{1,128}$"
SHA256_PATTERN = "^[0-9a-f]{64}$"
NGINX_CODES: dict[int, tuple[str, ...]] = {
    400: ("bad_request", "request_header_too_large"),
    403: ("forbidden",),
    404: ("not_found",),
    405: ("method_not_allowed",),
    413: ("request_entity_too_large",),
    414: ("request_uri_too_large",),
    503: ("service_unavailable",),
    504: ("upstream_timeout",),
}
"""Codes of the JSON error pages nginx answers with itself (deploy/nginx/errors.conf)."""

DEPLOYMENT_FAILURES: dict[int, str] = {
    500: "A bug (`internal_error`): no trace in the body; the log has it under the request id.",
    503: "Unavailable for now (no worker answered, model not ready, worker replaced): retry.",
    504: "Too slow: a prediction past its deadline, or no answer in time for nginx.",
}
"""Failures any operation can meet, added to every operation."""


@dataclass(frozen=True)
class Context:
    """What operation builders may read: the served model and the settings."""

    model: Model
    settings: Settings


Builder = Callable[[Context], dict[str, Any]]


class UndocumentedRoute(LookupError):
    """A route has no entry in :data:`OPERATIONS`; add one beside the others."""


# ---- small constructors ---------------------------------------------------------------------


def ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: JSON) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def request_id_header() -> dict[str, Any]:
    return {"$ref": "#/components/headers/X-Request-ID"}


def ok(description: str, schema: JSON | None = None, **extra: Any) -> dict[str, Any]:
    """A success response with a JSON body (``schema``), or the ``content`` given in ``extra``."""
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = json_body(schema)
    response.update(extra)
    return response


def failure(status: int, description: str) -> dict[str, Any]:
    """An error response: the one error shape, with the codes this status can carry."""
    response: dict[str, Any] = {
        "description": description,
        "content": json_body(ref(f"Error{status}")),
    }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}
        }
    return response


def nullable(schema: JSON) -> JSON:
    return {"anyOf": [schema, {"type": "null"}]}


def strings(*names: str) -> dict[str, JSON]:
    return {name: {"type": "string"} for name in names}


# ---- error codes, from the code that raises them ------------------------------------------


def error_codes(status: int) -> list[str]:
    """Every ``error.code`` a response of ``status`` can carry, whoever produced it."""
    codes = {c.code for c in every_error() if c.status_code == status}
    werkzeug = default_exceptions.get(status)
    if werkzeug is not None:
        # service.http.app.http_error names werkzeug's exceptions this way.
        codes.add(werkzeug().name.lower().replace(" ", "_"))
    codes.update(NGINX_CODES.get(status, ()))
    return sorted(codes)


def error_schema(status: int) -> JSON:
    return {
        "title": f"Error {status} ({http.HTTPStatus(status).phrase})",
        "allOf": [
            ref("Error"),
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


def outputs(model: Model) -> list[str]:
    return list(OUTPUTS) if model.has_proba else ["predict"]


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


def prediction_response(model: Model, settings: Settings) -> JSON:
    classes = model.classes
    label: JSON = {"type": "number"} if classes is None else {"enum": classes}
    properties: dict[str, JSON] = {
        "predictions": {"type": "array", "items": label, "minItems": 1},
        "model": {
            "type": "object",
            "properties": {"sha256": {"type": "string", "pattern": SHA256_PATTERN}},
            "required": ["sha256"],
            "additionalProperties": False,
        },
        "rows": {"type": "integer", "minimum": 1, "maximum": settings.max_rows},
    }
    if model.has_proba and classes is not None:
        width = {"minItems": len(classes), "maxItems": len(classes)}
        properties["probabilities"] = {
            "description": "One row per input row, one probability per class, in `classes` order.",
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "number", "minimum": 0, "maximum": 1},
                **width,
            },
        }
        properties["classes"] = {"type": "array", "const": classes, **width}
    return {
        "type": "object",
        "properties": properties,
        "required": ["predictions", "model", "rows"],
        "additionalProperties": False,
    }


def example_request(model: Model) -> dict[str, Any]:
    return {"data": {name: [value] for name, value in model.schema.example.items()}}


# ---- static component schemas -----------------------------------------------------------------

FEATURE: JSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "type": {"enum": list(KINDS)},
        "required": {"type": "boolean"},
        "nullable": {"type": "boolean"},
        "categories": nullable({"type": "array"}),
    },
    "required": ["name", "type", "nullable"],
}

VERSIONS: JSON = {
    "type": "object",
    "properties": {
        side: {
            "type": "object",
            "properties": {
                "sklearn": nullable({"type": "string"}),
                "python": nullable({"type": "string"}),
            },
        }
        for side in ("packed", "running")
    },
}

VERSION_RECORD: JSON = {
    "description": "A stored version, as the store records it.",
    "type": "object",
    "properties": {
        "sha256": {"type": "string", "pattern": SHA256_PATTERN},
        "uploaded_at": {"type": "string", "format": "date-time"},
        "source": {"enum": ["bootstrap", "upload"]},
        "model_type": {"type": "string"},
        "task": {"enum": ["classifier", "regressor"]},
        "features": {"type": "array", "items": ref("Feature")},
        "packed_at": nullable({"type": "string"}),
        "size_bytes": {"type": "integer", "minimum": 0},
        "versions": ref("Versions"),
        "active": {"type": "boolean"},
    },
    "required": ["sha256", "uploaded_at", "model_type", "task", "features"],
}

SHA_OR_NULL = nullable({"type": "string", "pattern": SHA256_PATTERN})

STATIC_SCHEMAS: dict[str, JSON] = {
    "Error": {
        "description": "The one error shape; `code` is stable, `message` is for people.",
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                    "request_id": {"type": "string", "pattern": REQUEST_ID_PATTERN},
                },
                "required": ["code", "message", "details", "request_id"],
                "additionalProperties": False,
            }
        },
        "required": ["error"],
        "additionalProperties": False,
    },
    "Feature": FEATURE,
    "Versions": VERSIONS,
    "VersionRecord": VERSION_RECORD,
    "ModelMetadata": {
        "type": "object",
        "properties": {
            "features": {"type": "array", "items": ref("Feature")},
            "steps": {
                "type": "array",
                "items": {"type": "object", "properties": strings("name", "class")},
            },
            "model_type": {"type": "string"},
            "task": {"enum": ["classifier", "regressor"]},
            "classes": nullable({"type": "array"}),
            "outputs": {"type": "array", "items": {"enum": list(OUTPUTS)}},
            "sha256": {"type": "string", "pattern": SHA256_PATTERN},
            "size_bytes": {"type": "integer", "minimum": 0},
            "loaded_at": {"type": "string", "format": "date-time"},
            "schema_source": {"type": "string"},
            "versions": ref("Versions"),
            "packed_at": nullable({"type": "string"}),
        },
        "required": ["features", "steps", "model_type", "task", "outputs", "sha256"],
    },
}


# ---- operations, keyed by endpoint name -------------------------------------------------------


def health(ctx: Context) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {"status": {"const": "ok"}},
        "required": ["status"],
    }
    return {
        "tags": ["probes"],
        "summary": "Liveness: the process answers, whatever the model's state",
        "responses": {"200": ok("Alive.", body)},
    }


def ready(ctx: Context) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {
            "status": {"const": "ready"},
            "reason": {"type": "string"},
            "sha256": {"type": "string", "pattern": SHA256_PATTERN},
        },
        "required": ["status", "sha256"],
    }
    return {
        "tags": ["probes"],
        "summary": "Readiness: the model is loaded and its warm-up prediction passed",
        "responses": {
            "200": ok("Ready to serve.", body),
            "503": failure(503, "Not ready (`not_ready`, with the reason), or no worker answered."),
        },
    }


def usage(ctx: Context) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "endpoints": {"type": "object", "additionalProperties": {"type": "string"}},
            "predict": {"type": "object"},
        },
        "required": ["service", "endpoints", "predict"],
    }
    return {
        "tags": ["model"],
        "summary": "How to call the API, with a working example for this model",
        "responses": {"200": ok("Usage.", body)},
    }


def model(ctx: Context) -> dict[str, Any]:
    return {
        "tags": ["model"],
        "summary": "The served model: features, steps, task, classes, sha256, versions",
        "responses": {"200": ok("Model metadata.", ref("ModelMetadata"))},
    }


def download(ctx: Context) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": ["model"],
        "summary": "The served artifact's bytes (ETag: its sha256)",
        "parameters": [
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "The sha256 you hold, quoted: 304 if it is still the served one.",
                "schema": {"type": "string"},
            }
        ],
        "responses": {
            "200": ok(
                "The artifact.",
                content={"application/octet-stream": {"schema": {"type": "string"}}},
                headers={
                    "ETag": {"schema": {"type": "string"}, "required": True},
                    "Content-Disposition": {"schema": {"type": "string"}, "required": True},
                },
            ),
            "304": {"description": "Not modified: the ETag sent is the served artifact's."},
        },
    }
    if ctx.settings.download_requires_token:
        operation["security"] = [{"adminToken": []}]
        operation["responses"].update(admin_auth_failures())
    return operation


def predict(ctx: Context) -> dict[str, Any]:
    return {
        "tags": ["model"],
        "summary": "Predictions for rows sent as columns or as records",
        "description": (
            f"At most {ctx.settings.max_rows} rows and {ctx.settings.max_body_bytes} bytes. "
            f"Unknown columns are {ctx.settings.unknown_columns}ed. "
            "The request schema is the served model's."
        ),
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": ref("PredictionRequest"),
                    "example": example_request(ctx.model),
                }
            },
        },
        "responses": {
            "200": ok("Predictions, and probabilities if asked.", ref("PredictionResponse")),
            "400": failure(
                400,
                "Not JSON (`malformed_json`), or the wrong shape (`bad_request`): `data` "
                "missing or neither columns nor records, unknown field, bad `output`.",
            ),
            "413": failure(
                413,
                "More rows than MAX_ROWS (`too_many_rows`) or a body over MAX_BODY_BYTES "
                "(`request_entity_too_large`).",
            ),
            "415": failure(415, "The body is not `application/json`."),
            "422": failure(
                422,
                "`schema_violation` (missing or unknown column, wrong type, ragged or empty "
                "data, null or unknown category where not allowed), `prediction_failed`, "
                "`output_not_supported`.",
            ),
            "503": failure(503, "The model is not ready (`not_ready`), or no worker answered."),
        },
    }


def metrics(ctx: Context) -> dict[str, Any]:
    return {
        "tags": ["operations"],
        "summary": "Prometheus metrics of every worker",
        "description": "Served on the internal metrics listener; the public one answers 404.",
        "responses": {
            "200": ok(
                "Prometheus text exposition format.",
                content={"text/plain": {"schema": {"type": "string"}}},
                headers={
                    "X-Request-ID": {
                        "description": "Not on the internal listener: scrapes are not traced.",
                        "required": False,
                        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
                    }
                },
            ),
            "404": failure(404, "On the public listener: metrics are internal."),
        },
    }


def spec(ctx: Context) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {"openapi": {"const": OPENAPI_VERSION}},
        "required": ["openapi", "info", "paths", "components"],
    }
    return {
        "tags": ["documentation"],
        "summary": "This document (OpenAPI 3.1), generated from the served app and model",
        "responses": {"200": ok("The OpenAPI document.", body)},
    }


def docs(ctx: Context) -> dict[str, Any]:
    return {
        "tags": ["documentation"],
        "summary": "This document for people (Swagger UI)",
        "responses": {
            "200": ok("An HTML page.", content={"text/html": {"schema": {"type": "string"}}})
        },
    }


def docs_asset(ctx: Context) -> dict[str, Any]:
    media_types = sorted(set(ASSETS.values()))
    return {
        "tags": ["documentation"],
        "summary": "A script, style sheet or icon of the documentation page",
        "parameters": [
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"enum": sorted(ASSETS)},
            }
        ],
        "responses": {
            "200": ok(
                "The asset.",
                content={media: {"schema": {"type": "string"}} for media in media_types},
            ),
            "404": failure(404, "No such asset."),
        },
    }


# ---- admin operations ---------------------------------------------------------------------------


def admin_auth_failures() -> dict[str, Any]:
    return {
        "401": failure(401, "No bearer token (`unauthorized`)."),
        "403": failure(
            403,
            "Wrong token, admin API disabled (no ADMIN_TOKEN), or an address outside nginx's "
            "allow list (`forbidden`).",
        ),
    }


def admin(operation: dict[str, Any]) -> dict[str, Any]:
    """Bearer security and its failures, shared by every admin operation."""
    operation["tags"] = ["admin"]
    operation["security"] = [{"adminToken": []}]
    operation["responses"] = {**admin_auth_failures(), **operation["responses"]}
    return operation


def sha256_parameter() -> dict[str, Any]:
    return {
        "name": "sha256",
        "in": "path",
        "required": True,
        "description": "A stored version's sha256 (lowercase hex).",
        "schema": {"type": "string", "pattern": SHA256_PATTERN},
    }


def version_links(sha256: str, what: str) -> dict[str, Any]:
    """What a client does next with a version a response names (OpenAPI links)."""
    return {
        f"{verb.capitalize()}Version": {
            "operationId": operation_id,
            "parameters": {"sha256": sha256},
            "description": f"{verb.capitalize()} {what}.",
        }
        for verb, operation_id in (
            ("activate", "admin.activate.post"),
            ("delete", "admin.delete.delete"),
        )
    }


def list_versions(ctx: Context) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {
            "versions": {"type": "array", "items": ref("VersionRecord")},
            "active": SHA_OR_NULL,
            "previous": SHA_OR_NULL,
        },
        "required": ["versions", "active", "previous"],
    }
    return admin(
        {
            "summary": "Stored versions, newest upload first; the active one and the rollback",
            "responses": {
                "200": ok(
                    "The versions.",
                    body,
                    links=version_links("$response.body#/previous", "the rollback version"),
                )
            },
        }
    )


def upload(ctx: Context) -> dict[str, Any]:
    binary = {"type": "string", "format": "binary"}
    body = {
        "allOf": [ref("VersionRecord")],
        "properties": {
            "features_diff": {
                "type": "object",
                "properties": {
                    key: {"type": "array", "items": {"type": "string"}}
                    for key in ("added", "removed", "changed")
                },
            }
        },
        "required": ["features_diff"],
    }
    return admin(
        {
            "summary": "Store a new version, after its signature and an isolated check",
            "parameters": [
                {
                    "name": "X-Model-Signature",
                    "in": "header",
                    "required": ctx.settings.key is not None,
                    "description": "HMAC-SHA256 of the artifact's bytes under the signing key.",
                    "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": binary},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "artifact": binary,
                                "schema": {**binary, "description": "Its pipeline.schema.json."},
                            },
                            "required": ["artifact"],
                        }
                    },
                },
            },
            "responses": {
                "201": ok(
                    "Stored (not activated); with its feature changes.",
                    body,
                    links=version_links("$response.body#/sha256", "the stored version"),
                ),
                "400": failure(400, "Empty body, or a form without an `artifact` part."),
                "409": failure(409, "The artifact changed while it was checked."),
                "413": failure(413, "Over MAX_UPLOAD_BYTES."),
                "415": failure(415, "Neither `application/octet-stream` nor a multipart form."),
                "422": failure(
                    422,
                    "Unsigned or wrongly signed (`signature_missing`, `signature_invalid`), or "
                    "it failed the isolated check (`candidate_rejected`).",
                ),
                "507": failure(507, "The store cannot be written (`store_unavailable`)."),
            },
        }
    )


def activate(ctx: Context) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {
            "active": ref("VersionRecord"),
            "previous": SHA_OR_NULL,
            "workers": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["active", "previous", "workers"],
    }
    return admin(
        {
            "summary": "Serve a stored version, in every worker, before answering",
            "parameters": [sha256_parameter()],
            "responses": {
                "200": ok("Activated.", body),
                "404": failure(404, "No such stored version (`version_not_found`)."),
                "500": failure(500, "The version failed to load (`reload_failed`); unchanged."),
                "507": failure(507, "The store cannot be written (`store_unavailable`)."),
            },
        }
    )


def delete(ctx: Context) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {"deleted": {"type": "string", "pattern": SHA256_PATTERN}},
        "required": ["deleted"],
    }
    return admin(
        {
            "summary": "Delete a stored version that is not the active one",
            "parameters": [sha256_parameter()],
            "responses": {
                "200": ok("Deleted.", body),
                "404": failure(404, "No such stored version (`version_not_found`)."),
                "409": failure(409, "It is the active version (`conflict`)."),
                "507": failure(507, "The store cannot be written (`store_unavailable`)."),
            },
        }
    )


OPERATIONS: dict[str, Builder] = {
    "api.health": health,
    "api.ready": ready,
    "api.usage": usage,
    "api.model": model,
    "api.download": download,
    "api.predict": predict,
    "admin.list_versions": list_versions,
    "admin.upload": upload,
    "admin.activate": activate,
    "admin.delete": delete,
    "openapi.spec": spec,
    "openapi.docs": docs,
    "openapi.docs_asset": docs_asset,
    "prometheus_metrics": metrics,
}
"""Every endpoint's documentation; :func:`document` refuses a route missing here."""


# ---- the generator ----------------------------------------------------------------------------


def openapi_path(rule: Rule) -> str:
    """``/models/<sha256>`` and ``/static/<path:filename>`` as OpenAPI templates."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)


def operation_for(rule: Rule, method: str, ctx: Context) -> dict[str, Any]:
    """The endpoint's declared operation, completed with what the route itself says."""
    builder = OPERATIONS.get(rule.endpoint)
    if builder is None:
        raise UndocumentedRoute(
            f"route {rule.rule} (endpoint {rule.endpoint!r}) has no entry in "
            "service.http.openapi.OPERATIONS"
        )
    operation = builder(ctx)
    operation["operationId"] = rule.endpoint + ("" if method == "get" else f".{method}")
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
    operation.setdefault("parameters", []).extend(
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in sorted(rule.arguments - declared)
    )
    if not operation["parameters"]:
        del operation["parameters"]
    for status, why in DEPLOYMENT_FAILURES.items():
        operation["responses"].setdefault(str(status), failure(status, why))
    for response in operation["responses"].values():
        response.setdefault("headers", {}).setdefault("X-Request-ID", request_id_header())
    return operation


def route_methods(rule: Rule) -> list[str]:
    return sorted(m.lower() for m in (rule.methods or set()) - IMPLICIT_METHODS)


def paths(app: Flask, ctx: Context) -> dict[str, Any]:
    """Every route of the app, each method an operation; fails on an undocumented route."""
    result: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        item = result.setdefault(openapi_path(rule), {})
        for method in route_methods(rule):
            item[method] = operation_for(rule, method, ctx)
    return result


def statuses(paths_object: dict[str, Any]) -> set[int]:
    return {
        int(status)
        for item in paths_object.values()
        for operation in item.values()
        for status in operation["responses"]
    }


def components(model: Model, settings: Settings, used: set[int]) -> dict[str, Any]:
    schemas = {
        **STATIC_SCHEMAS,
        "PredictionRequest": prediction_request(model.schema.columns, outputs(model), settings),
        "PredictionResponse": prediction_response(model, settings),
        **{f"Error{s}": error_schema(s) for s in sorted(used | {404, 405}) if s >= 400},
    }
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


def package_version() -> str:
    try:
        return importlib.metadata.version("model-serving")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of ``app`` as it is now: its routes and its served model."""
    runtime = app.extensions["runtime"]
    ctx = Context(model=runtime.model, settings=runtime.settings)
    paths_object = paths(app, ctx)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "model-serving",
            "version": package_version(),
            "summary": "A scikit-learn pipeline over HTTP",
            "description": (
                f"Serving `{type(ctx.model.estimator).__name__}` "
                f"(sha256 `{ctx.model.sha256}`). Every error has one shape: "
                '`{"error": {"code", "message", "details", "request_id"}}`.'
            ),
        },
        "tags": [
            {"name": name} for name in ("model", "probes", "admin", "documentation", "operations")
        ],
        "paths": paths_object,
        "components": components(ctx.model, ctx.settings, statuses(paths_object)),
    }


# ---- the routes ---------------------------------------------------------------------------------

SWAGGER_UI = ("flask_swagger_ui", "dist")
"""Where the flask-swagger-ui wheel keeps its Swagger UI build."""
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "initializer.js": "text/javascript",
}
"""The page's files and their media types; any other name is a 404, so no path reaches disk."""
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
"""Swagger UI needs its own scripts, styles and the document; nothing from elsewhere."""


@bp.get("/openapi.json", endpoint="spec")
def spec_route() -> Any:
    return document(current_app)


@bp.get("/docs", endpoint="docs")
def docs_route() -> Response:
    asset = {name: url_for("openapi.docs_asset", name=name) for name in ASSETS}
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>model-serving API</title>
<link rel="stylesheet" href="{asset["swagger-ui.css"]}">
<link rel="icon" type="image/png" sizes="32x32" href="{asset["favicon-32x32.png"]}">
<link rel="icon" type="image/png" sizes="16x16" href="{asset["favicon-16x16.png"]}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{asset["swagger-ui-bundle.js"]}"></script>
<script src="{asset["initializer.js"]}"></script>
</body>
</html>
"""
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response


@bp.get("/docs/<name>", endpoint="docs_asset")
def docs_asset_route(name: str) -> Response:
    mimetype = ASSETS.get(name)
    if mimetype is None:
        raise NotFound(f"no documentation asset {name!r}")
    body = initializer() if name == "initializer.js" else swagger_ui_file(name)
    return Response(body, mimetype=mimetype)


def initializer() -> bytes:
    """Swagger UI's start-up, as a file: the page's policy allows no inline script."""
    spec_url = url_for("openapi.spec")
    return (
        "window.onload = function () {\n"
        "  window.ui = SwaggerUIBundle({\n"
        f'    url: "{spec_url}", dom_id: "#swagger-ui", deepLinking: true,\n'
        '    validatorUrl: null, layout: "BaseLayout",\n'
        "    presets: [SwaggerUIBundle.presets.apis],\n"
        "  });\n"
        "};\n"
    ).encode()


@cache
def swagger_ui_file(name: str) -> bytes:
    """A file of the bundled Swagger UI build, read once per process."""
    package, folder = SWAGGER_UI
    return importlib.resources.files(package).joinpath(folder, name).read_bytes()
