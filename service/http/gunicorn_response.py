"""gunicorn's HTTP/1 response, with the head and the first body bytes in one socket write
(installed by deploy/gunicorn.conf.py), so a worker killed mid-answer never leaves nginx
holding a 200 it cannot finish (issue 17).

Why two writes lose a 200 (gunicorn 27.0.1, nginx 1.22.1):

- ``gunicorn.http.wsgi.Response.write()`` calls ``send_headers()``, which ends in
  ``util.write(self.sock, header_bytes)``, then ``_emit_body()``, which calls
  ``util.write(self.sock, data, self.chunked)``: two ``sock.sendall`` calls
  (``util.write`` is ``sock.sendall(data)``). A response with no body has its head sent
  by ``close()``; a chunked one gets its last chunk there, in a write of its own.
- Each ``sendall`` releases the GIL. In a gthread worker, another thread (the model
  thread scoring a batch, another request) may hold it when the first returns, and the
  answering thread waits for it (up to the 5 ms switch interval, more under load) before
  the second write. A SIGKILL (OOM killer, operator, orchestrator) lands in that gap:
  about one kill in 15 under 16 keep-alive clients on 2 cores (the fault test).
- nginx commits to the status as soon as it has parsed the head:
  ``ngx_http_upstream_send_response()`` calls ``ngx_http_send_header()`` and sets
  ``u->header_sent = 1`` before reading any body, ``proxy_buffering`` or not. The
  worker's death is then "upstream prematurely closed connection" while reading the
  body (nginx's log says "while reading upstream", not "while reading response header
  from upstream"): ``ngx_http_upstream_finalize_request()`` turns its 502 into
  ``NGX_ERROR`` when ``header_sent`` (flush, close the client connection).
  ``proxy_next_upstream`` and ``error_page`` only act before that point. The client
  gets ``200``, ``Content-Length: 123``, and a closed connection.

Why one write fixes it: the head and the body go to the kernel in one ``send()`` (for an
answer smaller than the socket buffer; a one-row prediction is 123 bytes), and bytes a
socket has queued are still delivered after its process dies. A kill
therefore lands either before the write, and nginx reads end-of-file where it expected a
head (an ``error`` that ``proxy_next_upstream`` retries on another worker, and
``non_idempotent`` allows for predictions), or after it, and nginx gets the whole
answer. What stays exposed: bodies larger than the socket buffer, and bodies the app
yields in several pieces (only the head and the first piece travel together).
"""

from __future__ import annotations

from typing import Any

from gunicorn.http.wsgi import Response


class OneWriteResponse(Response):
    """``Response`` whose head waits for the first body bytes and leaves in their write."""

    def __init__(self, req: Any, sock: Any, cfg: Any) -> None:
        super().__init__(req, sock, cfg)
        self._pending_head: bytes | None = None
        # True only inside write() and close(), the two places that send body bytes (or
        # the end) right after the head: everywhere else (sendfile, which writes to the
        # socket itself) send_headers() keeps gunicorn's "on the wire now" meaning.
        self._holding = False

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        """An app that replaces its answer after an error: a head still held is stale."""
        if exc_info and not self.headers_sent:
            self._pending_head = None
        return super().start_response(status, headers, exc_info)

    def send_headers(self) -> None:
        """Render the head; send it now unless a body write is about to carry it."""
        if self.headers_sent:
            return
        if self._pending_head is None:
            # The same bytes gunicorn's send_headers() renders.
            lines = self.default_headers() + [f"{k}: {v}\r\n" for k, v in self.headers]
            self._pending_head = ("".join(lines) + "\r\n").encode("latin-1")
        if not self._holding:
            self._send(b"")

    def write(self, arg: bytes) -> None:
        """gunicorn's bookkeeping (length cap, no-body statuses), head held for the body."""
        self._holding = True
        try:
            super().write(arg)
        finally:
            self._holding = False

    def _emit_body(self, data: bytes) -> None:
        """The body bytes, framed as gunicorn frames them, behind the held head."""
        if not data:
            return  # nothing to carry the head yet: keep holding it
        if self.chunked:
            data = b"%X\r\n%s\r\n" % (len(data), data)
        self._send(data)

    def close(self) -> None:
        """No body came (HEAD, 204, empty answer): the head leaves now, with the
        terminating chunk of a chunked answer in the same write."""
        self._holding = True
        try:
            self.send_headers()
        finally:
            self._holding = False
        self._send(b"0\r\n\r\n" if self.chunked else b"")

    def _send(self, data: bytes) -> None:
        """One ``sendall`` for the held head (if any) and ``data``."""
        head, self._pending_head = self._pending_head, None
        if head is not None:
            data = head + data
        if data:
            self.sock.sendall(data)
        if head is not None:
            self.headers_sent = True
