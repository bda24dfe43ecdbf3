"""The bearer token guarding the admin API and, when configured, the model download."""

from __future__ import annotations

import hmac

from flask import request

from service.errors import Forbidden, Unauthorized
from service.settings import Settings


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
