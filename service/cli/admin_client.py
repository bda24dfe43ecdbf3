"""A small client of the admin API for ``python -m service upload|activate|versions|rollback``.

Standard-library HTTP (urllib): the CLI then needs nothing the server does not.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any


class ClientError(RuntimeError):
    """The server refused the call; the message is its JSON error's."""


def token_from_env() -> str:
    """``ADMIN_TOKEN``, or the content of ``ADMIN_TOKEN_FILE``."""
    if os.environ.get("ADMIN_TOKEN_FILE"):
        path = Path(os.environ["ADMIN_TOKEN_FILE"])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ClientError(
                f"ADMIN_TOKEN_FILE: cannot read {path.absolute()}: {exc.strerror} "
                "(make run writes it to .run/admin-token in the repository: give its full path)"
            ) from None
    token = os.environ.get("ADMIN_TOKEN", "")
    if not token:
        raise ClientError(
            "set ADMIN_TOKEN or ADMIN_TOKEN_FILE to call the admin API "
            "(make run's token: ADMIN_TOKEN_FILE=.run/admin-token)"
        )
    return token


class AdminClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 330) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ClientError(_error_message(exc)) from exc
        except urllib.error.URLError as exc:
            raise ClientError(f"cannot reach {self.base_url}: {exc.reason}") from exc

    def versions(self) -> Any:
        return self.call("GET", "/admin/models")

    def serving(self) -> str:
        """What this server serves, from its readiness probe: the sha256, or why not."""
        try:
            return str(self.call("GET", "/readyz")["sha256"])
        except ClientError as exc:
            return f"not ready ({exc})"

    def upload(self, artifact: Path, signature: str | None) -> Any:
        """The artifact, with the schema file beside it when there is one."""
        headers = {"X-Model-Signature": signature} if signature else {}
        schema = artifact.with_suffix(".schema.json")
        if not schema.exists():
            headers["Content-Type"] = "application/octet-stream"
            return self.call("POST", "/admin/models", artifact.read_bytes(), headers)
        body, content_type = multipart({"artifact": artifact, "schema": schema})
        return self.call("POST", "/admin/models", body, {**headers, "Content-Type": content_type})

    def activate(self, sha256: str) -> Any:
        return self.call("POST", f"/admin/models/{sha256}/activate")

    def rollback(self) -> Any:
        previous = self.versions().get("previous")
        if not previous:
            raise ClientError("no previous version to roll back to")
        return self.activate(previous)


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read())["error"]
        return f"{exc.code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{exc.code} {exc.reason}"


def multipart(files: dict[str, Path]) -> tuple[bytes, str]:
    """A multipart/form-data body of whole files (the stdlib has no encoder)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, path in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + path.read_bytes()
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
