"""What the HTTP layer talks to: the served model, its readiness, and timed predictions.

Like MLServer's runtime (load / predict / ready), it keeps the HTTP layer
free of scikit-learn and pandas: ``service.api`` hands it a request body and
gets JSON-native results back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from service import payload
from service.batching import Batcher
from service.errors import NotReady, ServiceError
from service.metrics import Metrics
from service.model import Model, Prediction
from service.settings import Settings

log = logging.getLogger("service.runtime")


@dataclass
class Readiness:
    ready: bool
    reason: str


class Runtime:
    """The loaded model and how to use it; built once per app, before gunicorn forks."""

    def __init__(self, model: Model, settings: Settings, metrics: Metrics) -> None:
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.readiness = self._warm_up()
        self.batcher = Batcher(
            model,
            metrics,
            enabled=settings.batching,
            max_rows=settings.batch_max_rows,
            max_wait=settings.batch_max_wait_ms / 1000,
        )

    def _warm_up(self) -> Readiness:
        """Predict the schema's example row once: proves the model serves before traffic comes."""
        columns = {name: [value] for name, value in self.model.schema.example.items()}
        try:
            frame = payload.to_frame(self.model.schema, columns, unknown="ignore")
            self.model.predict(frame, "both" if self.model.has_proba else "predict")
        except (ServiceError, Exception) as exc:  # any failure means "not ready", never a crash
            log.error("warm-up prediction failed: %s", exc)
            return Readiness(False, f"warm-up prediction on the example row failed: {exc}")
        return Readiness(True, "model loaded and warm")

    def publish(self) -> None:
        """Per-worker gauges; see :meth:`Metrics.publish_model`."""
        self.metrics.publish_model(self.model, ready=self.readiness.ready)

    def predict(self, body: bytes) -> tuple[Prediction, int]:
        """Validate a request body and score it; returns the prediction and the row count."""
        if not self.readiness.ready:
            raise NotReady(self.readiness.reason)
        request = payload.parse(
            body,
            self.model.schema,
            max_rows=self.settings.max_rows,
            unknown=self.settings.unknown_columns,
        )
        result = self.batcher.predict(request)
        self.metrics.rows.inc(request.rows)
        return result, request.rows

    def usage(self, base_url: str) -> dict[str, Any]:
        """How to call the API, with a request built from this model's example row."""
        example = {"data": {k: [v] for k, v in self.model.schema.example.items()}}
        outputs = "predict" if not self.model.has_proba else '"predict", "proba" or "both"'
        return {
            "service": "scikit-learn pipeline server",
            "endpoints": {
                "GET /usage": "this page",
                "GET /model": "model metadata: features, steps, task, classes, versions",
                "GET /model/download": "the artifact (ETag: its sha256)",
                "POST /model/predict": "predictions for rows sent as columns or records",
                "GET /healthz": "liveness: the process answers",
                "GET /readyz": "readiness: the model is loaded and warm",
            },
            "predict": {
                "content_type": "application/json",
                "body": {
                    "data": "columns {column: [values]} or records [{column: value}]",
                    "output": f"optional: {outputs}",
                },
                "features": [c.name for c in self.model.schema.columns],
                "max_rows": self.settings.max_rows,
                "example_request": example,
                "curl": (
                    f"curl -s -X POST {base_url}model/predict "
                    "-H 'Content-Type: application/json' "
                    f"-d '{_compact(example)}'"
                ),
            },
        }


def _compact(document: Any) -> str:
    import orjson

    return orjson.dumps(document).decode()
