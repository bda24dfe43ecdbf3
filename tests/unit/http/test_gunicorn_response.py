"""The one-write response over a real socket pair: what reaches the peer, and in how many
socket writes. gunicorn's own Response is the reference for the bytes (issue 17)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser

from service.http.gunicorn_response import OneWriteResponse

BODY = b'{"predictions":[true],"rows":1}'


class CountingSocket:
    """A real socket that records each write call (sendall, send, sendfile)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.writes: list[bytes | str] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.sock.sendall(data)

    def send(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        return self.sock.send(data)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        self.writes.append(f"sendfile {count}")
        return self.sock.sendfile(file, offset, count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def parse(method: str = "GET") -> Request:
    raw = f"{method} /model/predict HTTP/1.1\r\nHost: test\r\n\r\n".encode()
    return next(iter(RequestParser(Config(), [raw], ("127.0.0.1", 1))))


@pytest.fixture
def pair() -> Iterator[tuple[CountingSocket, socket.socket]]:
    server, client = socket.socketpair()
    with server, client:
        yield CountingSocket(server), client


def received(pair: tuple[CountingSocket, socket.socket]) -> bytes:
    """Everything the peer got, once the server side has closed."""
    server, client = pair
    server.sock.shutdown(socket.SHUT_WR)
    chunks = []
    while chunk := client.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def undated(data: bytes) -> bytes:
    """Two answers rendered a second apart differ in their Date header only."""
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", data)


def answer(
    response_class: type[wsgi.Response],
    method: str,
    status: str,
    headers: list[tuple[str, str]],
    chunks: list[bytes],
) -> tuple[list[bytes | str], bytes]:
    """Drive a response as gunicorn's gthread worker does; (write calls, bytes received)."""
    server, client = socket.socketpair()
    with server, client:
        sock = CountingSocket(server)
        response = response_class(parse(method), sock, Config())
        response.start_response(status, headers)
        for chunk in chunks:
            response.write(chunk)
        response.close()
        return sock.writes, received((sock, client))


CASES = {
    "content-length": ("GET", "200 OK", [("Content-Length", str(len(BODY)))], [BODY]),
    "head": ("HEAD", "200 OK", [("Content-Length", str(len(BODY)))], [BODY]),
    "204": ("GET", "204 No Content", [], [b""]),
    "empty": ("GET", "200 OK", [("Content-Length", "0")], [b""]),
    "no chunks": ("GET", "200 OK", [("Content-Length", "0")], []),
    "empty first chunk": ("GET", "200 OK", [("Content-Length", str(len(BODY)))], [b"", BODY]),
    "chunked": ("GET", "200 OK", [], [b"", BODY, b"more"]),
    "chunked, no body": ("GET", "200 OK", [], []),
}


@pytest.mark.parametrize("case", CASES)
def test_the_peer_gets_what_gunicorn_would_send(case: str) -> None:
    _, expected = answer(wsgi.Response, *CASES[case])
    _, got = answer(OneWriteResponse, *CASES[case])
    assert undated(got) == undated(expected)


def test_head_and_body_leave_in_one_write_where_gunicorn_makes_two() -> None:
    stock, _ = answer(wsgi.Response, *CASES["content-length"])
    writes, got = answer(OneWriteResponse, *CASES["content-length"])
    assert len(stock) == 2, "gunicorn's own Response: head, then body (the issue 17 gap)"
    assert writes == [got]
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\n" + BODY)


@pytest.mark.parametrize("case", ["head", "204", "empty", "no chunks", "chunked, no body"])
def test_answers_without_a_body_still_send_their_head_in_one_write(case: str) -> None:
    writes, got = answer(OneWriteResponse, *CASES[case])
    status = CASES[case][1]
    assert writes == [got]
    assert got.startswith(f"HTTP/1.1 {status}\r\n".encode())
    assert BODY not in got


def test_chunked_answer_carries_its_head_with_the_first_chunk() -> None:
    writes, got = answer(OneWriteResponse, *CASES["chunked"])
    head_and_first, second, last = writes
    assert isinstance(head_and_first, bytes)
    assert b"Transfer-Encoding: chunked\r\n" in head_and_first
    assert head_and_first.endswith(b"\r\n\r\n%X\r\n%s\r\n" % (len(BODY), BODY))
    assert (second, last) == (b"4\r\nmore\r\n", b"0\r\n\r\n")
    assert got.endswith(b"4\r\nmore\r\n0\r\n\r\n")


def test_head_is_held_not_sent_until_body_bytes_come(
    pair: tuple[CountingSocket, socket.socket],
) -> None:
    """Until then nothing is on the wire: an error can still become a clean 500."""
    sock, _ = pair
    response = OneWriteResponse(parse(), sock, Config())
    response.start_response("200 OK", [("Content-Length", str(len(BODY)))])
    response.write(b"")
    assert (sock.writes, response.headers_sent) == ([], False)
    response.write(BODY)
    assert (len(sock.writes), response.headers_sent) == (1, True)


def test_an_answer_replaced_after_an_error_sends_only_the_new_head(
    pair: tuple[CountingSocket, socket.socket],
) -> None:
    sock, _ = pair
    response = OneWriteResponse(parse(), sock, Config())
    response.start_response("200 OK", [])
    response.write(b"")
    try:
        raise ValueError("the app failed before its body")
    except ValueError as exc:
        response.start_response("500 Internal Server Error", [], (type(exc), exc, None))
    response.write(b"oops")
    response.close()
    got = received(pair)
    assert got.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert got.count(b"HTTP/1.1") == 1


def test_sendfile_sends_the_head_before_the_file(
    pair: tuple[CountingSocket, socket.socket], tmp_path: Path
) -> None:
    """gunicorn's sendfile path writes to the socket itself: the head must already be out."""
    artifact = tmp_path / "pipeline.pkl"
    artifact.write_bytes(b"x" * 1000)
    sock, _ = pair
    response = OneWriteResponse(parse(), sock, Config())
    response.start_response("200 OK", [("Content-Length", "1000")])
    with artifact.open("rb") as file:
        response.write_file(wsgi.FileWrapper(file))
    response.close()
    assert sock.writes[1:] == ["sendfile 1000"]
    got = received(pair)
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\n" + b"x" * 1000)


def test_gunicorn_builds_the_class_installed_on_its_module(
    pair: tuple[CountingSocket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/gunicorn.conf.py sets wsgi.Response: create() must look it up per request."""
    monkeypatch.setattr(wsgi, "Response", OneWriteResponse)
    sock, _ = pair
    response, _ = wsgi.create(parse(), sock, ("127.0.0.1", 1), "unix", Config())
    assert type(response) is OneWriteResponse
