"""The admin API: versions, upload, activation, deletion. Bearer-token protected.

Kept apart from the prediction API (its own blueprint, its own nginx
location with an allow list and a larger body limit) so the public surface
stays read-only.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request

from service.control.controller import Control
from service.errors import BadRequest, UnsupportedMediaType
from service.http.auth import require_token

bp = Blueprint("admin", __name__, url_prefix="/admin")


def control() -> Control:
    return current_app.extensions["control"]


@bp.before_request
def authenticate() -> None:
    require_token(control().settings)


@bp.get("/models")
def list_versions() -> Any:
    store = control().store
    return {
        "versions": control().versions(),
        "active": store.active(),
        "previous": store.previous(),
    }


@bp.post("/models")
def upload() -> Any:
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
def activate(sha256: str) -> Any:
    return control().activate(sha256)


@bp.delete("/models/<sha256>")
def delete(sha256: str) -> Any:
    control().delete(sha256)
    return {"deleted": sha256}
