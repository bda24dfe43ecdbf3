"""The other protocols through the real stack (nginx in front of gunicorn), with their own
clients: Triton's ``tritonclient`` for the Open Inference Protocol, and MLflow's documented
request bodies (JSON layouts and CSV); answers equal the pipeline's, in-process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import requests
import tritonclient.http as triton
from sklearn.pipeline import Pipeline

from bench.protocols import DATATYPES, csv_body, mlflow_bodies, v2_infer
from deploy.stack import ROOT, Stack
from service.cli import demo
from service.model import compat
from tests.integration.conftest import wait_for

MODEL = "pipeline"


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    frame, _ = demo.dataset(rows=40, seed=21)
    return frame


@pytest.fixture(scope="module")
def pipeline(stack_model: Path) -> Pipeline:
    compat.install()
    return cloudpickle.loads(stack_model.read_bytes())


@pytest.fixture
def client(stack: Stack) -> Iterator[triton.InferenceServerClient]:
    address = f"{stack.config.host}:{stack.config.port}"
    with triton.InferenceServerClient(address, network_timeout=30.0) as connected:
        yield connected


def test_tritonclient_probes_and_metadata(
    client: triton.InferenceServerClient, rows: pd.DataFrame
) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert not client.is_model_ready("another-model")
    metadata = client.get_model_metadata(MODEL)
    assert [t["name"] for t in metadata["inputs"]] == list(rows.columns)
    assert [t["datatype"] for t in metadata["inputs"]] == [
        DATATYPES.get(rows[name].dtype.kind, "BYTES") for name in rows.columns
    ]
    assert [t["name"] for t in metadata["outputs"]] == ["predict", "predict_proba"]
    assert client.get_server_metadata()["name"] == "model-serving"


def tensor(rows: pd.DataFrame, name: str) -> triton.InferInput:
    datatype = DATATYPES.get(rows[name].dtype.kind, "BYTES")
    values = rows[name].to_numpy()
    if datatype == "BYTES":
        values = values.astype(object)
    entered = triton.InferInput(name, [len(rows)], datatype)
    entered.set_data_from_numpy(values, binary_data=False)
    return entered


def test_tritonclient_infer_equals_the_pipeline(
    client: triton.InferenceServerClient, rows: pd.DataFrame, pipeline: Pipeline
) -> None:
    result = client.infer(
        MODEL,
        [tensor(rows, name) for name in rows.columns],
        outputs=[
            triton.InferRequestedOutput("predict", binary_data=False),
            triton.InferRequestedOutput("predict_proba", binary_data=False),
        ],
        request_id="t-1",
    )
    assert result.get_response()["id"] == "t-1"
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict")]
    assert labels == pipeline.predict(rows).tolist()
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), pipeline.predict_proba(rows), rtol=1e-12, atol=0
    )


def test_tritonclient_sees_a_bad_tensor_named(
    client: triton.InferenceServerClient, rows: pd.DataFrame
) -> None:
    inputs = [tensor(rows, name) for name in rows.columns]
    inputs[0] = triton.InferInput(rows.columns[0], [len(rows)], "BYTES")
    inputs[0].set_data_from_numpy(rows[rows.columns[0]].astype(str).to_numpy(object), False)
    with pytest.raises(triton.InferenceServerException, match="datatype 'BYTES' does not fit"):
        client.infer(MODEL, inputs)


@pytest.mark.parametrize("layout", ["dataframe_split", "dataframe_records", "instances", "inputs"])
def test_mlflow_json_layouts_equal_the_pipeline(
    stack: Stack, rows: pd.DataFrame, pipeline: Pipeline, layout: str
) -> None:
    answer = requests.post(
        stack.base_url + "/invocations", json=mlflow_bodies(rows)[layout], timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": pipeline.predict(rows).tolist()}


def test_mlflow_csv_and_probes(stack: Stack, rows: pd.DataFrame, pipeline: Pipeline) -> None:
    answer = requests.post(
        stack.base_url + "/invocations",
        data=csv_body(rows),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": pipeline.predict(rows).tolist()}
    for path in ("/ping", "/health"):
        probe = requests.get(stack.base_url + path, timeout=30)
        assert (probe.status_code, probe.text) == (200, "\n"), path


def test_csv_on_the_native_api(stack: Stack, rows: pd.DataFrame, pipeline: Pipeline) -> None:
    answer = requests.post(
        stack.base_url + "/model/predict?output=both",
        data=csv_body(rows).encode(),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pipeline.predict(rows).tolist()
    np.testing.assert_allclose(
        answer.json()["probabilities"], pipeline.predict_proba(rows), rtol=1e-12, atol=0
    )


def test_rows_are_counted_by_protocol(stack: Stack, rows: pd.DataFrame) -> None:
    requests.post(
        stack.base_url + "/invocations", json=mlflow_bodies(rows)["instances"], timeout=30
    )
    text = requests.get(stack.metrics_url, timeout=30).text
    counted = [
        line
        for line in text.splitlines()
        if line.startswith('model_predicted_rows_total{protocol="mlflow"}')
    ]
    assert counted and float(counted[0].split()[-1]) >= len(rows), counted


def readme_block(language: str, contains: str) -> str:
    """The README's fenced ``language`` block that holds ``contains``."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
    [block] = [b for b in blocks if contains in b]
    return block


def test_the_readme_examples_work(stack: Stack, pipeline: Pipeline) -> None:
    """The tritonclient snippet and the curl examples, run as shown against this stack."""
    snippet = readme_block("python", "tritonclient").replace(
        "127.0.0.1:8080", f"{stack.config.host}:{stack.config.port}"
    )
    ran = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    row = pd.DataFrame(
        {
            "age": [30],
            "income": [42000.0],
            "debt_ratio": [0.2],
            "region": ["north"],
            "employment": ["salaried"],
        }
    )
    assert str(pipeline.predict(row)[0]) in ran.stdout
    for contains, key in (
        ("/v2/models/pipeline/infer", '"outputs"'),
        ("/invocations", '"predictions"'),
    ):
        command = readme_block("bash", contains)
        curl = command[command.index("curl -s -X POST $BASE" + contains) :].split("\n\n")[0]
        answered = subprocess.run(
            ["bash", "-c", curl],
            env={**os.environ, "BASE": stack.base_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert key in answered.stdout, (curl, answered.stdout, answered.stderr)


def test_a_killed_worker_costs_no_request_of_any_protocol(stack: Stack, rows: pd.DataFrame) -> None:
    """nginx resends the new prediction routes, like /model/predict, when a worker dies."""
    calls = [
        ("/v2/models/pipeline/infer", v2_infer(rows)),
        ("/invocations", mlflow_bodies(rows)["instances"]),
    ]
    answered: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def keep_posting() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                for path, body in calls:
                    try:
                        answer = session.post(stack.base_url + path, json=body, timeout=30)
                    except requests.RequestException as exc:
                        failures.append(f"{path}: {exc!r}")
                        continue
                    if answer.status_code == 200:
                        answered.append(path)
                    else:
                        failures.append(f"{path}: {answer.status_code} {answer.text[:200]}")

    clients = [threading.Thread(target=keep_posting) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: len(answered) >= 40, 30, "the load to flow")
        victim = stack.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: victim not in stack.worker_pids() and len(stack.worker_pids()) == 2,
            30,
            "the master to replace the killed worker",
        )
        after = len(answered)
        wait_for(lambda: len(answered) >= after + 40, 30, "answers after the replacement")
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
    assert failures == [], failures[:5]
