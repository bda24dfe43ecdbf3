"""The admin API: versions, upload, activation, deletion. Bearer-token protected.

Kept apart from the prediction API (its own blueprint, its own nginx
location with an allow list and a larger body limit) so the public surface
stays read-only.
"""

from __future__ import annotations

from functools import partial

from flask import Blueprint, current_app, request
from pydantic import BaseModel

from service.control.controller import Activation, Control, UploadedVersion, VersionList
from service.errors import BadRequest, UnsupportedMediaType
from service.http import openapi
from service.http.auth import require_token
from service.model.predictor import Sha256

bp = Blueprint("admin", __name__, url_prefix="/admin")

admin_operation = partial(openapi.operation, "admin", secured=True)
"""Every admin operation: bearer security, and its 401 and 403."""
STORE_UNAVAILABLE = "The store cannot be written (`store_unavailable`)."
NO_SUCH_VERSION = "No such stored version (`version_not_found`)."
SHA256_PARAMETER = openapi.parameter(
    "path", "sha256", openapi.schema_of(Sha256), "A stored version's sha256 (lowercase hex)."
)


class Deleted(BaseModel):
    """Deleted."""

    deleted: Sha256


def control() -> Control:
    return current_app.extensions["control"]


def version_links(sha256: str, what: str) -> dict[str, openapi.JSON]:
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


def upload_details(ctx: openapi.Context) -> openapi.JSON:
    """The artifact raw or as a form with its schema file; signed when the server has a key."""
    binary = {"type": "string", "format": "binary"}
    form = {
        "type": "object",
        "properties": {
            "artifact": binary,
            "schema": {**binary, "description": "Its pipeline.schema.json."},
        },
        "required": ["artifact"],
    }
    signature = openapi.parameter(
        "header",
        "X-Model-Signature",
        {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        "HMAC-SHA256 of the artifact's bytes under the signing key.",
        required=ctx.settings.key is not None,
    )
    return {
        "parameters": [signature],
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": binary},
                "multipart/form-data": {"schema": form},
            },
        },
    }


@bp.before_request
def authenticate() -> None:
    require_token(control().settings)


@bp.get("/models")
@admin_operation(
    "Stored versions, newest upload first; the active one and the rollback",
    {
        200: openapi.Reply(
            body=VersionList,
            links=version_links("$response.body#/previous", "the rollback version"),
        )
    },
)
def list_versions() -> VersionList:
    return control().versions()


@bp.post("/models")
@admin_operation(
    "Store a new version, after its signature and an isolated check",
    {
        201: openapi.Reply(
            body=UploadedVersion,
            links=version_links("$response.body#/sha256", "the stored version"),
        ),
        400: "Empty body, or a form without an `artifact` part.",
        409: "The artifact changed while it was checked.",
        413: "Over MAX_UPLOAD_BYTES.",
        415: "Neither `application/octet-stream` nor a multipart form.",
        422: "Unsigned or wrongly signed (`signature_missing`, `signature_invalid`), or "
        "it failed the isolated check (`candidate_rejected`).",
        507: STORE_UNAVAILABLE,
    },
    details=upload_details,
)
def upload() -> tuple[UploadedVersion, int]:
    """A new version: the raw artifact (``application/octet-stream``), or a form with
    parts ``artifact`` and ``schema`` (its ``pipeline.schema.json``). ``X-Model-Signature``
    is the artifact's HMAC. 201 with the version's record."""
    request.max_content_length = control().settings.max_upload_bytes
    signature = request.headers.get("X-Model-Signature")
    if request.mimetype == "application/octet-stream":
        record = control().upload(request.stream, signature)
    elif request.mimetype == "multipart/form-data":
        artifact = request.files.get("artifact")
        if artifact is None:
            raise BadRequest(
                'the form has no "artifact" part', details={"parts": list(request.files)}
            )
        schema = request.files.get("schema")
        record = control().upload(artifact.stream, signature, schema.read() if schema else None)
    else:
        raise UnsupportedMediaType(
            "send the artifact as application/octet-stream, or as multipart/form-data "
            "with parts artifact and schema",
            details={"content_type": request.content_type},
        )
    return record, 201


@bp.post("/models/<sha256>/activate")
@admin_operation(
    "Serve a stored version, in every worker, before answering",
    {
        200: Activation,
        404: NO_SUCH_VERSION,
        500: "The version failed to load (`reload_failed`); unchanged.",
        507: STORE_UNAVAILABLE,
    },
    parameters=(SHA256_PARAMETER,),
)
def activate(sha256: str) -> Activation:
    return control().activate(sha256)


@bp.delete("/models/<sha256>")
@admin_operation(
    "Delete a stored version that is not the active one",
    {
        200: Deleted,
        404: NO_SUCH_VERSION,
        409: "It is the active version (`conflict`).",
        507: STORE_UNAVAILABLE,
    },
    parameters=(SHA256_PARAMETER,),
)
def delete(sha256: str) -> Deleted:
    control().delete(sha256)
    return Deleted(deleted=sha256)
