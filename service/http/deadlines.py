"""A prediction's deadline, from its headers: the client's budget, and when it arrived.

``X-Request-Timeout`` (seconds) is the client's budget, capped by PREDICT_TIMEOUT_S. It runs
from when nginx had the request
(``X-Request-Start: t=<epoch seconds>``, set by ``deploy/nginx/proxy.conf``), so the time
a request spent queued in nginx and gunicorn counts too; without nginx, from when the app
saw it. A request still waiting at its deadline is answered 504 ``deadline_exceeded`` and
never reaches the model (``serving.batching``): its client has stopped waiting.

Without the header there is no deadline: a request queued behind a stuck call then gets
503 ``worker_restarting``, which nginx resends to another worker, rather than a 504 no
one asked for.
"""

from __future__ import annotations

import math
import time

from flask import current_app, request

from service.errors import BadRequest

TIMEOUT = "X-Request-Timeout"
START = "X-Request-Start"
MAX_QUEUED_S = 300.0
"""An X-Request-Start older than this is a clock gone wrong, not a queue: it is ignored."""


def of_request() -> float | None:
    """This request's deadline, under the served app's PREDICT_TIMEOUT_S."""
    limit_s = current_app.extensions["runtime"].settings.predict_timeout_s
    return deadline(request.headers.get(TIMEOUT), request.headers.get(START), limit_s)


def deadline(timeout: str | None, start: str | None, limit_s: float) -> float | None:
    """The ``time.monotonic()`` past which the answer is useless, from the two headers'
    values; None: no deadline."""
    budget = _budget(timeout, limit_s)
    if budget is None:
        return None
    return time.monotonic() - _waited(start) + budget


def _budget(raw: str | None, limit_s: float) -> float | None:
    if raw is None:
        return None
    try:
        asked = float(raw)
    except ValueError:
        asked = math.nan
    if not (math.isfinite(asked) and asked > 0):
        raise BadRequest(
            f"{TIMEOUT} must be a positive number of seconds, got {raw[:40]!r}",
            details={"header": TIMEOUT},
        )
    return min(asked, limit_s) if limit_s else asked


def _waited(raw: str | None) -> float:
    """Seconds since nginx had the request (0 without the header, or with a bad one)."""
    if raw is None or not raw.startswith("t="):
        return 0.0
    try:
        waited = time.time() - float(raw[2:])
    except ValueError:
        return 0.0
    return waited if 0.0 <= waited <= MAX_QUEUED_S else 0.0
