"""What the HTTP layer talks to: the served model, its readiness, and timed predictions.

Like MLServer's runtime (load / predict / ready), it keeps the HTTP layer
free of scikit-learn and pandas: ``service.http.routes`` hands it a request body and
gets JSON-native results back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from pydantic import BaseModel

from service.errors import DeadlineExpired, NotReady, ReloadFailed
from service.model import payload
from service.model.payload import Request
from service.model.predictor import Model, Prediction
from service.model.schema import Schema
from service.serving.batching import Batcher
from service.serving.metrics import Metrics
from service.settings import Settings

log = logging.getLogger("service.serving.runtime")


class PredictUsage(BaseModel):
    """How to call `POST /model/predict`, with a request the served model accepts."""

    content_type: str
    body: dict[str, str]
    features: list[str]
    max_rows: int
    example_request: dict[str, Any]
    curl: str


class Usage(BaseModel):
    """How to call the API, with a working example for this model."""

    service: str
    endpoints: dict[str, str]
    predict: PredictUsage


class Reader(Protocol):
    """A protocol's body reader: the body (bytes, or an envelope read already) as a checked
    request against the served model's schema and the limits."""

    def __call__(self, body: Any, schema: Schema, /, *, max_rows: int, unknown: str) -> Request: ...


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


@dataclass(frozen=True)
class Serving:
    """What one model version serves with; replaced as a whole, so a request that took
    it keeps a consistent model, batcher and readiness even while a swap happens."""

    model: Model
    batcher: Batcher
    readiness: Readiness


class Runtime:
    """The served model and how to use it; built once per app, before gunicorn forks."""

    def __init__(self, model: Model, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.on_stuck: Callable[[], None] = lambda: None
        """What a worker does once a prediction overran its deadline: gunicorn's post_fork
        hook makes it stop the worker so the master replaces it."""
        self.draining: Callable[[], bool] = lambda: False
        """Whether the replica was told to stop and drains (``SHUTDOWN_DRAIN_S``): gunicorn's
        post_fork hook makes it look for the master's drain mark."""
        self.serving = self._prepare(model)

    @property
    def model(self) -> Model:
        return self.serving.model

    @property
    def readiness(self) -> Readiness:
        if self.draining():
            return Readiness(False, "stopping: draining before the graceful stop")
        if self.serving.batcher.stuck:
            return Readiness(False, "a prediction overran PREDICT_TIMEOUT_S; worker restarting")
        return self.serving.readiness

    def _prepare(self, model: Model) -> Serving:
        failure = model.warm_up()
        if failure is not None:
            log.error("model not ready: %s", failure)
        batcher = Batcher(
            model,
            self.metrics,
            enabled=self.settings.batching,
            max_rows=self.settings.batch_max_rows,
            max_queued_rows=self.settings.max_queued_rows,
            max_wait=self.settings.batch_max_wait_ms / 1000,
            timeout=self.settings.predict_timeout_s,
            on_stuck=lambda: self.on_stuck(),
        )
        readiness = (
            Readiness(False, failure) if failure else Readiness(True, "model loaded and warm")
        )
        return Serving(model=model, batcher=batcher, readiness=readiness)

    def swap(self, model: Model) -> None:
        """Serve ``model`` from now on, if it warms up; requests in flight finish on the old."""
        serving = self._prepare(model)
        if not serving.readiness.ready:
            raise ReloadFailed(serving.readiness.reason, details={"sha256": model.sha256})
        self.serving = serving

    def publish(self) -> None:
        """Per-worker gauges; see :meth:`Metrics.publish_model`."""
        self.metrics.publish_model(self.model, ready=self.readiness.ready)

    def predict(
        self,
        body: Any,
        read: Reader = payload.parse,
        protocol: str = "native",
        deadline: float | None = None,
    ) -> tuple[Prediction, int, str]:
        """Read a request body with its protocol's reader, and score it: the prediction,
        its rows, and the sha256 of the version that computed it. Every protocol meets the
        same schema, limits, batcher and plan here. Past its ``deadline`` (a
        ``time.monotonic()``) a request is dropped, unread or unscored."""
        serving = self.serving
        if not serving.readiness.ready:
            raise NotReady(serving.readiness.reason)
        if deadline is not None and time.monotonic() >= deadline:
            self.metrics.expired.inc()
            raise DeadlineExpired("the request's deadline passed before a worker took it")
        request = read(
            body,
            serving.model.schema,
            max_rows=self.settings.max_rows,
            unknown=self.settings.unknown_columns,
        )
        result = serving.batcher.predict(request, deadline)
        self.metrics.requests.labels(protocol).inc()
        self.metrics.rows.labels(protocol).inc(request.rows)
        return result, request.rows, serving.model.sha256

    def admit(self) -> None:
        """Refuse a prediction before its body is read when this worker's queue is full
        (503 ``overloaded``); see :meth:`Batcher.admit`."""
        self.serving.batcher.admit()

    def usage(self, base_url: str) -> Usage:
        """How to call the API, with a request built from this model's example row."""
        example = {"data": {k: [v] for k, v in self.model.schema.example.items()}}
        outputs = "predict" if not self.model.has_proba else '"predict", "proba" or "both"'
        return Usage(
            service="scikit-learn pipeline server",
            endpoints={
                "GET /usage": "this page",
                "GET /model": "model metadata: features, steps, task, classes, versions",
                "GET /model/download": "the artifact (ETag: its sha256)",
                "POST /model/predict": "predictions for rows sent as columns or records",
                "GET /healthz": "liveness: the process answers",
                "GET /readyz": "readiness: the model is loaded and warm",
                "GET /openapi.json": "the OpenAPI 3.1 contract, built from this model's schema",
                "GET /docs": "the contract as a browsable page",
            },
            predict=PredictUsage(
                content_type="application/json",
                body={
                    "data": "columns {column: [values]} or records [{column: value}]",
                    "output": f"optional: {outputs}",
                },
                features=[c.name for c in self.model.schema.columns],
                max_rows=self.settings.max_rows,
                example_request=example,
                curl=(
                    f"curl -s -X POST {base_url}model/predict "
                    "-H 'Content-Type: application/json' "
                    f"-d '{_compact(example)}'"
                ),
            ),
        )


def _compact(document: Any) -> str:
    return orjson.dumps(document).decode()
