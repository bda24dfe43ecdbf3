"""JSON logs, one object per line, each carrying the request id nginx assigned.

python-json-logger renders the records: it is the maintained standard for
this and keeps ``extra={...}`` fields as JSON fields, so log shippers need no
parsing rules.
"""

from __future__ import annotations

import logging

from flask import g, has_request_context
from pythonjsonlogger.json import JsonFormatter

LOGGER_NAME = "service"


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request's id ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure(level: str) -> logging.Logger:
    """The service logger, writing JSON to stderr; idempotent, as tests build many apps."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}{request_id}",
                style="{",
                rename_fields={"levelname": "level", "asctime": "time"},
            )
        )
        handler.addFilter(RequestIdFilter())
        logger.addHandler(handler)
        logger.propagate = False
    return logger
