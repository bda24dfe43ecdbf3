"""The model's metrics: one registry per app, model gauges published once per process and
model, swaps counted by outcome."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry
from sklearn.linear_model import LogisticRegression, Ridge

from service.serving import metrics as metrics_module
from service.serving.metrics import PROTOCOLS, Metrics

NATIVE = {"protocol": "native"}

FIRST = SimpleNamespace(
    sha256="a" * 64,
    estimator=LogisticRegression(),
    loaded_at="2026-01-01",
    serving_path=SimpleNamespace(path="plan"),
    trained_sklearn="1.7.2",
)
SECOND = SimpleNamespace(
    sha256="b" * 64,
    estimator=Ridge(),
    loaded_at="2026-01-02",
    serving_path=SimpleNamespace(path="fallback"),
    trained_sklearn="1.8.0",
)


def info(registry: CollectorRegistry, model: SimpleNamespace) -> float | None:
    labels = {
        "sha256": model.sha256,
        "model_type": type(model.estimator).__name__,
        "loaded_at": model.loaded_at,
        "path": model.serving_path.path,
        "trained_sklearn": model.trained_sklearn,
    }
    return registry.get_sample_value("model_info", labels)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def test_metrics_live_on_the_registry_they_are_given(registry: CollectorRegistry) -> None:
    """Tests build many apps: each app's metrics are its own, never a global's."""
    mine, other = Metrics(registry), Metrics(CollectorRegistry())
    mine.rows.labels("native").inc(3)
    assert mine.registry is registry
    assert registry.get_sample_value("model_predicted_rows_total", NATIVE) == 3
    assert other.registry.get_sample_value("model_predicted_rows_total", NATIVE) == 0


def test_every_protocol_has_its_series_from_the_start(registry: CollectorRegistry) -> None:
    """A series that appears only with its first request makes rate() miss that request."""
    Metrics(registry)
    for protocol in PROTOCOLS:
        for name in ("model_predicted_rows_total", "model_prediction_requests_total"):
            assert registry.get_sample_value(name, {"protocol": protocol}) == 0, (name, protocol)


def test_publish_sets_the_model_info_and_readiness(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.publish_model(FIRST, ready=True)
    assert info(registry, FIRST) == 1
    assert registry.get_sample_value("model_ready") == 1


def test_an_unready_model_publishes_zero(registry: CollectorRegistry) -> None:
    Metrics(registry).publish_model(FIRST, ready=False)
    assert info(registry, FIRST) == 1
    assert registry.get_sample_value("model_ready") == 0


def test_publish_acts_once_per_process_and_model(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Called before every request, so a repeat for the same model and pid does nothing."""
    metrics.publish_model(FIRST, ready=True)
    metrics.info.labels(FIRST.sha256, "LogisticRegression", FIRST.loaded_at, "plan", "1.7.2").set(7)
    metrics.publish_model(FIRST, ready=False)
    assert info(registry, FIRST) == 7
    assert registry.get_sample_value("model_ready") == 1


def test_a_swap_zeroes_the_old_model_info(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.publish_model(FIRST, ready=True)
    metrics.publish_model(SECOND, ready=True)
    assert info(registry, FIRST) == 0
    assert info(registry, SECOND) == 1
    assert registry.get_sample_value("model_ready") == 1


def as_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the metrics module sees another pid: a fork, without forking."""
    child_pid = os.getpid() + 1
    monkeypatch.setattr(metrics_module, "os", SimpleNamespace(getpid=lambda: child_pid))


def test_a_forked_worker_publishes_an_unchanged_model_again(
    metrics: Metrics, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a fork the child's gauges start empty: it must publish even the same model."""
    metrics.publish_model(FIRST, ready=True)
    metrics.ready.set(0)  # what a fresh child's gauge reads
    as_forked_child(monkeypatch)
    metrics.publish_model(FIRST, ready=True)
    assert registry.get_sample_value("model_ready") == 1
    metrics.publish_model(SECOND, ready=True)
    assert info(registry, FIRST) == 0, "a swap inside the child retires the old labels"
    assert info(registry, SECOND) == 1


def test_a_forked_worker_never_zeroes_what_its_parent_published(
    metrics: Metrics, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics.publish_model(FIRST, ready=True)
    as_forked_child(monkeypatch)
    metrics.publish_model(SECOND, ready=True)
    assert (info(registry, FIRST), info(registry, SECOND)) == (1, 1)


def test_reloads_count_outcomes_and_remember_the_last_success(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    def reloads(outcome: str) -> float | None:
        return registry.get_sample_value("model_reloads_total", {"outcome": outcome})

    assert registry.get_sample_value("model_last_reload_timestamp_seconds") == 0
    before = time.time()
    metrics.reload(True)
    after = time.time()
    stamp = registry.get_sample_value("model_last_reload_timestamp_seconds")
    assert stamp is not None
    assert before <= stamp <= after
    metrics.reload(False)
    metrics.reload(False)
    assert (reloads("success"), reloads("failure")) == (1, 2)
    assert registry.get_sample_value("model_last_reload_timestamp_seconds") == stamp


def test_latency_histograms_use_the_model_buckets(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.prediction_seconds.observe(0.003)
    metrics.batch_requests.observe(3)
    bucket = "model_prediction_duration_seconds_bucket"
    assert registry.get_sample_value(bucket, {"le": "0.0025"}) == 0
    assert registry.get_sample_value(bucket, {"le": "0.005"}) == 1
    assert registry.get_sample_value("model_batch_requests_bucket", {"le": "2.0"}) == 0
    assert registry.get_sample_value("model_batch_requests_bucket", {"le": "4.0"}) == 1
