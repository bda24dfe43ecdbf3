"""Every model of the benchmark's zoo, through nginx and gunicorn, answers as in-process.

The plan is verified at load against the pipeline; this checks the whole path a
request takes (JSON, validation, batching, the plan or its fallback, rendering)
against ``pipeline.predict`` / ``predict_proba`` on the client's own frame: labels
identical, probabilities and regression values within 1e-12.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests

from bench import zoo
from service.control import packing
from service.model import signing
from tests.integration.conftest import SIGNING_KEY, start_stack

ROWS = (1, 300)

pytestmark = pytest.mark.fleet


@pytest.mark.parametrize("entry", zoo.ZOO, ids=[entry.name for entry in zoo.ZOO])
def test_the_stack_answers_as_the_pipeline_in_process(
    entry: zoo.Entry, tmp_path: Path, http: requests.Session
) -> None:
    artifact = zoo.build(entry, tmp_path / "model")
    signing.write_signature(artifact, SIGNING_KEY.encode())
    pipeline = packing.load_pickle(artifact)
    with start_stack(artifact, tmp_path / "run", WEB_CONCURRENCY="1") as stack:
        described = http.get(f"{stack.base_url}/model", timeout=10).json()
        assert described["serving_path"]["path"] == entry.serves, described["serving_path"]
        proba = "proba" in described["outputs"]
        for rows in ROWS:
            frame = zoo.request_frame(entry, rows, seed=zoo.REQUEST_SEED + rows)
            body = {"data": zoo.request_columns(frame), "output": "both" if proba else "predict"}
            answer = http.post(f"{stack.base_url}/model/predict", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
            served = answer.json()
            expected = pipeline.predict(frame)
            assert served["rows"] == rows
            if described["task"] == "regressor":
                np.testing.assert_allclose(served["predictions"], expected, rtol=0, atol=1e-12)
            else:
                assert served["predictions"] == expected.tolist()
            if proba:
                np.testing.assert_allclose(
                    served["probabilities"], pipeline.predict_proba(frame), rtol=0, atol=1e-12
                )
