"""The model's Prometheus metrics; the HTTP ones (prometheus-flask-exporter) join the same
registry in the HTTP layer (``service.http.app``), so this module needs no Flask.

Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set before Python starts
(prometheus_client picks its storage at import time), every worker writes its
own files, and ``GET /metrics`` sums them all, so any worker answers a scrape
with the totals of every worker.

Gauges about the model are published by each worker itself, after fork
(prometheus_client gives a forked child fresh, empty files): see
:meth:`Metrics.publish_model`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PROTOCOLS = ("native", "csv", "open_inference", "mlflow")
"""The front doors a prediction comes in by: this API's JSON, its CSV, the Open Inference
Protocol, MLflow's scoring protocol (JSON or CSV)."""

# Model latency spans a 1-row call (~1 ms) to a 10,000-row batch (~1 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's metrics, registered on one registry per app (tests build many apps)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "model_prediction_requests",
            "Prediction requests accepted (valid, scored), by the protocol they came in.",
            ["protocol"],
            registry=self.registry,
        )
        self.rows = Counter(
            "model_predicted_rows",
            "Rows scored by the model, by the protocol they came in.",
            ["protocol"],
            registry=self.registry,
        )
        for protocol in PROTOCOLS:  # every series from the start: rate() sees the first one
            self.requests.labels(protocol)
            self.rows.labels(protocol)
        self.expired = Counter(
            "model_requests_expired",
            "Requests whose deadline passed before the model reached them (504, not scored).",
            registry=self.registry,
        )
        self.shed = Counter(
            "model_requests_shed",
            "Prediction requests refused because the worker's queue was full (503 overloaded).",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "model_predictions_in_flight",
            "Prediction requests admitted and not yet answered, over the live workers.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.in_flight_limit = Gauge(
            "model_predictions_in_flight_limit",
            "The cap on predictions in flight that the proxy in front enforces (nginx's"
            " MAX_INFLIGHT_PREDICTIONS, sent as X-Inflight-Limit); absent without one.",
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self._in_flight_limit: float | None = None
        self.prediction_seconds = Histogram(
            "model_prediction_duration_seconds",
            "Time spent inside the pipeline, per call (one call may score a batch of requests).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "model_batch_queue_wait_seconds",
            "Time a validated request waited for the model (the previous batch to finish).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "model_batch_requests",
            "Requests scored together in one pipeline call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "model_batch_rows",
            "Rows scored together in one pipeline call.",
            buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384),
            registry=self.registry,
        )
        self.validation_failures = Counter(
            "model_validation_failures",
            "Prediction requests refused before the model ran, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.info = Gauge(
            "model_info",
            "The served model (value 1); labels identify it.",
            # path: plan, fallback or pipeline (see ModelMetadata.serving_path); trained_sklearn:
            # the scikit-learn that pickled it (VERSION_SKEW, service.model.skew)
            ["sha256", "model_type", "loaded_at", "path", "trained_sklearn"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.ready = Gauge(
            "model_ready",
            "1 when a live worker has a warm model, else 0.",
            # The master holds a 0 for every gauge it created while preloading; max over live
            # processes reads "some worker is ready", which is what a scrape can act on.
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.reloads = Counter(
            "model_reloads",
            "Model swaps (activations, HUP reloads) by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.candidate_checks = Counter(
            "model_candidate_checks",
            "Artifacts checked in the isolated process before they may load: uploads to this"
            " replica, and versions other replicas stored, by outcome (accepted, rejected).",
            ["outcome"],
            registry=self.registry,
        )
        self.last_reload = Gauge(
            "model_last_reload_timestamp_seconds",
            "Unix time of the last successful model swap.",
            multiprocess_mode="max",
            registry=self.registry,
        )
        self._published: tuple[int, tuple[str, ...]] | None = None

    def publish_model(self, model: Any, *, ready: bool) -> None:
        """Set this process's model gauges; cheap per request: acts once per pid and model."""
        labels = (
            model.sha256,
            type(model.estimator).__name__,
            model.loaded_at,
            model.serving_path.path,
            model.trained_sklearn,
        )
        current = (os.getpid(), labels)
        if self._published == current:
            return
        if self._published is not None and self._published[0] == current[0]:
            self.info.labels(*self._published[1]).set(0)  # a swap in this process
        self._published = current
        self.info.labels(*labels).set(1)
        self.ready.set(1 if ready else 0)

    def publish_in_flight_limit(self, limit: float) -> None:
        """Record the proxy's cap; cheap per request: writes only when it changes."""
        if limit != self._in_flight_limit:
            self._in_flight_limit = limit
            self.in_flight_limit.set(limit)

    def reload(self, ok: bool) -> None:
        """Count a swap attempt; remember when the last good one happened."""
        self.reloads.labels("success" if ok else "failure").inc()
        if ok:
            self.last_reload.set(time.time())
