"""Deadlines end to end, through nginx: a request whose X-Request-Timeout runs out while it
waits for the model is answered 504 and never reaches it (a logging model proves it)."""

from __future__ import annotations

import threading
from pathlib import Path

import requests

from tests.integration.conftest import MARKER, logging_model, scored, start_stack, wait_for


def test_a_request_that_expires_while_queued_gets_504_and_never_reaches_the_model(
    tmp_path: Path,
) -> None:
    log = tmp_path / "scored.txt"
    model = logging_model(tmp_path / "binary", log)
    with start_stack(model, tmp_path / "run", WEB_CONCURRENCY="1") as stack:
        url = stack.base_url + "/model/predict"
        slow = threading.Thread(
            target=lambda: requests.post(url, json={"data": {"x": [MARKER]}}, timeout=30)
        )
        slow.start()
        wait_for(lambda: MARKER in scored(log), 20, "the slow request to reach the model")
        late = requests.post(
            url, json={"data": {"x": [7.0]}}, headers={"X-Request-Timeout": "0.5"}, timeout=30
        )
        slow.join(timeout=30)
        assert late.status_code == 504, late.text
        assert late.json()["error"]["code"] == "deadline_exceeded"
        assert 7.0 not in scored(log)
        on_time = requests.post(
            url, json={"data": {"x": [8.0]}}, headers={"X-Request-Timeout": "10"}, timeout=30
        )
        assert on_time.json()["predictions"] == [True]
        assert 8.0 in scored(log)
        metrics = requests.get(stack.metrics_url, timeout=30).text
        assert "model_requests_expired_total 1.0" in metrics
