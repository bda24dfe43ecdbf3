"""gunicorn's own output as JSON: its access log lines, and the errors its HTTP parser
answers before the app sees a request (wired in deploy/gunicorn.conf.py).

gunicorn's ``access_log_format`` is a printf template: a quote in a path or a
header would break a hand-written JSON template, so the record is serialised
properly here instead. Its parser errors are HTML pages by default; clients of
this service get the service's error shape from every layer.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import orjson
from gunicorn.glogging import Logger
from gunicorn.util import write_nonblock

from service.errors import ErrorBody, code_for


class JsonAccessLogger(Logger):
    """gunicorn's logger with access lines rendered as JSON, carrying nginx's request id."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING") or None,
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "request_id": environ.get("HTTP_X_REQUEST_ID"),
            "remote": environ.get("HTTP_X_REAL_IP") or environ.get("REMOTE_ADDR"),
            "pid": os.getpid(),
        }
        self.access_log.info(orjson.dumps(record).decode())


def write_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for ``gunicorn.util.write_error``: the same response, in the error shape.

    No request id: the request could not be parsed, so its headers were never read.
    """
    message = f"{reason}: {mesg[:200]}" if mesg else reason
    body = ErrorBody.of(code_for(reason), message, {}, None).model_dump_json().encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    write_nonblock(sock, head.encode("latin-1") + body)
