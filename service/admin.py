"""The admin API: versions, upload, activation, deletion. Bearer-token protected.

Kept apart from the prediction API (its own blueprint, its own nginx
location with an allow list and a larger body limit) so the public surface
stays read-only.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, current_app, request

from service.control import Control
from service.errors import Forbidden, Unauthorized, UnsupportedMediaType
from service.settings import Settings

bp = Blueprint("admin", __name__, url_prefix="/admin")


def control() -> Control:
    return current_app.extensions["control"]


def require_token(settings: Settings) -> None:
    """401 without a bearer token, 403 with a wrong one (compared in constant time)."""
    if not settings.admin_token:
        raise Forbidden("the admin API is disabled: no ADMIN_TOKEN is configured")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "send the admin token as 'Authorization: Bearer <token>'",
            details={"www_authenticate": "Bearer"},
        )
    if not hmac.compare_digest(token.strip().encode(), settings.admin_token.encode()):
        raise Forbidden("the admin token is not valid")


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
    """The body is the artifact; ``X-Model-Signature`` its HMAC. 201 with the version."""
    if request.mimetype != "application/octet-stream":
        raise UnsupportedMediaType(
            "send the artifact as application/octet-stream",
            details={"content_type": request.content_type},
        )
    request.max_content_length = control().settings.max_upload_bytes
    record = control().upload(request.stream, request.headers.get("X-Model-Signature"))
    return record, 201


@bp.post("/models/<sha256>/activate")
def activate(sha256: str) -> Any:
    return control().activate(sha256)


@bp.delete("/models/<sha256>")
def delete(sha256: str) -> Any:
    control().delete(sha256)
    return {"deleted": sha256}
