"""gunicorn's answers to requests its HTTP parser refused: the one error shape, rendered
from its model."""

from __future__ import annotations

import socket

import pytest

from service.errors import ErrorBody
from service.http.gunicorn_json import write_error


def answer(status: int, reason: str, mesg: str) -> tuple[bytes, bytes]:
    """What a client reads after gunicorn's parser refused its request: head and body."""
    server, client = socket.socketpair()
    with server, client:
        write_error(server, status, reason, mesg)
        server.shutdown(socket.SHUT_WR)
        raw = b"".join(iter(lambda: client.recv(65536), b""))
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize(
    ("status", "reason", "mesg", "code", "message"),
    [
        (400, "Bad Request", "Invalid HTTP Version", "bad_request", "Bad Request: Invalid HTTP"),
        (403, "Forbidden", "", "forbidden", "Forbidden"),
        (500, "Internal Server Error", "x" * 500, "internal_server_error", "Internal Server"),
    ],
)
def test_parser_errors_are_the_error_shape(
    status: int, reason: str, mesg: str, code: str, message: str
) -> None:
    head, body = answer(status, reason, mesg)
    assert head.startswith(f"HTTP/1.1 {status} {reason}\r\n".encode())
    assert b"Content-Type: application/json\r\n" in head
    assert f"Content-Length: {len(body)}".encode() in head
    error = ErrorBody.model_validate_json(body).error
    assert (error.code, error.details, error.request_id) == (code, {}, None)
    assert error.message.startswith(message)
    assert len(error.message) <= len(reason) + 2 + 200  # the parser's message is cut short
