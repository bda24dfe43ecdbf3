"""The cheap wins, each timed in-process against what it replaced.

Each comparison calls the shipped code (``service.model.payload``, ``service.model.predictor``, the
app's JSON provider) and the obvious alternative on the benchmark's own rows.
Batches of the two alternate, so a neighbour's burst on this shared machine slows
both alike, and the medians are compared. Wall and CPU time per call differ only
where threads run in parallel (the BLAS/OpenMP case): there, CPU time is what a
saturated server pays, since its other worker wants that core.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from threadpoolctl import ThreadpoolController

from bench import models
from bench.fmt import times
from service.http.app import OrjsonProvider
from service.model import payload, predictor

ROUNDS = 9
ROWS = 1_000


@dataclass(frozen=True)
class Side:
    """One way of doing it: a call, and a context entered around each batch of calls."""

    label: str
    call: Callable[[], Any]
    context: Callable[[], AbstractContextManager[Any]] = field(default=contextlib.nullcontext)


@dataclass(frozen=True)
class Win:
    """Median wall and CPU seconds per call, shipped and alternative."""

    concern: str
    shipped: str
    alternative: str
    shipped_s: float
    alternative_s: float
    shipped_cpu_s: float
    alternative_cpu_s: float


def _batch(side: Side, calls: int) -> tuple[float, float]:
    """Wall and CPU seconds per call over ``calls`` calls."""
    with side.context():
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            side.call()
        return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def compare(concern: str, shipped: Side, alternative: Side, seconds: float) -> Win:
    """About ``seconds`` in all: ROUNDS alternating batches of each side, medians compared."""
    sides = (shipped, alternative)
    calls = []
    for side in sides:
        _batch(side, 1)  # warm-up: imports, caches
        one_s, _ = _batch(side, 1)
        calls.append(max(1, round(seconds / len(sides) / ROUNDS / max(one_s, 1e-7))))
    samples: list[list[tuple[float, float]]] = [[], []]
    for _ in range(ROUNDS):
        for index, side in enumerate(sides):
            samples[index].append(_batch(side, calls[index]))
    (wall, cpu), (alt_wall, alt_cpu) = (
        (statistics.median(s[0] for s in taken), statistics.median(s[1] for s in taken))
        for taken in samples
    )
    return Win(concern, shipped.label, alternative.label, wall, alt_wall, cpu, alt_cpu)


def comparisons(artifacts: dict[str, Path]) -> Iterator[tuple[str, Side, Side]]:
    """(concern, shipped, alternative) for each cheap win, on 1,000-row requests."""
    linear = predictor.load(artifacts["linear"])
    heavy = predictor.load(artifacts["heavy"])
    body = models.body(ROWS)
    raw = payload.parse_json(body)["data"]
    columns = payload.validate(linear.schema, raw, unknown="reject")
    frame = payload.build_frame(columns)
    one_row = payload.to_frame(linear.schema, models.columns(1, models.BODY_SEED), unknown="reject")
    app = Flask(__name__)
    fast, stdlib = OrjsonProvider(app), DefaultJSONProvider(app)
    labels, _ = linear.score(frame, proba=False)
    response = {
        "predictions": linear.render(labels, None).predictions,
        "model": {"sha256": linear.sha256},
        "rows": ROWS,
    }
    rows = f"{ROWS:,} rows"

    yield (
        f"parse a {ROWS:,}-row request body",
        Side("orjson: payload.parse_json", lambda: payload.parse_json(body)),
        Side("stdlib json.loads", lambda: json.loads(body)),
    )
    yield (
        f"render a {ROWS:,}-row response",
        Side("orjson: the app's OrjsonProvider", lambda: fast.response(response)),
        Side("stdlib json: Flask's default provider", lambda: stdlib.response(response)),
    )
    yield (
        f"DataFrame of {rows}",
        Side("payload.build_frame of validated columns", lambda: payload.build_frame(columns)),
        Side("pd.DataFrame(raw JSON columns)", lambda: pd.DataFrame(raw)),
    )
    yield (
        f"validate, then DataFrame of {rows}",
        Side(
            "payload.validate, then build_frame",
            lambda: payload.to_frame(linear.schema, raw, unknown="reject"),
        ),
        Side("pd.DataFrame(raw JSON columns), no validation", lambda: pd.DataFrame(raw)),
    )
    for label, rows_frame in (("1 row", one_row), (rows, frame)):
        yield (
            f"linear Model.score, {label}",
            Side(
                "assume_finite=True", lambda f=rows_frame: linear.score(f, proba=False, finite=True)
            ),
            Side(
                "default (scikit-learn checks every value)",
                lambda f=rows_frame: linear.score(f, proba=False),
            ),
        )
    controller = ThreadpoolController()
    threads = max(pool["num_threads"] for pool in controller.info())
    yield (
        f"heavy Model.score with probabilities, {rows}",
        Side(
            "1 BLAS/OpenMP thread (threadpoolctl)",
            lambda: heavy.score(frame, proba=True, finite=True),
            lambda: controller.limit(limits=1),
        ),
        Side(f"default: {threads} threads", lambda: heavy.score(frame, proba=True, finite=True)),
    )


def run(artifacts: dict[str, Path], seconds: float) -> list[Win]:
    """Every comparison, each for about ``seconds``; needs the linear and heavy models."""
    return [compare(*sides, seconds) for sides in comparisons(artifacts)]


def main() -> None:
    """``python -m bench.wins [SECONDS]``: the wins alone, without servers or wrk."""
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        for win in run(models.build(Path(workdir)), seconds):
            print(
                f"{win.concern:45} {win.shipped_s * 1e3:8.3f} vs {win.alternative_s * 1e3:8.3f} ms"
                f"  time {times(win.shipped_s, win.alternative_s)}"
                f"  CPU {times(win.shipped_cpu_s, win.alternative_cpu_s)}"
            )


if __name__ == "__main__":
    main()
