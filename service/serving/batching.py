"""Adaptive micro-batching: concurrent requests in one worker share one pipeline call.

A one-row ``pipeline.predict`` costs ~3 ms of fixed overhead in sklearn-pandas,
pandas and scikit-learn, while a thousand rows cost barely more. So the requests
that queue while a pipeline call runs are scored together by the next call. A
compiled plan (``service.model.plan``) has far less fixed cost, but a batch still
shares it, and the request columns go to it as they are, with no DataFrame.

There is no batching thread and no timer: the first request thread to take
the model lock becomes the leader, drains what is queued (up to
``max_rows``), scores it once and hands each waiter its slice. A lone request
therefore runs at once; batches form only from what arrived while the
previous batch ran. The same lock is what makes the pipeline safe to share
between a gthread worker's threads (the mapper mutates itself on transform).
A plan keeps no state per call, so it would not need the lock for safety; the
lock stays for every path, because it is also what forms batches and what lets
the deadline's one model thread (``serving.deadline``) run one call at a time.

A plan that runs only numpy's and scikit-learn's code (``Plan.bounded``) is
scored on the leader's own thread: handing a call to the model thread and waiting
for it cost 0.38 ms of a 0.97 ms one-row request (in-process profile, issue 11).
The deadline still guards the code that can hang, an operator's own steps and
estimators and the whole pipeline path, which then run on the model thread.

Validation happens per request before it queues, so one bad request never
fails another; if a batch still fails, its jobs are rescored one by one.

The queue is bounded in rows (``max_queued_rows``, MAX_QUEUED_ROWS): a request that would
queue past it is refused with :class:`Overloaded` at once, and :meth:`Batcher.admit` refuses
before the body is even read when the queue is full already. Waiting longer would not get
it scored sooner, and its client can retry elsewhere.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service.errors import DeadlineExpired, Overloaded, PredictionTimeout, WorkerRestarting
from service.model.payload import Columns, Request
from service.model.predictor import Guard, Model, Prediction, at_once
from service.serving.deadline import DeadlineExceeded, ModelThread
from service.serving.metrics import Metrics


@dataclass
class Job:
    """One request waiting for its slice of a batch."""

    request: Request
    deadline: float | None = None
    """``time.monotonic()`` past which nobody awaits the answer: then it is never scored."""
    queued_at: float = field(default_factory=time.perf_counter)
    result: Prediction | None = None
    error: Exception | None = None
    done: bool = False

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline


def merge(columns: list[Columns]) -> Columns:
    """Column-wise concatenation: cheaper than concatenating DataFrames."""
    if len(columns) == 1:
        return columns[0]
    merged: Columns = {}
    for name in columns[0]:
        parts = [c[name] for c in columns]
        if isinstance(parts[0], np.ndarray):
            merged[name] = np.concatenate(parts)
        else:
            merged[name] = [value for part in parts for value in part]
    return merged


class Batcher:
    """Scores requests for one model, one pipeline call at a time, batching what queues."""

    def __init__(
        self,
        model: Model,
        metrics: Metrics,
        *,
        enabled: bool = True,
        max_rows: int = 2048,
        max_queued_rows: int = 0,
        max_wait: float = 0.0,
        timeout: float = 0.0,
        on_stuck: Callable[[], None] = lambda: None,
    ) -> None:
        self.model = model
        self.metrics = metrics
        self.enabled = enabled
        self.max_rows = max_rows
        self.max_queued_rows = max_queued_rows
        """Most rows waiting in the queue; 0: no bound."""
        self.max_wait = max_wait
        self.stuck = False
        """A pipeline call overran ``timeout``: this worker can no longer score."""
        self._on_stuck = on_stuck
        self._thread = ModelThread(timeout)
        self._queue: deque[Job] = deque()
        self._queued_rows = 0
        self._busy = False
        self._changed = threading.Condition()

    def predict(self, request: Request, deadline: float | None = None) -> Prediction:
        """The request's prediction, computed by this thread or by the current leader; a
        request still queued at its ``deadline`` gets :class:`DeadlineExpired` instead."""
        self.model.check_output(request.output)
        job = Job(request, deadline)
        with self._changed:
            if self._queue and self._queued_rows + request.rows > self.max_queued_rows > 0:
                raise self._shed()
            self._queue.append(job)
            self._queued_rows += request.rows
            if self.max_wait:
                self._changed.notify_all()  # a leader may be waiting for the batch to fill
        while True:
            with self._changed:
                while self._busy and not job.done:
                    self._changed.wait()
                if job.done:
                    break
                if self.stuck:
                    raise WorkerRestarting(
                        "this worker is being replaced after an overdue prediction; retry"
                    )
                self._busy = True
                if self.enabled and self.max_wait:
                    self._changed.wait_for(self._full, timeout=self.max_wait)
                batch = self._take()
            try:
                if batch:
                    self._run(batch)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    @property
    def queued_rows(self) -> int:
        """Rows waiting for the model (not those it is scoring)."""
        return self._queued_rows

    def admit(self) -> None:
        """Refuse a request before it is read when the queue holds MAX_QUEUED_ROWS already.
        Read without the lock: a request let in by a stale count is checked again, with its
        rows, when it queues."""
        if self._queued_rows >= self.max_queued_rows > 0:
            raise self._shed()

    def _shed(self) -> Overloaded:
        self.metrics.shed.inc()
        return Overloaded(
            "this worker has as many rows waiting for the model as MAX_QUEUED_ROWS allows; "
            "retry shortly",
            details={"queued_rows": self._queued_rows, "max_queued_rows": self.max_queued_rows},
        )

    def _full(self) -> bool:
        return self._queued_rows >= self.max_rows

    def _pop(self) -> Job:
        job = self._queue.popleft()
        self._queued_rows -= job.request.rows
        return job

    def _take(self) -> list[Job]:
        """Queued jobs from the head, up to ``max_rows`` rows; one job when batching is off.
        Jobs past their deadline are answered 504 on the way, never scored."""
        now = time.monotonic()
        taken: list[Job] = []
        rows = 0
        while self._queue:
            head = self._queue[0]
            if head.expired(now):
                self._expire(self._pop())
                continue
            if taken and (not self.enabled or rows + head.request.rows > self.max_rows):
                break
            taken.append(self._pop())
            rows += head.request.rows
        return taken

    def _expire(self, job: Job) -> None:
        job.error = DeadlineExpired(
            "the request's deadline passed while it waited for the model; it was not scored",
            details={"waited_s": round(time.perf_counter() - job.queued_at, 3)},
        )
        job.done = True
        self.metrics.expired.inc()

    def _run(self, jobs: list[Job]) -> None:
        """Score jobs together; on failure, alone, so only the guilty one gets the error."""
        started = time.perf_counter()
        for job in jobs:
            self.metrics.queue_seconds.observe(started - job.queued_at)
        try:
            if self.model.runs_inline:
                self._score(jobs, guard=self._thread.call)
            else:
                self._thread.call(lambda: self._score(jobs))
        except DeadlineExceeded as exc:
            self._give_up(jobs, exc)
        except Exception as exc:  # handed to the request that caused it, re-raised there
            if len(jobs) == 1:
                jobs[0].error = exc
            else:
                for job in jobs:
                    if self.stuck:
                        job.error = WorkerRestarting("this worker is being replaced; retry")
                    else:
                        self._run([job])
        finally:
            for job in jobs:
                job.done = True
        self.metrics.prediction_seconds.observe(time.perf_counter() - started)

    def _give_up(self, jobs: list[Job], exc: DeadlineExceeded) -> None:
        """The batch overran: its requests get 504, queued ones 503 (nginx retries those
        elsewhere), and the worker asks to be replaced: its model thread is lost."""
        self.stuck = True
        for job in jobs:
            job.error = PredictionTimeout(str(exc), details={"timeout_s": self._thread.timeout})
        with self._changed:
            while self._queue:
                queued = self._pop()
                queued.error = WorkerRestarting("this worker is being replaced; retry")
                queued.done = True
        self._on_stuck()

    def _score(self, jobs: list[Job], guard: Guard = at_once) -> None:
        requests = [job.request for job in jobs]
        labels, proba = self.model.score(
            merge([r.columns for r in requests]),
            proba=any(r.output != "predict" for r in requests),
            finite=not any(r.has_nulls for r in requests),
            guard=guard,
        )
        offset = 0
        for job in jobs:
            end = offset + job.request.rows
            wants_proba = job.request.output != "predict"
            job.result = self.model.render(
                labels[offset:end],
                proba[offset:end] if wants_proba and proba is not None else None,
            )
            offset = end
        self.metrics.batch_requests.observe(len(jobs))
        self.metrics.batch_rows.observe(offset)
