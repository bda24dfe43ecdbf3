"""The Open Inference Protocol's routes through Flask's test client."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient
from sklearn.pipeline import Pipeline

from bench.protocols import v2_infer

MODEL = "/v2/models/pipeline"


@pytest.fixture
def rows(demo_data: tuple[pd.DataFrame, pd.Series]) -> pd.DataFrame:
    return demo_data[0].head(7)


def test_server_metadata_and_probes(client: FlaskClient) -> None:
    assert client.get("/v2").get_json()["name"] == "model-serving"
    for path in ("/v2/health/live", "/v2/health/ready", MODEL + "/ready"):
        answer = client.get(path)
        assert (answer.status_code, answer.data) == (200, b""), path


def test_model_metadata_lists_every_column_as_a_tensor(client: FlaskClient) -> None:
    metadata = client.get(MODEL).get_json()
    sha = client.get("/readyz").get_json()["sha256"]
    assert metadata["name"] == "pipeline" and metadata["versions"] == [sha]
    features = [f["name"] for f in client.get("/model").get_json()["features"]]
    assert [t["name"] for t in metadata["inputs"]] == features
    assert {t["name"] for t in metadata["outputs"]} == {"predict", "predict_proba"}
    assert client.get(f"{MODEL}/versions/{sha}").get_json() == metadata


def test_infer_equals_the_pipeline(
    client: FlaskClient, rows: pd.DataFrame, demo_pipeline: Pipeline
) -> None:
    answer = client.post(MODEL + "/infer", json=v2_infer(rows))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["id"] == "test"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["data"] == demo_pipeline.predict(rows).tolist()
    assert outputs["predict"]["shape"] == [7] and outputs["predict"]["datatype"] == "BYTES"
    proba = np.array(outputs["predict_proba"]["data"]).reshape(outputs["predict_proba"]["shape"])
    np.testing.assert_allclose(proba, demo_pipeline.predict_proba(rows), rtol=1e-12, atol=0)


def test_one_output_can_be_asked_for(client: FlaskClient, rows: pd.DataFrame) -> None:
    answer = client.post(MODEL + "/infer", json=v2_infer(rows, ("predict",))).get_json()
    assert [o["name"] for o in answer["outputs"]] == ["predict"]


def test_errors_take_the_protocols_shape_and_name_the_problem(
    client: FlaskClient, rows: pd.DataFrame
) -> None:
    body = v2_infer(rows)
    body["inputs"][0]["data"][3] = "old"
    answer = client.post(MODEL + "/infer", json=body)
    assert answer.status_code == 422
    assert answer.get_json() == {
        "error": f"input does not match the model's schema: column '{rows.columns[0]}', row 3: "
        "expected integer, got string 'old'"
    }
    assert answer.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/v2/models/other/infer", "'other' is not served here; this server serves 'pipeline'"),
        (MODEL + "/versions/" + "0" * 64 + "/infer", "version '" + "0" * 64),
    ],
)
def test_another_name_or_version_is_a_404(
    client: FlaskClient, rows: pd.DataFrame, path: str, words: str
) -> None:
    answer = client.post(path, json=v2_infer(rows))
    assert answer.status_code == 404
    assert words in answer.get_json()["error"]


def test_the_binary_extension_is_refused_plainly(client: FlaskClient, rows: pd.DataFrame) -> None:
    headers = {"Inference-Header-Content-Length": "10"}
    answer = client.post(MODEL + "/infer", json=v2_infer(rows), headers=headers)
    assert answer.status_code == 400
    assert "binary_data=False" in answer.get_json()["error"]


def test_requests_are_counted_by_protocol(client: FlaskClient, rows: pd.DataFrame) -> None:
    client.post(MODEL + "/infer", json=v2_infer(rows))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'model_predicted_rows_total{protocol="open_inference"} 7.0' in text
    assert 'model_prediction_requests_total{protocol="open_inference"} 1.0' in text
