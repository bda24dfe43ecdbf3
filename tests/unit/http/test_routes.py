"""The HTTP API through Flask's test client: status, JSON body and content type together."""

from __future__ import annotations

import dataclasses
import io
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sklearn.pipeline import Pipeline

from service.cli import demo
from service.http.app import create_app
from service.settings import Settings
from tests.estimators import FailingClassifier
from tests.unit.conftest import private_copy

ROWS = {
    "age": [30, 61, 45],
    "income": [42000.0, 18000.5, 91000.0],
    "debt_ratio": [0.2, 0.95, 0.4],
    "region": ["north", "west", "south"],
    "employment": ["salaried", "unemployed", "self-employed"],
}


def copied(path: Path, folder: Path) -> Path:
    target = folder / path.name
    target.write_bytes(path.read_bytes())
    return target


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_names_the_model(client: FlaskClient, model_path: Path) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"
    assert response.get_json()["sha256"] == client.get("/model").get_json()["sha256"]


def test_readyz_503_when_warm_up_fails(tmp_path: Path, demo_pipeline: Any, demo_data) -> None:
    pipeline = Pipeline([demo_pipeline.steps[0], ("clf", FailingClassifier())])
    pipeline.fit(*demo_data)
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(cloudpickle.dumps(pipeline))
    client = create_app(Settings(model_path=path, allow_unsigned=True)).test_client()
    error = error_of(client.get("/readyz"), 503, "not_ready")
    assert "warm-up prediction on the example row failed" in error["message"]
    assert "refuses every row" in error["message"]
    error_of(client.post("/model/predict", json={"data": ROWS}), 503, "not_ready")
    assert client.get("/healthz").status_code == 200


def test_a_draining_replica_fails_readyz_but_still_predicts(app: Any) -> None:
    """Told to stop (SHUTDOWN_DRAIN_S), the load balancer must take it out while it still
    answers what reaches it."""
    client = app.test_client()
    app.extensions["runtime"].draining = lambda: True
    not_ready = client.get("/readyz")
    error = error_of(not_ready, 503, "not_ready")
    assert error["message"] == "stopping: draining before the graceful stop"
    assert not_ready.headers["Retry-After"] == "2"
    response = client.post("/model/predict", json={"data": ROWS})
    assert response.status_code == 200, response.get_json()


def test_usage_example_is_a_working_request(client: FlaskClient) -> None:
    usage = client.get("/usage").get_json()
    example = usage["predict"]["example_request"]
    assert set(example["data"]) == set(ROWS)
    assert "curl" in usage["predict"]["curl"]
    response = client.post("/model/predict", json=example)
    assert response.status_code == 200
    assert response.get_json()["rows"] == 1


def test_model_metadata(client: FlaskClient, model_path: Path) -> None:
    meta = client.get("/model").get_json()
    assert meta["model_type"] == "LogisticRegression"
    assert meta["task"] == "classifier"
    assert meta["classes"] == ["approved", "declined"]
    assert meta["size_bytes"] == model_path.stat().st_size
    assert {f["name"]: f["type"] for f in meta["features"]}["region"] == "string"
    assert meta["versions"]["running"]["python"].startswith("3.")
    assert meta["loaded_at"].endswith("+00:00")


def test_download_round_trip_predicts_identically(client: FlaskClient, demo_pipeline: Any) -> None:
    with client.get("/model/download") as response:
        body = response.get_data()
    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"] == "attachment; filename=pipeline.pkl"
    sha = client.get("/model").get_json()["sha256"]
    assert response.headers["ETag"] == f'"{sha}"'
    pipeline = cloudpickle.load(io.BytesIO(body))
    frame = pd.DataFrame(ROWS)
    assert np.array_equal(pipeline.predict(frame), demo_pipeline.predict(frame))


def test_download_honours_if_none_match(client: FlaskClient) -> None:
    etag = f'"{client.get("/model").get_json()["sha256"]}"'
    response = client.get("/model/download", headers={"If-None-Match": etag})
    assert (response.status_code, response.data) == (304, b"")
    assert response.headers["ETag"] == etag
    with client.get("/model/download", headers={"If-None-Match": '"other"'}) as other:
        assert other.status_code == 200


def test_download_behind_nginx_delegates_the_bytes(model_path: Path, tmp_path: Path) -> None:
    app = create_app(
        Settings(
            model_path=private_copy(model_path, tmp_path),
            download_accel_prefix="/_artifacts/",
            allow_unsigned=True,
        )
    )
    response = app.test_client().get("/model/download")
    assert response.status_code == 200
    sha = app.extensions["runtime"].model.sha256
    assert response.headers["X-Accel-Redirect"] == f"/_artifacts/store/{sha}/pipeline.pkl"
    assert response.data == b""


@pytest.mark.parametrize("layout", ["columns", "records"])
@pytest.mark.parametrize("output", ["predict", "proba", "both"])
def test_predictions_equal_in_process(
    client: FlaskClient, demo_pipeline: Any, layout: str, output: str
) -> None:
    data: Any = ROWS
    if layout == "records":
        data = [{k: v[i] for k, v in ROWS.items()} for i in range(3)]
    response = client.post("/model/predict", json={"data": data, "output": output})
    assert response.status_code == 200
    body = response.get_json()
    frame = pd.DataFrame(ROWS)
    assert body["rows"] == 3
    assert body["predictions"] == demo_pipeline.predict(frame).tolist()
    assert body["model"]["sha256"] == client.get("/model").get_json()["sha256"]
    if output == "predict":
        assert "probabilities" not in body
    else:
        assert body["probabilities"] == demo_pipeline.predict_proba(frame).tolist()
        assert body["classes"] == ["approved", "declined"]


def test_regressor_predicts_and_refuses_proba(regressor_path: Path, tmp_path: Path) -> None:
    client = create_app(
        Settings(model_path=copied(regressor_path, tmp_path), allow_unsigned=True)
    ).test_client()
    data = {"size": [50.0, 120.0], "rooms": [2, 4], "city": ["nice", "lyon"]}
    body = client.post("/model/predict", json={"data": data}).get_json()
    assert body["predictions"] == pytest.approx([500 + 6, 1200 + 12], rel=0.05)
    error = error_of(
        client.post("/model/predict", json={"data": data, "output": "proba"}),
        422,
        "output_not_supported",
    )
    assert "predict_proba" in error["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{bad json", "application/json", 400, "malformed_json"),
        (b'{"data": 1}', "application/json", 400, "bad_request"),
        (b'{"data": {"age": [1]}}', "text/plain", 415, "unsupported_media_type"),
        (b'{"data": {"age": [1]}}', None, 415, "unsupported_media_type"),
        (b'{"data": {}}', "application/json", 422, "schema_violation"),
        (b"x" * 70_000, "application/json", 413, "request_entity_too_large"),
    ],
)
def test_request_errors(
    client: FlaskClient, body: bytes, content_type: str | None, status: int, code: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    error_of(client.post("/model/predict", data=body, headers=headers), status, code)


def test_schema_violation_names_column_and_row(client: FlaskClient) -> None:
    data = {**ROWS, "income": [1.0, "lots", 3.0]}
    error = error_of(client.post("/model/predict", json={"data": data}), 422, "schema_violation")
    assert error["details"]["errors"] == [
        {"column": "income", "row": 1, "problem": "expected number, got string 'lots'"}
    ]


def test_too_many_rows(client: FlaskClient) -> None:
    data = {k: v * 20 for k, v in ROWS.items()}
    error = error_of(client.post("/model/predict", json={"data": data}), 413, "too_many_rows")
    assert error["details"] == {"rows": 60, "max_rows": 50}


def test_usage_curl_uses_the_host_the_client_used(client: FlaskClient) -> None:
    usage = client.get("/usage", headers={"Host": "models.example:8443"}).get_json()
    assert "curl -s -X POST http://models.example:8443/model/predict " in usage["predict"]["curl"]


def test_options_is_no_content_with_allow(client: FlaskClient) -> None:
    response = client.options("/model/predict")
    assert response.status_code == 204
    assert response.data == b""
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


def test_unknown_route_and_method(client: FlaskClient) -> None:
    error_of(client.get("/nowhere"), 404, "not_found")
    response = client.delete("/model/predict")
    error = error_of(response, 405, "method_not_allowed")
    assert error["details"]["allowed_methods"] == ["OPTIONS", "POST"]
    assert response.headers["Allow"] == "OPTIONS, POST"


def test_unexpected_error_is_500_without_trace(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.extensions["runtime"].model, "score", explode)
    logging.getLogger("service").addHandler(caplog.handler)
    try:
        response = client.post("/model/predict", json={"data": ROWS})
    finally:
        logging.getLogger("service").removeHandler(caplog.handler)
    error = error_of(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert "secret internal detail" in caplog.text
    assert error["request_id"]


def test_request_id_is_passed_through_or_made(client: FlaskClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    forged = client.get("/healthz", headers={"X-Request-ID": "bad id; drop"})
    assert len(forged.headers["X-Request-ID"]) == 32


def test_metrics_count_rows_and_failures(client: FlaskClient) -> None:
    client.post("/model/predict", json={"data": ROWS})
    client.post("/model/predict", json={"data": {**ROWS, "age": ["x", 1, 2]}})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'model_predicted_rows_total{protocol="native"} 3.0' in text
    assert 'model_validation_failures_total{code="schema_violation"} 1.0' in text
    assert "model_ready 1.0" in text
    assert 'endpoint="api.predict"' in text


# ---- which path serves: the compiled plan, a fallback, or the pipeline ------------------------


def serving_app(path: Path, folder: Path, **changes: Any) -> FlaskClient:
    settings = Settings(model_path=private_copy(path, folder), allow_unsigned=True, **changes)
    return create_app(settings).test_client()


def predict_as_served(
    client: FlaskClient, frame: pd.DataFrame, output: str, *, concurrent: bool
) -> list[dict[str, Any]]:
    """Each row of the frame as a one-row request, sent one by one or all at once (when
    they are batched into shared model calls)."""
    documents = [
        {"data": frame.iloc[[i]].to_dict("list"), "output": output} for i in range(len(frame))
    ]

    def send(document: dict[str, Any]) -> dict[str, Any]:
        response = client.post("/model/predict", json=document)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    if not concurrent:
        return [send(d) for d in documents]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(send, documents))


def test_model_metadata_says_the_plan_serves(client: FlaskClient) -> None:
    serving = client.get("/model").get_json()["serving_path"]
    assert (serving["path"], serving["step"]) == ("plan", None)
    assert serving["reason"].startswith("the plan matches the pipeline on")
    assert serving["detail"]["estimator"] == "LogisticRegression: computed directly"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'path="plan"' in next(
        line for line in metrics.splitlines() if line.startswith("model_info{")
    )


def test_fast_path_off_serves_by_the_pipeline(model_path: Path, tmp_path: Path) -> None:
    client = serving_app(model_path, tmp_path, fast_path=False)
    serving = client.get("/model").get_json()["serving_path"]
    assert serving == {"path": "pipeline", "reason": "the fast path is off (FAST_PATH=false)"}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'path="pipeline"' in metrics


def test_a_custom_transformer_falls_back_and_serves_correctly(
    custom_path: Path, custom_pipeline: Pipeline, demo_data: Any, tmp_path: Path
) -> None:
    client = serving_app(custom_path, tmp_path)
    serving = client.get("/model").get_json()["serving_path"]
    assert serving["path"] == "fallback"
    assert serving["step"] == "columns['shift'] (Shift)"
    assert serving["reason"] == "no compiled form for tests.estimators.Shift"
    frame = demo_data[0].head(20)[["age", "income", "debt_ratio", "region"]]
    response = client.post("/model/predict", json={"data": frame.to_dict("list"), "output": "both"})
    body = response.get_json()
    assert body["predictions"] == custom_pipeline.predict(frame).tolist()
    assert body["probabilities"] == custom_pipeline.predict_proba(frame).tolist()


@pytest.mark.parametrize("batching", [True, False], ids=["batching", "no-batching"])
@pytest.mark.parametrize("fast_path", [True, False], ids=["plan", "pipeline"])
def test_answers_through_the_app_equal_the_pipeline(
    model_path: Path,
    demo_pipeline: Pipeline,
    demo_data: Any,
    tmp_path: Path,
    batching: bool,
    fast_path: bool,
) -> None:
    """Labels identical, probabilities within 1e-12 of in-process predict_proba: for a
    1,000-row request, and for one-row requests sent one by one and all at once."""
    client = serving_app(
        model_path, tmp_path, fast_path=fast_path, batching=batching, batch_max_wait_ms=20
    )
    assert client.get("/model").get_json()["serving_path"]["path"] == (
        "plan" if fast_path else "pipeline"
    )
    frame = demo.dataset(rows=1000, seed=7)[0]
    whole = client.post("/model/predict", json={"data": frame.to_dict("list"), "output": "both"})
    body = whole.get_json()
    assert body["rows"] == len(frame)
    assert body["predictions"] == demo_pipeline.predict(frame).tolist()
    np.testing.assert_allclose(
        body["probabilities"], demo_pipeline.predict_proba(frame), rtol=0, atol=1e-12
    )
    rows = frame.head(24)
    expected, expected_proba = demo_pipeline.predict(rows), demo_pipeline.predict_proba(rows)
    for concurrent in (False, True):
        answers = predict_as_served(client, rows, "both", concurrent=concurrent)
        assert [a["predictions"][0] for a in answers] == expected.tolist()
        np.testing.assert_allclose(
            [a["probabilities"][0] for a in answers], expected_proba, rtol=0, atol=1e-12
        )


def test_a_csv_body_predicts_as_json_does(client: FlaskClient, demo_pipeline: Pipeline) -> None:
    frame = pd.DataFrame(ROWS)
    answer = client.post(
        "/model/predict?output=both",
        data=frame.to_csv(index=False),
        content_type="text/csv; charset=utf-8",
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["predictions"] == demo_pipeline.predict(frame).tolist()
    np.testing.assert_allclose(
        answer.get_json()["probabilities"], demo_pipeline.predict_proba(frame), rtol=1e-12, atol=0
    )


def test_a_csv_error_names_the_line(client: FlaskClient) -> None:
    text = pd.DataFrame(ROWS).to_csv(index=False).replace("\n61,", '\n"six,ty",')
    answer = client.post("/model/predict", data=text, content_type="text/csv")
    error = error_of(answer, 422, "schema_violation")
    assert (
        "column 'age', row 1 (CSV line 3): expected integer, got string 'six,ty'"
        in (error["message"])
    )
    answer = client.post("/model/predict?output=all", data=text, content_type="text/csv")
    assert "?output= must be one of" in error_of(answer, 400, "bad_request")["message"]


@pytest.mark.parametrize("path", ["/model/predict", "/invocations", "/v2/models/pipeline/infer"])
def test_a_full_worker_refuses_a_prediction_before_reading_its_body(app: Flask, path: str) -> None:
    """The body is not even JSON: a 503 rather than a 400 proves it was never read."""
    runtime = app.extensions["runtime"]
    batcher = runtime.serving.batcher
    batcher.max_queued_rows = 4
    batcher._queued_rows = 4  # as if requests of other threads waited for the model
    response = app.test_client().post(path, data=b"{not json", content_type="application/json")
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "1"
    assert "MAX_QUEUED_ROWS" in response.get_data(as_text=True)
    shed = runtime.metrics.registry.get_sample_value("model_requests_shed_total")
    assert shed == 1
    batcher._queued_rows = 0
    assert app.test_client().get("/readyz").status_code == 200, "a full worker is not unready"


def test_predictions_in_flight_are_counted_beside_nginxs_cap(app: Flask) -> None:
    runtime = app.extensions["runtime"]
    registry = runtime.metrics.registry
    seen: list[float | None] = []
    predict = runtime.predict

    def observing(*args: Any, **kwargs: Any) -> Any:
        seen.append(registry.get_sample_value("model_predictions_in_flight"))
        return predict(*args, **kwargs)

    runtime.predict = observing
    client = app.test_client()
    response = client.post("/model/predict", json={"data": ROWS}, headers={"X-Inflight-Limit": "8"})
    assert response.status_code == 200
    assert seen == [1.0]
    assert registry.get_sample_value("model_predictions_in_flight") == 0.0
    assert registry.get_sample_value("model_predictions_in_flight_limit") == 8.0
    client.post("/model/predict", json={"data": ROWS}, headers={"X-Inflight-Limit": "eight"})
    assert registry.get_sample_value("model_predictions_in_flight_limit") == 8.0
    assert client.get("/usage").status_code == 200
    assert seen == [1.0, 1.0], "only predictions are counted"


NGINX = Path(__file__).resolve().parents[3] / "deploy" / "nginx"
PROBE_LOCATION = re.compile(r"location ~ (\^/\(healthz\|.*?\)\$) \{")


def test_the_probes_nginx_never_limits_are_the_apps_probes(client: FlaskClient) -> None:
    """public.conf exempts the probes from every limit, and maps.conf from the TLS redirect:
    the same paths, each a probe the app answers, and nothing else."""
    found = PROBE_LOCATION.search((NGINX / "public.conf").read_text())
    assert found is not None
    probe = found.group(1)
    sha256 = client.get("/model").get_json()["sha256"]
    probes = ["/healthz", "/readyz", "/ping", "/health", "/v2/health/live", "/v2/health/ready"]
    probes += ["/v2/models/pipeline/ready", f"/v2/models/pipeline/versions/{sha256}/ready"]
    for path in probes:
        assert re.match(probe, path), path
        assert client.get(path).status_code == 200, path
    for path in ("/model/predict", "/usage", "/v2/models/pipeline/infer", "/admin/models"):
        assert not re.match(probe, path), path
    assert f"[^:]*:{probe[1:]} 0;" in (NGINX / "maps.conf").read_text()


def test_model_shows_what_runs_it_and_the_lock(settings: Settings) -> None:
    import importlib.metadata
    import platform

    import sklearn

    lock = "ab" * 32
    client = create_app(dataclasses.replace(settings, lock_sha256=lock)).test_client()
    running = client.get("/model").get_json()["versions"]["running"]
    assert running == {
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "pandas": importlib.metadata.version("pandas"),
        "numpy": importlib.metadata.version("numpy"),
        "sklearn_pandas": importlib.metadata.version("sklearn-pandas"),
        "lock_sha256": lock,
    }
