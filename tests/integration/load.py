"""Steady background load for fault tests: threads posting predictions until stopped."""

from __future__ import annotations

import threading
import time
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
                    self.failures.append(repr(exc))
                    continue
                if response.status_code == 200:
                    self.ok.append(response.json())
                else:
                    self.failures.append(f"{response.status_code} {response.text[:300]}")

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def wait_for_requests(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        target = len(self.ok) + count
        while len(self.ok) < target and time.monotonic() < deadline:
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
