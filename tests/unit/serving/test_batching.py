"""Micro-batching: concurrent requests share pipeline calls, and nobody can tell."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sklearn.pipeline import Pipeline

from deploy.processes import wait_until
from service.errors import DeadlineExpired, Overloaded, PredictionFailed, WorkerRestarting
from service.model import compat, payload
from service.model.predictor import Model
from service.model.schema import Column, Schema
from service.serving.batching import Batcher, merge
from service.serving.metrics import Metrics
from tests.estimators import PickyClassifier

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402

PICKY_SCHEMA = Schema(columns=(Column("x", "number"),), example={"x": 1.0}, source="test")


def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def picky_model(delay: float) -> Model:
    pipeline = Pipeline([("m", DataFrameMapper([(["x"], None)])), ("clf", PickyClassifier(delay))])
    pipeline.fit(pd.DataFrame({"x": [-1.0, 1.0]}), [False, True])
    return Model(pipeline, PICKY_SCHEMA, path=None, sha256="0" * 64, size=0, packed_sklearn=None)


def request(schema: Schema, document: Any) -> payload.Request:
    return payload.parse(orjson.dumps(document), schema, max_rows=10_000, unknown="reject")


def concurrently(calls: list[Any]) -> list[Any]:
    """Run calls on threads started together; results (or exceptions) in call order."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:  # collected and asserted on by the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_merge_concatenates_columns() -> None:
    merged = merge(
        [{"a": np.array([1.0]), "b": ["x"]}, {"a": np.array([2.0, 3.0]), "b": ["y", "z"]}]
    )
    assert merged["a"].tolist() == [1.0, 2.0, 3.0]
    assert merged["b"] == ["x", "y", "z"]


def test_lone_request_runs_alone_and_at_once() -> None:
    model = picky_model(delay=0)
    batcher = Batcher(model, metrics())
    result = batcher.predict(request(PICKY_SCHEMA, {"data": {"x": [2.0, -3.0]}}))
    assert result.predictions == [True, False]
    assert model.estimator.calls_ == 1


def test_concurrent_requests_are_batched_with_identical_results() -> None:
    model = picky_model(delay=0.05)
    batcher = Batcher(model, metrics())
    values = [[float(i), -float(i)] for i in range(100, 116)]
    results = concurrently(
        [lambda v=v: batcher.predict(request(PICKY_SCHEMA, {"data": {"x": v}})) for v in values]
    )
    assert [r.predictions for r in results] == [[True, False]] * 16
    assert model.estimator.calls_ < 16, "requests that queued together should share calls"


def test_batching_off_scores_one_request_per_call() -> None:
    model = picky_model(delay=0.01)
    batcher = Batcher(model, metrics(), enabled=False)
    results = concurrently(
        [lambda: batcher.predict(request(PICKY_SCHEMA, {"data": {"x": [1.0]}})) for _ in range(6)]
    )
    assert [r.predictions for r in results] == [[True]] * 6
    assert model.estimator.calls_ == 6


def test_one_refused_request_does_not_fail_its_batch() -> None:
    model = picky_model(delay=0.05)
    batcher = Batcher(model, metrics())
    documents = [{"data": {"x": [float(i)]}} for i in range(1, 9)] + [{"data": {"x": [13.0]}}]
    results = concurrently(
        [lambda d=d: batcher.predict(request(PICKY_SCHEMA, d)) for d in documents]
    )
    assert [r.predictions for r in results[:-1]] == [[True]] * 8
    assert isinstance(results[-1], PredictionFailed)
    assert "13 is unlucky" in results[-1].message


def test_max_rows_caps_a_batch() -> None:
    model = picky_model(delay=0.05)
    batcher = Batcher(model, metrics(), max_rows=2)
    results = concurrently(
        [
            lambda: batcher.predict(request(PICKY_SCHEMA, {"data": {"x": [1.0, 2.0]}}))
            for _ in range(4)
        ]
    )
    assert [r.predictions for r in results] == [[True, True]] * 4
    assert model.estimator.calls_ == 4


def test_max_wait_lets_a_batch_fill() -> None:
    model = picky_model(delay=0)
    batcher = Batcher(model, metrics(), max_rows=4, max_wait=2.0)
    results = concurrently(
        [lambda: batcher.predict(request(PICKY_SCHEMA, {"data": {"x": [1.0]}})) for _ in range(4)]
    )
    assert [r.predictions for r in results] == [[True]] * 4
    assert model.estimator.calls_ == 1


DEMO_ROWS = [
    {"age": 30, "income": 42000.0, "debt_ratio": 0.2, "region": "north", "employment": "salaried"},
    {"age": 61, "income": 18000, "debt_ratio": 0.95, "region": "west", "employment": "unemployed"},
    {"age": 45.0, "income": 91000.5, "debt_ratio": 1, "region": "mars", "employment": "salaried"},
]


@pytest.mark.parametrize("fast_path", [True, False], ids=["plan", "pipeline"])
@pytest.mark.parametrize("output", ["predict", "proba", "both"])
def test_demo_batches_equal_in_process_predictions(
    model_path: Any, demo_pipeline: Pipeline, output: str, fast_path: bool
) -> None:
    """Mixed layouts, column orders and int/float spellings coerce alike inside one batch."""
    from service.model.predictor import load

    model = load(model_path, fast_path=fast_path)
    assert model.serves_by_plan is fast_path
    batcher = Batcher(model, metrics())
    documents: list[Any] = []
    for index, row in enumerate(DEMO_ROWS * 4):
        ordered = dict(reversed(list(row.items()))) if index % 2 else row
        data: Any = [ordered] if index % 3 else {k: [v] for k, v in ordered.items()}
        documents.append({"data": data, "output": output})
    results = concurrently(
        [lambda d=d: batcher.predict(request(model.schema, d)) for d in documents]
    )
    for row, result in zip(DEMO_ROWS * 4, results, strict=True):
        frame = pd.DataFrame([row])
        assert result.predictions == demo_pipeline.predict(frame).tolist()
        if output != "predict":
            # A batch is one matrix product, which BLAS may sum in another order than a
            # one-row product: the same probabilities to the last bit or two, no more.
            np.testing.assert_allclose(
                result.probabilities, demo_pipeline.predict_proba(frame), rtol=1e-12, atol=0
            )
        else:
            assert result.probabilities is None


def test_an_overdue_batch_fails_its_requests_and_frees_every_waiter() -> None:
    """504 for the stuck batch, 503 for the queued ones, nobody left hanging, worker flagged."""
    stuck: list[bool] = []
    model = picky_model(delay=3)
    batcher = Batcher(model, metrics(), timeout=0.5, on_stuck=lambda: stuck.append(True))
    one_row = {"data": {"x": [1.0]}}
    results = concurrently(
        [lambda: batcher.predict(request(PICKY_SCHEMA, one_row)) for _ in range(5)]
    )
    codes = sorted(type(r).__name__ for r in results)
    assert set(codes) <= {"PredictionTimeout", "WorkerRestarting"}
    assert "PredictionTimeout" in codes
    assert stuck == [True]
    assert batcher.stuck
    with pytest.raises(WorkerRestarting):
        batcher.predict(request(PICKY_SCHEMA, one_row))


def test_the_plan_answers_alike_batched_and_unbatched(model_path: Any, demo_data: Any) -> None:
    """Concurrent requests merged into one plan call get what each gets alone: labels
    identical, probabilities within 1e-12 (a matrix product may sum in another order)."""
    from service.model.predictor import load

    model = load(model_path, fast_path=True)
    assert model.serves_by_plan
    frame = demo_data[0].head(40)
    documents = [
        {"data": frame.iloc[i : i + 2].to_dict("list"), "output": "both"} for i in range(0, 40, 2)
    ]
    answers = {}
    for enabled in (True, False):
        batcher = Batcher(model, metrics(), enabled=enabled, max_wait=0.2 if enabled else 0)
        answers[enabled] = concurrently(
            [lambda d=d, b=batcher: b.predict(request(model.schema, d)) for d in documents]
        )
    for batched, alone in zip(answers[True], answers[False], strict=True):
        assert batched.predictions == alone.predictions
        np.testing.assert_allclose(batched.probabilities, alone.probabilities, rtol=0, atol=1e-12)


def model_threads() -> int:
    return sum(thread.name == "model" for thread in threading.enumerate())


def test_a_plan_of_library_code_answers_without_the_model_thread(model_path: Any) -> None:
    """Handing a call to the deadline's thread cost 0.38 ms of a 0.97 ms request; a plan
    that runs only numpy and scikit-learn cannot hang, so the leader scores it itself.
    The operator's code still runs on the model thread (the overdue-batch test above)."""
    from service.model.predictor import load

    model = load(model_path, fast_path=True)
    batcher = Batcher(model, metrics(), timeout=5)
    before = model_threads()
    document = {"data": {k: [v] for k, v in model.schema.example.items()}}
    answer = batcher.predict(request(model.schema, document))
    assert answer.predictions == model.predict(request(model.schema, document).columns).predictions
    assert model_threads() == before


def test_a_request_past_its_deadline_while_queued_is_never_scored() -> None:
    """Its client has stopped waiting: 504, and the model never sees its rows."""
    model = picky_model(delay=0.6)
    registry = CollectorRegistry()
    batcher = Batcher(model, Metrics(registry))
    busy = threading.Thread(
        target=lambda: batcher.predict(request(PICKY_SCHEMA, {"data": {"x": [1.0]}}))
    )
    busy.start()
    wait_until(lambda: model.estimator.seen_ == [1.0], 10)
    late = request(PICKY_SCHEMA, {"data": {"x": [7.0]}})
    with pytest.raises(DeadlineExpired, match="it was not scored"):
        batcher.predict(late, deadline=time.monotonic() + 0.1)
    busy.join(timeout=10)
    assert 7.0 not in model.estimator.seen_
    assert registry.get_sample_value("model_requests_expired_total") == 1
    on_time = request(PICKY_SCHEMA, {"data": {"x": [8.0]}})
    assert batcher.predict(on_time, deadline=time.monotonic() + 10).predictions == [True]


def occupied(batcher: Batcher, model: Model) -> threading.Thread:
    """A request the (slow) model is scoring, so what comes next queues."""
    leader = threading.Thread(
        target=batcher.predict, args=(request(PICKY_SCHEMA, {"data": {"x": [1.0]}}),)
    )
    leader.start()
    wait_until(lambda: model.estimator.calls_ == 1, timeout=10)
    return leader


def queue_then(batcher: Batcher, rows: int) -> threading.Thread:
    """Queue a request of ``rows`` rows behind the one being scored."""
    document = {"data": {"x": [1.0] * rows}}
    waiter = threading.Thread(target=batcher.predict, args=(request(PICKY_SCHEMA, document),))
    waiter.start()
    wait_until(lambda: batcher.queued_rows == rows, timeout=10)
    return waiter


def test_a_full_queue_refuses_before_reading_and_past_its_rows_after() -> None:
    model = picky_model(delay=0.5)
    shed = metrics()
    batcher = Batcher(model, shed, max_queued_rows=3)
    leader = occupied(batcher, model)
    waiter = queue_then(batcher, 2)
    batcher.admit()  # 2 rows wait, under the bound: admitted to be read
    with pytest.raises(Overloaded) as past:
        batcher.predict(request(PICKY_SCHEMA, {"data": {"x": [1.0, 2.0]}}))
    assert past.value.details == {"queued_rows": 2, "max_queued_rows": 3}
    assert past.value.retry_after_s == 1
    third = threading.Thread(
        target=batcher.predict, args=(request(PICKY_SCHEMA, {"data": {"x": [3.0]}}),)
    )
    third.start()
    wait_until(lambda: batcher.queued_rows == 3, timeout=10)
    with pytest.raises(Overloaded):
        batcher.admit()  # full: refused before the body is read
    for thread in (leader, waiter, third):
        thread.join(timeout=10)
    assert shed.registry.get_sample_value("model_requests_shed_total") == 2
    assert batcher.queued_rows == 0, "every row that left the queue was counted out"
    assert 2.0 not in model.estimator.seen_, "a refused request never reaches the model"


def test_a_request_larger_than_the_bound_runs_when_nothing_waits() -> None:
    model = picky_model(delay=0)
    batcher = Batcher(model, metrics(), max_queued_rows=2)
    batcher.admit()
    result = batcher.predict(request(PICKY_SCHEMA, {"data": {"x": [1.0, 2.0, 3.0, -4.0]}}))
    assert result.predictions == [True, True, True, False]


def test_no_bound_admits_whatever_waits() -> None:
    model = picky_model(delay=0.5)
    batcher = Batcher(model, metrics(), max_queued_rows=0)
    leader = occupied(batcher, model)
    waiter = queue_then(batcher, 50)
    batcher.admit()
    for thread in (leader, waiter):
        thread.join(timeout=10)
    assert batcher.queued_rows == 0
