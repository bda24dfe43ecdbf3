"""The protocol figure's requests are ones the app answers, and its verdicts follow the
ratios."""

from __future__ import annotations

import pandas as pd
import pytest
from flask.testing import FlaskClient
from sklearn.pipeline import Pipeline

from bench import protocols
from bench.load import WrkResult


def test_every_front_asks_for_the_same_labels(
    client: FlaskClient, demo_data: tuple[pd.DataFrame, pd.Series], demo_pipeline: Pipeline
) -> None:
    frame = demo_data[0].head(3)
    expected = demo_pipeline.predict(frame).tolist()
    for front in protocols.fronts(frame):
        answer = client.post(front.path, data=front.body, content_type=front.content_type)
        assert answer.status_code == 200, (front.protocol, answer.get_json())
        body = answer.get_json()
        labels = body["outputs"][0]["data"] if "outputs" in body else body["predictions"]
        assert labels == expected, front.protocol


def result(requests: int, non_2xx: int = 0) -> WrkResult:
    return WrkResult(requests, 1.0, non_2xx, 0, 0, 0, 0, 1.0, 1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize(("csv", "passed"), [((95, 90, 100), True), ((80, 95, 85), False)])
def test_the_verdict_is_the_median_round_ratio(csv: tuple[int, ...], passed: bool) -> None:
    rounds = {"native": [result(100)] * 3, "csv": [result(n) for n in csv]}
    front = protocols.Front("csv", "/model/predict", "text/csv", b"")
    summary = protocols.summary(front, rounds)
    assert summary.ratio == sorted(n / 100 for n in csv)[1]
    [check] = protocols.checks([summary])
    assert check.passed is passed


def test_a_non_2xx_answer_is_a_miss_whatever_the_speed() -> None:
    rounds = {"native": [result(100)], "mlflow": [result(200, non_2xx=1)]}
    front = protocols.Front("mlflow", "/invocations", "application/json", b"")
    [check] = protocols.checks([protocols.summary(front, rounds)])
    assert not check.passed
