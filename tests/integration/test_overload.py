"""More traffic than the stack can serve, through nginx: what is refused, how, and that what
is admitted is still served fast (issue 14).

A logging model that sleeps on a marker keeps a worker busy for as long as a test needs,
and its log proves what reached it. The acceptance run offers five times the capacity it
measured first, open-loop (``bench/openloop.py``), and checks every answer.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from bench import openloop
from deploy.stack import Stack
from service.settings import Settings
from tests.estimators import PickyClassifier
from tests.integration.conftest import (
    MARKER,
    logging_model,
    one_column_model,
    scored,
    start_stack,
    wait_for,
)

PREDICT = "/model/predict"


def metric(stack: Stack, name: str) -> float | None:
    """A label-less sample's value from the stack's metrics listener (None: absent)."""
    found = re.search(rf"^{name} (\S+)$", requests.get(stack.metrics_url, timeout=30).text, re.M)
    return float(found.group(1)) if found else None


def refusal(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """The error body of a refusal, checked: status, code, the one error shape, Retry-After."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert set(error) == {"code", "message", "details", "request_id"}
    assert response.headers["Retry-After"].isdigit()
    assert response.headers["Retry-After"] != "0"
    return error


def busy_model(stack: Stack, log: Path) -> threading.Thread:
    """Start a request the model sleeps on, and return once the model has it."""
    slow = threading.Thread(
        target=lambda: requests.post(
            stack.base_url + PREDICT, json={"data": {"x": [MARKER]}}, timeout=60
        )
    )
    slow.start()
    wait_for(lambda: MARKER in scored(log), 20, "the slow request to reach the model")
    return slow


def test_past_nginxs_cap_a_prediction_is_refused_at_once_and_probes_still_answer(
    tmp_path: Path,
) -> None:
    log = tmp_path / "scored.txt"
    model = logging_model(tmp_path / "binary", log)
    env = {"WEB_CONCURRENCY": "1", "MAX_INFLIGHT_PREDICTIONS": "1"}
    with start_stack(model, tmp_path / "run", **env) as stack:
        slow = busy_model(stack, log)
        refused = requests.post(stack.base_url + PREDICT, json={"data": {"x": [5.0]}}, timeout=30)
        error = refusal(refused, 503, "overloaded")
        assert refused.headers["Retry-After"] == "1"
        assert error["request_id"] == refused.headers["X-Request-ID"]
        ready = requests.get(stack.base_url + "/readyz", timeout=30)
        assert ready.status_code == 200, "a full replica is healthy: it stays in rotation"
        assert ready.json()["status"] == "ready"
        assert metric(stack, "model_predictions_in_flight") == 1.0
        assert metric(stack, "model_predictions_in_flight_limit") == 1.0
        slow.join(timeout=60)
        assert 5.0 not in scored(log), "nginx refused it: no worker saw it"
        after = requests.post(stack.base_url + PREDICT, json={"data": {"x": [6.0]}}, timeout=30)
        assert after.json()["predictions"] == [True]
        assert metric(stack, "model_predictions_in_flight") == 0.0


def test_a_full_worker_refuses_before_reading_and_counts_it(tmp_path: Path) -> None:
    log = tmp_path / "scored.txt"
    model = logging_model(tmp_path / "binary", log)
    env = {"WEB_CONCURRENCY": "1", "MAX_INFLIGHT_PREDICTIONS": "16", "MAX_QUEUED_ROWS": "2"}
    with start_stack(model, tmp_path / "run", **env) as stack:
        url = stack.base_url + PREDICT
        slow = busy_model(stack, log)
        queued: list[requests.Response] = []
        waiting = threading.Thread(
            target=lambda: queued.append(
                requests.post(url, json={"data": {"x": [1.0, 2.0]}}, timeout=60)
            )
        )
        waiting.start()
        wait_for(
            lambda: metric(stack, "model_predictions_in_flight") == 2.0, 20, "a queued request"
        )
        refused = requests.post(url, json={"data": {"x": [5.0]}}, timeout=30)
        error = refusal(refused, 503, "overloaded")
        assert error["details"] == {"queued_rows": 2, "max_queued_rows": 2}
        # nginx resends a worker's 503 to the next upstream entry (three tries, one worker).
        assert metric(stack, "model_requests_shed_total") == 3.0
        slow.join(timeout=60)
        waiting.join(timeout=60)
        assert queued[0].json()["predictions"] == [True, True]
        assert 5.0 not in scored(log)


def test_each_client_has_its_own_rate_and_probes_have_none(tmp_path: Path) -> None:
    """CLIENT_RATE per client, told apart by the X-Forwarded-For its trusted proxy sent."""
    model = one_column_model(tmp_path / "binary", PickyClassifier())
    env = {"CLIENT_RATE": "1r/m", "CLIENT_BURST": "2", "REAL_IP_FROM": "127.0.0.1"}
    body = {"data": {"x": [1.0]}}
    with start_stack(model, tmp_path / "run", **env) as stack, requests.Session() as http:
        url = stack.base_url + PREDICT
        first = {"X-Forwarded-For": "203.0.113.1"}
        answers = [http.post(url, json=body, headers=first, timeout=30) for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        error = refusal(answers[-1], 429, "too_many_requests")
        assert error["request_id"] == answers[-1].headers["X-Request-ID"]
        other = {"X-Forwarded-For": "203.0.113.2"}
        assert http.post(url, json=body, headers=other, timeout=30).json()["predictions"] == [True]
        refusal(
            http.get(stack.base_url + "/usage", headers=first, timeout=30), 429, "too_many_requests"
        )
        for probe in ("/readyz", "/healthz", "/v2/health/ready", "/ping"):
            assert http.get(stack.base_url + probe, headers=first, timeout=30).status_code == 200


def worker_rss_mib(stack: Stack) -> dict[int, float]:
    """Each worker's resident memory."""
    rss = {}
    for pid in stack.worker_pids():
        status = Path(f"/proc/{pid}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        assert found is not None, status
        rss[pid] = int(found.group(1)) / 1024
    return rss


CALL_S = 0.05
"""Each pipeline call of the acceptance model sleeps this long, whatever its rows: a fixed
cost per call (as a pipeline's overhead is), with the cores free, so the run measures
admission and batching rather than two cores shared with the load generator."""


@pytest.mark.overload
def test_five_times_capacity_is_refused_cleanly_and_what_is_admitted_stays_fast(
    tmp_path: Path,
) -> None:
    """The acceptance run: capacity measured, then five times it offered for 20 s."""
    model = one_column_model(tmp_path / "binary", PickyClassifier(delay=CALL_S))
    body = b'{"data": {"x": [1.0, -2.0]}}'
    with start_stack(model, tmp_path / "run") as stack:
        url = stack.base_url + PREDICT
        unloaded = openloop.offer(url, body, rate=10, duration_s=4)
        assert len(unloaded.ok()) == 40, unloaded.statuses()
        capacity = openloop.offer(url, body, rate=40 / CALL_S, duration_s=3).goodput
        workers, rss = stack.worker_pids(), worker_rss_mib(stack)
        burst = openloop.offer(url, body, rate=5 * capacity, duration_s=20)
        first_after = openloop.offer(url, body, rate=1, duration_s=1).answers
        summary = (
            f"capacity {capacity:.0f}/s, at 5x: {dict(burst.statuses())}, "
            f"broken {dict(burst.broken)}, goodput {burst.goodput:.0f}/s, "
            f"p99 {burst.ok_percentile(0.99) * 1000:.0f} ms "
            f"(unloaded {unloaded.ok_percentile(0.99) * 1000:.0f} ms)"
        )
        assert not burst.broken, summary
        assert set(burst.statuses()) <= {200, 429, 503}, summary
        for answer in burst.answers:
            if answer.status != 200:
                assert answer.code in {"overloaded", "too_many_requests"}, answer
                assert answer.retry_after == "1", answer
        assert burst.goodput >= 0.8 * capacity, summary
        p99 = burst.ok_percentile(0.99)
        assert p99 < Settings.predict_timeout_s, summary
        assert p99 < 4 * unloaded.ok_percentile(0.99), summary
        assert stack.worker_pids() == workers, "no worker restarted"
        grown = {pid: worker_rss_mib(stack)[pid] - before for pid, before in rss.items()}
        assert max(grown.values()) < 20, grown
        assert first_after[0].status == 200
        assert first_after[0].latency_s < 2 * unloaded.ok_percentile(0.5), summary
