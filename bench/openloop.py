"""An open-loop load generator: requests are sent on a fixed schedule, whatever the server does.

wrk (``bench/load.py``) is closed-loop: each connection waits for its answer before it
sends again, so a slow server slows its own offered load and never sees more than the
connections' worth of work. Overload is the opposite case: clients keep arriving. So here
request ``i`` is due at ``start + i / rate``, and its latency runs from that moment, not
from when a connection was free (no coordinated omission). A request finds an idle
kept-alive connection or opens one, up to ``max_connections``; past that the client
itself is saturated and the request is counted as ``unsent``.

Raw HTTP/1.1 over asyncio streams on uvloop's event loop (libuv; about half the CPU of
asyncio's own per request): the generator shares the two cores with the server, and an
HTTP library's per-request cost would take a larger share of them than the server's
shedding. Every answer is kept with its status, ``Retry-After`` and error code,
so a test can check each refusal's shape, not only count statuses.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson
import uvloop


@dataclass(frozen=True)
class Answer:
    """One response: when it was due (seconds from the start), how long it took from then."""

    due_s: float
    latency_s: float
    status: int
    retry_after: str | None
    code: str | None
    """The error code of a JSON error body (``{"error": {"code": …}}``), else None."""


@dataclass
class Outcome:
    """Everything a run saw: each answer, and the requests that got none."""

    rate: float
    duration_s: float
    answers: list[Answer] = field(default_factory=list)
    broken: Counter[str] = field(default_factory=Counter)
    """Requests with no HTTP answer, by kind (``unsent``, ``timeout``, ``reset``...)."""

    def statuses(self) -> Counter[int]:
        return Counter(a.status for a in self.answers)

    def ok(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 200]

    @property
    def goodput(self) -> float:
        """200s per second of the run."""
        return len(self.ok()) / self.duration_s

    def ok_percentile(self, q: float) -> float:
        """The ``q`` quantile (0-1) of the 200s' latency, in seconds (nan without any)."""
        return percentile([a.latency_s for a in self.ok()], q)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def request_bytes(url: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """The whole POST, built once and sent as it is for every request of a run."""
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        body = await self._body(headers)
        return int(status_line.split(" ", 2)[1]), headers, body

    async def _body(self, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    return b"".join(chunks)
        return await self.reader.read()

    def close(self) -> None:
        self.writer.close()


async def _offer(
    url: str, request: bytes, rate: float, duration_s: float, max_connections: int, timeout: float
) -> Outcome:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    outcome = Outcome(rate, duration_s)
    idle: list[_Connection] = []
    open_connections = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(due: float, start: float) -> None:
        nonlocal open_connections
        connection = idle.pop() if idle else None
        if connection is None:
            if open_connections >= max_connections:
                outcome.broken["unsent"] += 1
                return
            open_connections += 1
        try:
            if connection is None:
                reader, writer = await asyncio.open_connection(host, port)
                connection = _Connection(reader, writer)
            status, headers, body = await asyncio.wait_for(connection.exchange(request), timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            outcome.broken[type(exc).__name__] += 1
        except TimeoutError:
            outcome.broken["timeout"] += 1
        else:
            latency = time.perf_counter() - due
            code = None if status == 200 else _code(body)  # a prediction is not parsed
            outcome.answers.append(
                Answer(due - start, latency, status, headers.get("retry-after"), code)
            )
            if headers.get("connection", "").lower() != "close":
                idle.append(connection)
                return
        if connection is not None:
            connection.close()
        open_connections -= 1

    start = time.perf_counter()
    total = int(rate * duration_s)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due, start))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    for connection in idle:
        connection.close()
    return outcome


def _code(body: bytes) -> str | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def offer(
    url: str,
    body: bytes,
    rate: float,
    duration_s: float,
    *,
    headers: dict[str, str] | None = None,
    max_connections: int = 1024,
    timeout: float = 30.0,
) -> Outcome:
    """POST ``body`` to ``url`` ``rate`` times a second for ``duration_s``; every answer."""
    request = request_bytes(url, body, headers)
    return uvloop.run(_offer(url, request, rate, duration_s, max_connections, timeout))
