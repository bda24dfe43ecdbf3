"""Deadlines end to end, through nginx: a request whose X-Request-Timeout runs out while it
waits for the model is answered 504 and never reaches it (a logging model proves it)."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import requests
from sklearn.pipeline import Pipeline

from service.control import packing
from service.model import compat, signing
from tests.estimators import LoggingSleeper
from tests.integration.conftest import SIGNING_KEY, start_stack, wait_for

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402

MARKER = 999.0


def logging_model(folder: Path, log: Path) -> Path:
    sample = pd.DataFrame({"x": [1.0, -1.0]})
    pipeline = Pipeline(
        [("m", DataFrameMapper([(["x"], None)])), ("clf", LoggingSleeper(str(log), MARKER, 3.0))]
    ).fit(sample, [True, False])
    target, _ = packing.pack(pipeline, sample, folder)
    signing.write_signature(target, SIGNING_KEY.encode())
    return target


def scored(log: Path) -> list[float]:
    return [float(line) for line in log.read_text().split()] if log.exists() else []


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
