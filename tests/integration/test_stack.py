"""The product as deployed: nginx in front of pre-forked gunicorn workers, end to end."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import cloudpickle
import orjson
import pandas as pd
import pytest
import requests
import yaml

from deploy.stack import ROOT, Stack
from tests.integration.conftest import BODY_LIMIT, wait_for
from tests.integration.metrics_text import sample_sum

ROW = {"age": 41, "income": 52000.0, "debt_ratio": 0.31, "region": "east", "employment": "salaried"}


def predict(http: requests.Session, stack: Stack, rows: int = 1, **headers: str) -> Any:
    data = {k: [v] * rows for k, v in ROW.items()}
    return http.post(f"{stack.base_url}/model/predict", json={"data": data}, headers=headers)


def metrics(http: requests.Session, stack: Stack) -> str:
    response = http.get(stack.metrics_url, timeout=5)
    assert response.status_code == 200
    return response.text


def test_predict_through_nginx(http: requests.Session, stack: Stack, stack_model: Path) -> None:
    response = predict(http, stack, rows=3, **{"X-Request-ID": "trace-me-1"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Request-ID"] == "trace-me-1"
    body = response.json()
    pipeline = cloudpickle.loads(stack_model.read_bytes())
    expected = pipeline.predict(pd.DataFrame({k: [v] * 3 for k, v in ROW.items()})).tolist()
    assert body["predictions"] == expected
    assert body["model"]["sha256"] == hashlib.sha256(stack_model.read_bytes()).hexdigest()
    log = (stack.run_dir / "gunicorn.log").read_text()
    assert '"request_id":"trace-me-1"' in log
    assert '"request_id":"trace-me-1"' in (stack.run_dir / "nginx-access.log").read_text()


def test_metadata_usage_and_probes(http: requests.Session, stack: Stack) -> None:
    meta = http.get(f"{stack.base_url}/model").json()
    assert meta["model_type"] == "LogisticRegression"
    usage = http.get(f"{stack.base_url}/usage").json()
    assert usage["predict"]["example_request"]["data"].keys() == ROW.keys()
    assert http.get(f"{stack.base_url}/healthz").json() == {"status": "ok"}
    ready = http.get(f"{stack.base_url}/readyz")
    assert (ready.status_code, ready.json()["sha256"]) == (200, meta["sha256"])


def test_errors_keep_the_service_shape(http: requests.Session, stack: Stack) -> None:
    response = http.post(f"{stack.base_url}/model/predict", json={"data": {"age": ["x"]}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "schema_violation"
    assert error["request_id"] == response.headers["X-Request-ID"]
    missing = http.get(f"{stack.base_url}/nowhere")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


def test_security_headers_and_no_versions(http: requests.Session, stack: Stack) -> None:
    for path in ("/healthz", "/nowhere", "/metrics"):
        response = http.get(stack.base_url + path)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Server"] == "nginx"


def test_download_is_served_by_nginx(
    http: requests.Session, stack: Stack, stack_model: Path
) -> None:
    artifact = stack_model.read_bytes()
    sha = hashlib.sha256(artifact).hexdigest()
    response = http.get(f"{stack.base_url}/model/download")
    assert response.status_code == 200
    assert response.content == artifact
    assert response.headers["ETag"] == f'"{sha}"'
    assert response.headers["Content-Disposition"] == "attachment; filename=pipeline.pkl"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Accept-Ranges"] == "bytes"
    cached = http.get(f"{stack.base_url}/model/download", headers={"If-None-Match": f'"{sha}"'})
    assert (cached.status_code, cached.content) == (304, b"")
    part = http.get(f"{stack.base_url}/model/download", headers={"Range": "bytes=0-9"})
    assert (part.status_code, part.content) == (206, artifact[:10])
    internal = http.get(f"{stack.base_url}/_artifacts/store/{sha}/pipeline.pkl")
    assert internal.status_code == 404


@pytest.mark.parametrize("path", ["/metrics", "/metrics?format=x", "//metrics", "/%6detrics"])
def test_metrics_are_not_public(http: requests.Session, stack: Stack, path: str) -> None:
    response = http.get(stack.base_url + path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "model_predicted_rows_total" not in response.text


def test_body_over_limit_gets_nginx_json_413(http: requests.Session, stack: Stack) -> None:
    body = b'{"data": {"age": [' + b"1," * BODY_LIMIT + b"1]}}"
    response = http.post(
        f"{stack.base_url}/model/predict",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_entity_too_large"
    assert error["details"] == {"max_body_bytes": BODY_LIMIT}
    assert error["request_id"] == response.headers["X-Request-ID"]


def test_requests_spread_over_workers_are_all_counted(
    http: requests.Session, stack: Stack, prometheus: str
) -> None:
    before = metrics(http, stack)
    sent, rows_each, marker = 60, 4, uuid.uuid4().hex[:8]
    with_threads(
        8,
        lambda i: _ok(predict(requests, stack, rows_each, **{"X-Request-ID": f"{marker}-{i}"})),
        sent,
    )
    after = metrics(http, stack)
    count = "flask_http_request_duration_seconds_count"
    labels = {"endpoint": "api.predict", "status": "200"}
    assert sample_sum(after, count, **labels) - sample_sum(before, count, **labels) == sent
    rows = sample_sum(after, "model_predicted_rows_total") - sample_sum(
        before, "model_predicted_rows_total"
    )
    assert rows == sent * rows_each
    pids = {
        line.split('"pid":')[1].rstrip("}")
        for line in (stack.run_dir / "gunicorn.log").read_text().splitlines()
        if f'"request_id":"{marker}-' in line
    }
    assert len(pids) == 2, "requests should reach both workers"
    expected = sample_sum(after, "model_predicted_rows_total")

    def scraped() -> bool:
        answer = requests.get(
            f"{prometheus}/api/v1/query", params={"query": "sum(model_predicted_rows_total)"}
        ).json()
        result = answer["data"]["result"]
        return bool(result) and float(result[0]["value"][1]) >= expected

    wait_for(scraped, 20, "prometheus to scrape the rows counter")
    answer = requests.get(
        f"{prometheus}/api/v1/query", params={"query": "sum(model_predicted_rows_total)"}
    ).json()
    assert float(answer["data"]["result"][0]["value"][1]) == expected


def test_nginx_own_405_names_the_methods_each_route_takes(stack: Stack) -> None:
    """nginx refuses TRACE before any location runs; its Allow agrees with the app's routes
    as the OpenAPI contract lists them (HEAD with GET, OPTIONS everywhere)."""
    paths = requests.get(stack.base_url + "/openapi.json", timeout=10).json()["paths"]
    paths.pop("/metrics")  # served on the internal listener only: no route on this one
    for template, operations in paths.items():
        path = re.sub(r"\{[^}]+\}", "0" * 64, template)
        methods = {m.upper() for m in operations if m in ("get", "post", "delete", "put")}
        expected = methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
        answer = requests.request("TRACE", stack.base_url + path, timeout=10)
        assert answer.status_code == 405, path
        assert answer.json()["error"]["code"] == "method_not_allowed"
        assert set(answer.headers.get("Allow", "").split(", ")) == expected, path


def test_usage_curl_names_the_address_the_client_used(stack: Stack) -> None:
    """The port survives nginx, and forwarding headers a client forges change nothing:
    nginx sets its own, and only nginx reaches the app."""
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    usage = requests.get(stack.base_url + "/usage", headers=forged, timeout=10).json()
    assert usage["predict"]["curl"].startswith(f"curl -s -X POST {stack.base_url}/model/predict ")


def test_gunicorn_starts_without_warnings(stack: Stack) -> None:
    """Its configuration is consistent (no "No keepalived connections can be handled")."""
    log = (stack.run_dir / "gunicorn.log").read_text()
    assert "[WARNING]" not in log and '"level": "WARNING"' not in log, log[-2000:]


def test_options_is_a_204_with_allow(stack: Stack) -> None:
    answer = requests.options(stack.base_url + "/model/predict", timeout=10)
    assert answer.status_code == 204
    assert set(answer.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    assert answer.content == b""


def test_prometheus_runs_the_repository_alert_rules(prometheus: str) -> None:
    """`make monitor` and the tests load deploy/prometheus/alerts.yml as compose does."""
    shipped = {
        rule["alert"]
        for group in yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    groups = requests.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    assert shipped and loaded == shipped


def test_slow_clients_do_not_hold_workers(http: requests.Session, stack: Stack) -> None:
    """More trickling uploads than gunicorn has threads; nginx buffers them all."""
    body = orjson.dumps({"data": {k: [v] for k, v in ROW.items()}})
    host, port = stack.base_url.removeprefix("http://").split(":")
    slow = [socket.create_connection((host, int(port))) for _ in range(12)]
    try:
        for conn in slow:
            conn.sendall(
                b"POST /model/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:5]
            )
        for _ in range(3):  # keep trickling for ~3 s, below nginx's client_body_timeout
            fast_start = time.monotonic()
            assert predict(http, stack).status_code == 200
            assert time.monotonic() - fast_start < 1.0
            for conn in slow:
                conn.sendall(b" ")
            time.sleep(1)
    finally:
        for conn in slow:
            conn.close()


def test_killed_worker_is_replaced_and_counts_survive(http: requests.Session, stack: Stack) -> None:
    for _ in range(10):
        _ok(predict(http, stack))
    before = metrics(http, stack)
    victim, survivor = stack.worker_pids()
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: len(stack.worker_pids()) == 2 and victim not in stack.worker_pids(),
        30,
        "a new worker",
    )
    for _ in range(10):
        _ok(predict(http, stack))
    after = metrics(http, stack)
    rows = "model_predicted_rows_total"
    assert sample_sum(after, rows) == sample_sum(before, rows) + 10
    assert (
        sample_sum(after, "gunicorn_worker_exits_total")
        == sample_sum(before, "gunicorn_worker_exits_total") + 1
    )
    assert sample_sum(after, "model_ready") == 1
    leftovers = list((stack.run_dir / "prometheus").glob(f"gauge_live*_{victim}.db"))
    assert leftovers == [], "mark_process_dead should remove the dead worker's live gauges"
    assert survivor in stack.worker_pids()


def _ok(response: Any) -> None:
    assert response.status_code == 200, response.text


def with_threads(threads: int, call, count: int) -> None:
    errors: list[BaseException] = []
    indexes = iter(range(count))
    lock = threading.Lock()

    def run() -> None:
        while True:
            with lock:
                index = next(indexes, None)
            if index is None:
                return
            try:
                call(index)
            except BaseException as exc:  # re-raised below, in the test's thread
                errors.append(exc)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
