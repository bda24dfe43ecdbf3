"""Steady background load for fault tests: threads posting predictions until stopped.

Every answer is checked, not just its status: a fault test's promise is that each
client gets a 200 whose complete JSON body carries one prediction per row it sent.
A body cut short (requests raises ChunkedEncodingError), a broken connection, another
status, JSON that does not parse or has the wrong shape is a failure, kept with its kind.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class Load:
    """``with Load(url, body) as load:`` keeps ``clients`` threads posting ``body``."""

    url: str
    body: dict[str, Any]
    clients: int = 4
    ok: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    response = session.post(self.url, json=self.body, timeout=30)
                except requests.RequestException as exc:
                    self.failures.append(f"broken: {exc!r}")
                    continue
                failure = self._check(response)
                if failure:
                    self.failures.append(failure)

    def _check(self, response: requests.Response) -> str | None:
        """Why an answer is not a complete prediction (None when it is one)."""
        if response.status_code != 200:
            return f"status: {response.status_code} {response.text[:300]}"
        try:
            answer = response.json()
        except ValueError:
            return f"json: {response.content[:200]!r}"
        if not isinstance(answer, dict) or len(answer.get("predictions") or ()) != self.rows:
            return f"shape: {response.text[:200]}"
        self.ok.append(answer)
        return None

    @property
    def rows(self) -> int:
        data = self.body["data"]
        return len(data) if isinstance(data, list) else len(next(iter(data.values())))

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def wait_for_requests(self, count: int, timeout: float = 30) -> None:
        """Until ``count`` more good answers came back (the load flows), or the timeout."""
        deadline = time.monotonic() + timeout
        target = len(self.ok) + count
        while len(self.ok) < target and time.monotonic() < deadline:
            time.sleep(0.05)

    def summary(self) -> str:
        kinds = Counter(failure.split(":", 1)[0] for failure in self.failures)
        return (
            f"{len(self.failures)} failed answers ({dict(kinds)}), {len(self.ok)} good; "
            f"e.g. {self.failures[:5]}"
        )

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
