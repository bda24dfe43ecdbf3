"""Scenario B through each front door: this API's JSON, its CSV, the Open Inference
Protocol and MLflow's scoring protocol, on one stack, the same row each time.

Every protocol reads its body into the same checked columns and then shares batching,
plan and rendering, so the figure is what each protocol's own reading and answering
costs. The fronts take turns, round after round, and each round's ratio to the native
API is taken from that round, so a neighbour's burst on this shared machine moves both
sides of a ratio; the median round is reported. Target: none below 0.9x native.

The request builders here are also how the tests speak each protocol
(``tests/integration/test_protocols.py``, the route tests).
"""

from __future__ import annotations

import statistics
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from bench import load, models
from bench.load import WrkResult
from bench.servers import OurStack
from bench.thresholds import Check

MODEL = models.DEFAULT
SCENARIO = next(s for s in load.SCENARIOS if s.key == "B")
ROUNDS = 5
TARGET = 0.9
WORKERS = 2
NATIVE = "native"
DATATYPES = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL"}
"""numpy's dtype kinds as tensor datatypes; anything else (text) is BYTES."""


def v2_inputs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One tensor per column, as MLServer's pandas codec sends a DataFrame."""
    return [
        {
            "name": name,
            "datatype": DATATYPES.get(frame[name].dtype.kind, "BYTES"),
            "shape": [len(frame)],
            "data": frame[name].tolist(),
        }
        for name in frame.columns
    ]


def v2_infer(frame: pd.DataFrame, outputs: tuple[str, ...] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "test", "inputs": v2_inputs(frame)}
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    return body


def mlflow_bodies(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every JSON layout MLflow's scoring server documents, for the same rows."""
    split = frame.to_dict(orient="split")
    return {
        "dataframe_split": {
            "dataframe_split": {"columns": split["columns"], "data": split["data"]}
        },
        "dataframe_records": {"dataframe_records": frame.to_dict(orient="records")},
        "instances": {"instances": frame.to_dict(orient="records")},
        "inputs": {"inputs": frame.to_dict(orient="list")},
    }


def csv_body(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


@dataclass(frozen=True)
class Front:
    """One protocol's request: where it goes, as what, with which body."""

    protocol: str
    path: str
    content_type: str
    body: bytes


def fronts(frame: pd.DataFrame) -> list[Front]:
    """The same rows through every front door, asking each for the labels only."""
    json = "application/json"
    return [
        Front(NATIVE, "/model/predict", json, orjson.dumps({"data": frame.to_dict("list")})),
        Front("csv", "/model/predict", "text/csv", csv_body(frame).encode()),
        Front(
            "open_inference",
            "/v2/models/pipeline/infer",
            json,
            orjson.dumps(v2_infer(frame, ("predict",))),
        ),
        Front(
            "mlflow", "/invocations", json, orjson.dumps(mlflow_bodies(frame)["dataframe_split"])
        ),
    ]


@dataclass(frozen=True)
class FrontResult:
    protocol: str
    path: str
    content_type: str
    result: WrkResult
    """The median round's run."""
    ratio: float
    """req/s against the native API's in the same round, the median over rounds."""


def answers(base_url: str, front: Front) -> None:
    """One request, which must succeed, before any load: a wrong body would measure 4xx."""
    request = urllib.request.Request(
        base_url + front.path, front.body, {"Content-Type": front.content_type}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise RuntimeError(f"{front.protocol}: {response.status} {response.read()[:200]!r}")


def run(
    artifact: Path, run_root: Path, workdir: Path, seconds: int, warmup_s: int
) -> list[FrontResult]:
    """Every front, round after round, on one stack of :data:`WORKERS` workers."""
    frame = models.frame(1, model=MODEL)
    doors = fronts(frame)
    bodies = {}
    for front in doors:
        bodies[front.protocol] = workdir / f"protocol-{front.protocol}.body"
        bodies[front.protocol].write_bytes(front.body)
    handle = OurStack("protocols", run_root, WORKERS).start(artifact)
    try:
        rounds: dict[str, list[WrkResult]] = {front.protocol: [] for front in doors}
        for front in doors:
            answers(handle.base_url, front)
        for _ in range(ROUNDS):
            for front in doors:
                wrk = {
                    "path": front.path,
                    "content_type": front.content_type,
                    "bodies": {SCENARIO.rows: bodies[front.protocol]},
                }
                load.run_wrk(handle.base_url, SCENARIO, seconds=warmup_s, **wrk)
                rounds[front.protocol].append(
                    load.run_wrk(handle.base_url, SCENARIO, seconds=seconds, **wrk)
                )
    finally:
        handle.stop()
    return [summary(front, rounds) for front in doors]


def summary(front: Front, rounds: dict[str, list[WrkResult]]) -> FrontResult:
    mine, native = rounds[front.protocol], rounds[NATIVE]
    ratios = [
        run.requests_per_s / base.requests_per_s if base.requests_per_s else 0.0
        for run, base in zip(mine, native, strict=True)
    ]
    median = sorted(mine, key=lambda r: r.requests_per_s)[len(mine) // 2]
    return FrontResult(
        front.protocol, front.path, front.content_type, median, statistics.median(ratios)
    )


def checks(results: list[FrontResult]) -> list[Check]:
    return [
        Check(
            f"B req/s through {r.protocol} >= {TARGET}x native",
            MODEL,
            f"{r.ratio:.2f}x ({r.result.requests_per_s:,.0f} req/s, {r.result.non_2xx} non-2xx)",
            r.ratio >= TARGET and r.result.non_2xx == 0,
        )
        for r in results
        if r.protocol != NATIVE
    ]
