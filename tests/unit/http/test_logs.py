"""JSON logs: one object per line, carrying the request id inside a request and "-" outside."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from service.http import logs

Lines = Callable[[], list[dict[str, Any]]]


def json_handler(logger: logging.Logger) -> logging.StreamHandler:
    [handler] = [
        h
        for h in logger.handlers
        if any(isinstance(f, logs.RequestIdFilter) for f in h.filters)
        and isinstance(h, logging.StreamHandler)
    ]
    return handler


@pytest.fixture
def lines() -> Iterator[Lines]:
    """What the service logger writes during the test, one parsed JSON object per line."""
    logger = logs.configure("INFO")
    buffer = io.StringIO()
    handler = json_handler(logger)
    previous = handler.setStream(buffer)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        handler.setStream(previous)


def test_configure_is_idempotent() -> None:
    first = logs.configure("INFO")
    try:
        second = logs.configure("WARNING")
        assert first is second is logging.getLogger(logs.LOGGER_NAME)
        json_handler(second)  # exactly one, however many apps were built
        assert second.level == logging.WARNING
        assert second.propagate is False, "the JSON handler writes it; the root must not again"
    finally:
        logs.configure("INFO")


def test_outside_a_request_a_line_is_one_json_object_without_an_id(lines: Lines) -> None:
    logging.getLogger("service.control.controller").info("model loaded", extra={"sha256": "a" * 64})
    [line] = lines()
    assert line["message"] == "model loaded"
    assert line["level"] == "INFO"
    assert line["name"] == "service.control.controller"
    assert line["request_id"] == "-"
    assert line["sha256"] == "a" * 64, "extra fields stay JSON fields"
    assert "time" in line


def test_below_the_level_nothing_is_written(lines: Lines) -> None:
    logs.configure("WARNING")
    try:
        logging.getLogger("service").info("quiet")
        logging.getLogger("service").warning("loud")
    finally:
        logs.configure("INFO")
    assert [line["message"] for line in lines()] == ["loud"]


def test_inside_a_request_each_line_carries_the_request_id(app: Flask, lines: Lines) -> None:
    @app.get("/_log")
    def log_something() -> str:
        logging.getLogger("service.serving.runtime").warning("inside")
        return "ok"

    response = app.test_client().get("/_log", headers={"X-Request-ID": "req-42"})
    assert response.headers["X-Request-ID"] == "req-42"
    inside = [line for line in lines() if line["message"] == "inside"]
    assert [line["request_id"] for line in inside] == ["req-42"]


def test_a_hostile_request_id_is_replaced_in_the_log_too(app: Flask, lines: Lines) -> None:
    @app.get("/_log")
    def log_something() -> str:
        logging.getLogger("service").info("inside")
        return "ok"

    response = app.test_client().get("/_log", headers={"X-Request-ID": "x y"})
    assigned = response.headers["X-Request-ID"]
    assert assigned != "x y"
    [line] = [line for line in lines() if line["message"] == "inside"]
    assert line["request_id"] == assigned


def test_an_unhandled_error_is_logged_under_the_id_the_client_is_given(
    app: Flask, lines: Lines
) -> None:
    @app.get("/_boom")
    def boom() -> str:
        raise RuntimeError("kaput")

    response = app.test_client().get("/_boom", headers={"X-Request-ID": "req-7"})
    assert response.status_code == 500
    assert response.get_json()["error"]["request_id"] == "req-7"
    [line] = [line for line in lines() if line["level"] == "ERROR"]
    assert line["request_id"] == "req-7"
    assert line["message"] == "unhandled error on GET /_boom"
    assert "RuntimeError: kaput" in line["exc_info"]


def test_a_request_context_without_an_id_yet_says_dash(app: Flask, lines: Lines) -> None:
    with app.test_request_context("/"):
        logging.getLogger("service").info("before any hook ran")
    [line] = lines()
    assert line["request_id"] == "-"
