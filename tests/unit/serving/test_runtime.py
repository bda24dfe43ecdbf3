"""The runtime the HTTP layer talks to, built directly (no Flask): readiness, predictions
with and without batching, swaps of the served snapshot, usage."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from service.errors import (
    NotReady,
    PayloadTooLarge,
    PredictionTimeout,
    ReloadFailed,
    SchemaViolation,
    WorkerRestarting,
)
from service.model import predictor, schema
from service.serving.metrics import Metrics
from service.serving.runtime import Runtime
from service.settings import Settings
from tests.estimators import FailingClassifier, PickyClassifier

ROWS = [
    {"age": 30, "income": 42000.0, "debt_ratio": 0.2, "region": "north", "employment": "salaried"},
    {"age": 61, "income": 18000, "debt_ratio": 0.95, "region": "west", "employment": "unemployed"},
    {"age": 45, "income": 91000.5, "debt_ratio": 1, "region": "east", "employment": "salaried"},
]


class Gated(ClassifierMixin, BaseEstimator):
    """Predicts ``x > 0``; a row equal to 999 holds the call until ``gate`` opens."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate

    def fit(self, x: Any, y: Any) -> Gated:
        self.classes_ = np.array([False, True])
        return self

    def predict(self, x: Any) -> Any:
        first = np.asarray(x, dtype=float)[:, 0]
        if self.gate is not None and np.any(first == 999):
            self.gate.wait(30)
        return first > 0


def served(estimator: Any) -> predictor.Model:
    """A one-column pipeline (ColumnTransformer first, as the contract wants) as a Model."""
    frame = pd.DataFrame({"x": [-1.0, 1.0]})
    first = ColumnTransformer([("x", "passthrough", ["x"])])
    pipeline = Pipeline([("columns", first), ("clf", estimator)]).fit(frame, [False, True])
    return predictor.Model(
        pipeline,
        schema.infer(pipeline),
        path=Path("pipeline.pkl"),
        sha256="c" * 64,
        size=0,
        packed_sklearn=None,
    )


def body(document: Any) -> bytes:
    return orjson.dumps(document)


def rendered(answer: Any) -> Any:
    """An answer as its route sends it: JSON-native (response models are dumped)."""
    return answer.model_dump(mode="json") if hasattr(answer, "model_dump") else answer


@pytest.fixture(scope="module")
def demo_model(model_path: Path) -> predictor.Model:
    return predictor.load(model_path)


@pytest.fixture
def settings(model_path: Path) -> Settings:
    return Settings(model_path=model_path, allow_unsigned=True, max_rows=10)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def build(settings: Settings, registry: CollectorRegistry) -> Callable[..., Runtime]:
    metrics = Metrics(registry)

    def make(model: predictor.Model, **changes: Any) -> Runtime:
        return Runtime(model, dataclasses.replace(settings, **changes), metrics)

    return make


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # lets the abandoned model thread finish


def test_a_model_that_warms_up_is_ready(
    build: Callable[..., Runtime], demo_model: predictor.Model
) -> None:
    runtime = build(demo_model)
    assert runtime.model is demo_model
    assert (runtime.readiness.ready, runtime.readiness.reason) == (True, "model loaded and warm")


@pytest.mark.parametrize("batching", [True, False], ids=["batching", "no-batching"])
def test_predict_scores_as_the_pipeline_does(
    build: Callable[..., Runtime],
    demo_model: predictor.Model,
    demo_pipeline: Pipeline,
    registry: CollectorRegistry,
    batching: bool,
) -> None:
    runtime = build(demo_model, batching=batching)
    assert runtime.serving.batcher.enabled is batching
    result, rows, sha = runtime.predict(body({"data": ROWS, "output": "both"}))
    frame = pd.DataFrame(ROWS)
    assert result.predictions == demo_pipeline.predict(frame).tolist()
    np.testing.assert_allclose(result.probabilities, demo_pipeline.predict_proba(frame))
    assert result.classes == ["approved", "declined"]
    assert (rows, sha) == (3, demo_model.sha256)
    assert registry.get_sample_value("model_predicted_rows_total", {"protocol": "native"}) == 3


@pytest.mark.parametrize(("batching", "shared"), [(True, True), (False, False)])
def test_concurrent_predictions_share_calls_only_with_batching_on(
    build: Callable[..., Runtime], batching: bool, shared: bool
) -> None:
    model = served(PickyClassifier(delay=0.05))
    runtime = build(model, batching=batching)
    warm_up_calls = model.estimator.calls_
    results: list[Any] = [None] * 6
    start = threading.Barrier(6)

    def call(index: int) -> None:
        start.wait()
        results[index] = runtime.predict(body({"data": {"x": [float(index + 1)]}}))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [r[0].predictions for r in results] == [[True]] * 6
    calls = model.estimator.calls_ - warm_up_calls
    assert (calls < 6) is shared, f"{calls} pipeline calls for 6 requests"


def test_batching_settings_reach_the_batcher(
    build: Callable[..., Runtime], demo_model: predictor.Model
) -> None:
    """BATCH_MAX_WAIT_MS is milliseconds; the batcher waits in seconds."""
    batcher = build(demo_model, batch_max_rows=7, batch_max_wait_ms=250.0).serving.batcher
    assert (batcher.enabled, batcher.max_rows, batcher.max_wait) == (True, 7, 0.25)


def test_invalid_requests_are_refused_and_not_counted(
    build: Callable[..., Runtime], demo_model: predictor.Model, registry: CollectorRegistry
) -> None:
    runtime = build(demo_model, max_rows=2)
    with pytest.raises(PayloadTooLarge):
        runtime.predict(body({"data": ROWS}))
    with pytest.raises(SchemaViolation, match="unknown column"):
        runtime.predict(body({"data": [{**ROWS[0], "extra": 1}]}))
    assert registry.get_sample_value("model_predicted_rows_total", {"protocol": "native"}) == 0
    lenient = build(demo_model, unknown_columns="ignore")
    assert lenient.predict(body({"data": [{**ROWS[0], "extra": 1}]}))[1] == 1


def test_a_model_that_fails_its_warm_up_is_not_ready(build: Callable[..., Runtime]) -> None:
    runtime = build(served(FailingClassifier()))
    assert not runtime.readiness.ready
    assert "warm-up prediction on the example row failed" in runtime.readiness.reason
    assert "refuses every row" in runtime.readiness.reason
    with pytest.raises(NotReady, match="warm-up prediction"):
        runtime.predict(body({"data": {"x": [1.0]}}))


def test_a_swap_serves_the_new_model_and_requests_in_flight_keep_the_old(
    build: Callable[..., Runtime], demo_model: predictor.Model, regressor_path: Path
) -> None:
    runtime = build(demo_model)
    in_flight = runtime.serving
    regressor = predictor.load(regressor_path)
    runtime.swap(regressor)
    assert runtime.model is regressor
    assert runtime.readiness.ready
    assert (in_flight.model, in_flight.batcher.model) == (demo_model, demo_model)
    assert in_flight.batcher is not runtime.serving.batcher
    result, rows, sha = runtime.predict(
        body({"data": {"size": [80.0], "rooms": [3.0], "city": ["nice"]}})
    )
    assert (rows, sha) == (1, regressor.sha256)
    assert isinstance(result.predictions[0], float)
    with pytest.raises(SchemaViolation):
        runtime.predict(body({"data": ROWS[:1]}))


def test_a_swap_to_a_model_that_cannot_serve_keeps_the_old(
    build: Callable[..., Runtime], demo_model: predictor.Model
) -> None:
    runtime = build(demo_model)
    broken = served(FailingClassifier())
    with pytest.raises(ReloadFailed, match="refuses every row") as caught:
        runtime.swap(broken)
    assert caught.value.details == {"sha256": broken.sha256}
    assert runtime.model is demo_model
    assert runtime.readiness.ready
    assert runtime.predict(body({"data": ROWS[:1]}))[2] == demo_model.sha256


def test_an_overdue_prediction_makes_the_worker_unready_and_asks_to_be_replaced(
    build: Callable[..., Runtime], gate: threading.Event
) -> None:
    runtime = build(served(Gated(gate)), predict_timeout_s=0.1)
    stuck: list[bool] = []
    runtime.on_stuck = lambda: stuck.append(True)  # set after construction, as post_fork does
    with pytest.raises(PredictionTimeout):
        runtime.predict(body({"data": {"x": [999.0]}}))
    assert stuck == [True]
    assert not runtime.readiness.ready
    assert "overran PREDICT_TIMEOUT_S" in runtime.readiness.reason
    with pytest.raises(WorkerRestarting):
        runtime.predict(body({"data": {"x": [1.0]}}))


def test_publish_reports_the_served_model(
    build: Callable[..., Runtime],
    demo_model: predictor.Model,
    regressor_path: Path,
    registry: CollectorRegistry,
) -> None:
    def info(model: predictor.Model) -> float | None:
        labels = {
            "sha256": model.sha256,
            "model_type": type(model.estimator).__name__,
            "loaded_at": model.loaded_at,
            "path": model.serving_path.path,
            "trained_sklearn": model.trained_sklearn,
        }
        return registry.get_sample_value("model_info", labels)

    runtime = build(demo_model)
    runtime.publish()
    assert (info(demo_model), registry.get_sample_value("model_ready")) == (1, 1)
    regressor = predictor.load(regressor_path)
    runtime.swap(regressor)
    runtime.publish()
    assert (info(demo_model), info(regressor)) == (0, 1)


def test_usage_describes_this_model_with_a_request_that_works(
    build: Callable[..., Runtime], demo_model: predictor.Model
) -> None:
    runtime = build(demo_model)
    usage = rendered(runtime.usage("http://api.test/"))
    predict = usage["predict"]
    assert predict["features"] == list(demo_model.schema.names)
    assert predict["max_rows"] == 10
    assert '"proba"' in predict["body"]["output"]
    example = predict["example_request"]
    assert example == {"data": {k: [v] for k, v in demo_model.schema.example.items()}}
    assert predict["curl"].startswith("curl -s -X POST http://api.test/model/predict ")
    assert predict["curl"].endswith(f"-d '{orjson.dumps(example).decode()}'")
    assert runtime.predict(orjson.dumps(example))[1] == 1
    assert all(path.split()[1].startswith("/") for path in usage["endpoints"])


def test_usage_offers_only_predict_without_predict_proba(
    build: Callable[..., Runtime], regressor_path: Path
) -> None:
    usage = rendered(build(predictor.load(regressor_path)).usage("http://api.test/"))
    assert usage["predict"]["body"]["output"] == "optional: predict"
    assert usage["predict"]["features"] == ["size", "rooms", "city"]
