"""The in-process ceiling: ``pipeline.predict`` in a loop, no HTTP, JSON or validation.

A server that calls ``predict`` once per request cannot beat it per core, so it
tells how much of a server's time is the model and how much is serving; one
that batches concurrent requests into one call (ours does) can, on small rows.
Single-threaded (BLAS and OpenMP pools limited to one thread): one core's worth,
comparable with one worker.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from bench import cpu, models

WARM_UP_CALLS = 3
CASES: tuple[int | None, ...] = (1, 1_000, None)
"""Rows per call, as in the load scenarios; None cycles through the 1-100 mix."""


@dataclass(frozen=True)
class Ceiling:
    model: str
    case: int | None
    calls: int
    seconds: float
    rows: int
    p50_ms: float
    p99_ms: float
    others_cores: float
    """Cores other processes used meanwhile (see ``bench.cpu``)."""

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def frames(case: int | None, model: str) -> list[pd.DataFrame]:
    """The frames a case cycles through: the rows the load scenarios send, as a server's
    ``pd.DataFrame(data)`` builds them."""
    if case is None:  # shuffled, so the few calls of a short run still average 50.5 rows
        return random.Random(0).sample(models.mixed_frames(model), len(models.MIX_SIZES))
    return [models.frame(case, model=model)]


def measure(
    model: str, case: int | None, pipeline: Any, inputs: Sequence[pd.DataFrame], seconds: float
) -> Ceiling:
    """Call ``predict`` on the inputs in turn until ``seconds`` have passed."""
    with threadpool_limits(limits=1):
        for index in range(WARM_UP_CALLS):
            pipeline.predict(inputs[index % len(inputs)])
        timings: list[float] = []
        rows = 0
        before = cpu.snapshot([os.getpid()])
        started = time.perf_counter()
        deadline = started + seconds
        while (now := time.perf_counter()) < deadline:
            frame = inputs[len(timings) % len(inputs)]
            pipeline.predict(frame)
            timings.append(time.perf_counter() - now)
            rows += len(frame)
        elapsed = time.perf_counter() - started
        others = cpu.between(before, cpu.snapshot([os.getpid()])).others
    p50, p99 = np.percentile(timings, [50, 99]) * 1e3
    return Ceiling(model, case, len(timings), elapsed, rows, float(p50), float(p99), others)


def run(artifacts: dict[str, Path], seconds: float) -> list[Ceiling]:
    """Every case on every model, each for ``seconds``."""
    results = []
    for model, path in artifacts.items():
        pipeline = models.load(path)
        for case in CASES:
            results.append(measure(model, case, pipeline, frames(case, model), seconds))
    return results


def main() -> None:
    """``python -m bench.ceiling [SECONDS]``: the ceiling alone, without servers or wrk."""
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        for result in run(models.build(Path(workdir)), seconds):
            print(
                f"{result.model:7} {models.rows_label(result.case):11} "
                f"{result.calls_per_s:9.1f} calls/s "
                f"{result.rows_per_s:11.0f} rows/s  p50 {result.p50_ms:7.2f} ms  "
                f"p99 {result.p99_ms:7.2f} ms  others {result.others_cores:.2f} cores"
            )


if __name__ == "__main__":
    main()
