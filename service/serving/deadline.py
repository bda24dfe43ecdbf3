"""A deadline for pipeline calls: they run on one daemon thread that callers stop waiting for.

Python cannot interrupt a running call, and under gthread workers gunicorn's own
``timeout`` never fires for a slow request (the worker's main loop keeps
heartbeating). So the call runs on a model thread; a caller that waited past
the deadline answers 504 and declares the worker stuck, and the worker is
replaced (``Runtime.on_stuck``, set by gunicorn's post_fork hook). The thread is
a daemon and starts on first use, so the master never has one and a stuck call
cannot keep the process alive.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """The call did not finish in time; it still runs, and its thread is lost."""


class ModelThread:
    """Runs callables one at a time on a private daemon thread, with a deadline."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], threading.Event, list[Any]]]
        self._calls = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``'s result or exception, or :class:`DeadlineExceeded` after ``timeout``."""
        if self.timeout <= 0:
            return fn()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="model", daemon=True)
            self._thread.start()
        finished = threading.Event()
        outcome: list[Any] = []
        self._calls.put((fn, finished, outcome))
        if not finished.wait(self.timeout):
            raise DeadlineExceeded(f"the model did not answer within {self.timeout:g} s")
        kind, value = outcome
        if kind == "error":
            raise value
        return value

    def _serve(self) -> None:
        while True:
            fn, finished, outcome = self._calls.get()
            try:
                outcome.extend(("ok", fn()))
            except Exception as exc:  # handed back to the caller's thread
                outcome.extend(("error", exc))
            except BaseException as exc:  # a model calling sys.exit must not end the thread
                outcome.extend(("error", RuntimeError(f"the model raised {exc!r}")))
            finished.set()
