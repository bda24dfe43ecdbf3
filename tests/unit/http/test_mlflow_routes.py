"""MLflow's scoring routes through Flask's test client."""

from __future__ import annotations

import pandas as pd
import pytest
from flask.testing import FlaskClient
from sklearn.pipeline import Pipeline
from werkzeug.test import TestResponse

from bench.protocols import csv_body, mlflow_bodies

LAYOUTS = ["dataframe_split", "dataframe_records", "instances", "inputs", "csv"]


@pytest.fixture
def rows(demo_data: tuple[pd.DataFrame, pd.Series]) -> pd.DataFrame:
    return demo_data[0].head(5)


def post(client: FlaskClient, rows: pd.DataFrame, layout: str) -> TestResponse:
    if layout == "csv":
        return client.post("/invocations", data=csv_body(rows), content_type="text/csv")
    return client.post("/invocations", json=mlflow_bodies(rows)[layout])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_answers_as_the_pipeline(
    client: FlaskClient, rows: pd.DataFrame, demo_pipeline: Pipeline, layout: str
) -> None:
    answer = post(client, rows, layout)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"predictions": demo_pipeline.predict(rows).tolist()}


def test_probes_answer_a_newline(client: FlaskClient) -> None:
    for path in ("/ping", "/health"):
        answer = client.get(path)
        assert (answer.status_code, answer.data) == (200, b"\n"), path


def test_errors_take_mlflows_shape(client: FlaskClient, rows: pd.DataFrame) -> None:
    answer = client.post("/invocations", json={"records": []})
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error_code"] == "BAD_REQUEST"
    assert "exactly one of ['dataframe_split'" in body["message"]
    bad = mlflow_bodies(rows)["dataframe_records"]
    bad["dataframe_records"][2][rows.columns[0]] = "x"
    answer = client.post("/invocations", json=bad)
    assert answer.status_code == 422
    assert answer.get_json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert f"column '{rows.columns[0]}', row 2" in answer.get_json()["message"]


def test_other_media_types_are_a_415(client: FlaskClient) -> None:
    answer = client.post("/invocations", data="x", content_type="text/plain")
    assert answer.status_code == 415
    assert "application/json or text/csv" in answer.get_json()["message"]
