"""The overload curve: what the stack serves, and how fast, as offered load grows past capacity.

Capacity is what wrk gets with as many connections as nginx admits predictions in flight
(MAX_INFLIGHT_PREDICTIONS), so that nothing is refused. Then the open-loop generator
(``bench/openloop.py``) offers 0.5x to 5x that, each for a while: clients that keep
arriving whatever the server does, as overloads happen. Per step: goodput (200s per
second), the 200s' p50 and p99, and the share refused (503 ``overloaded``). The headline is
goodput at 5x as a ratio of the curve's peak (target >= 0.9): a server without admission
control serves less as it is offered more, its queue growing until every client times out.

The same curve with the cap at the workers' threads (what nginx would admit if it let
every thread take a prediction) shows why the cap is four per worker. The per-client rate
is lifted for both: one generator is one client, and CLIENT_RATE is about many.

The generator is Python and shares the two cores (each step reports the cores it used):
requests are 200 rows of the ``heavy`` model, work enough per request that 5x capacity
stays within what it sends without starving the server. With 1,000 demo rows instead
(80 kB bodies, twice the request rate), the generator took so much of the cores at 5x that
goodput fell to 0.82x of peak with the cap, and to 0.54x at the threads' cap.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path

from bench import load, models, openloop
from bench.load import Scenario
from bench.servers import OurStack
from bench.thresholds import Check
from deploy.stack import INFLIGHT_PER_WORKER

MODEL = "heavy"
ROWS = 200
WORKERS = 2
THREADS = 16
"""gunicorn's threads per worker (deploy/gunicorn.conf.py's default)."""
MULTIPLES = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
UNLOADED_RATE = 20.0
UNLOADED_RUNS = 4
"""The unloaded latency: 20 req/s for four steps' time, some 400 answers, so that its p99
is not one unlucky request (50 answers gave 10 to 35 ms between runs)."""
TARGET = 0.9
"""Goodput at 5x, as a share of the curve's peak."""
LATENCY_BOUND = 4.0
"""The 200s' p99 at 5x, at most this many times the unloaded p99."""
ONE_CLIENT = {"CLIENT_RATE": "100000r/s", "CLIENT_BURST": "100000"}
VARIANTS = {
    "shipped": INFLIGHT_PER_WORKER * WORKERS,
    "cap = threads": THREADS * WORKERS,
}
"""Each curve's MAX_INFLIGHT_PREDICTIONS."""


@dataclass(frozen=True)
class Point:
    multiple: float
    offered: float
    """Requests per second sent."""
    goodput: float
    p50_ms: float
    p99_ms: float
    refused: float
    """Share answered 503 or 429."""
    broken: int
    """Requests with no HTTP answer (or never sent: the generator ran out of connections)."""
    client_cores: float
    """CPU the generator used, in cores: what the server did not have."""


@dataclass(frozen=True)
class Curve:
    variant: str
    cap: int
    unloaded_p50_ms: float
    unloaded_p99_ms: float
    points: list[Point]

    @property
    def peak(self) -> float:
        return max(point.goodput for point in self.points)

    @property
    def at_most(self) -> Point:
        return self.points[-1]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def point(url: str, body: bytes, multiple: float, capacity: float, seconds: int) -> Point:
    started = cpu_seconds()
    outcome = openloop.offer(url, body, multiple * capacity, seconds)
    client = (cpu_seconds() - started) / seconds
    refused = sum(1 for a in outcome.answers if a.status in (429, 503))
    sent = len(outcome.answers) + sum(outcome.broken.values())
    return Point(
        multiple,
        multiple * capacity,
        outcome.goodput,
        outcome.ok_percentile(0.5) * 1000,
        outcome.ok_percentile(0.99) * 1000,
        refused / sent if sent else 0.0,
        sum(outcome.broken.values()),
        client,
    )


def capacity(base_url: str, cap: int, body_file: Path, seconds: int) -> float:
    """200s per second with as many connections as nginx admits (a worker that got more
    than its share may still refuse one: the workers take connections unevenly)."""
    scenario = Scenario("capacity", f"{ROWS} rows, {cap} connections", cap, ROWS)
    result = load.run_wrk(base_url, scenario, {ROWS: body_file}, seconds)
    return (result.requests - result.non_2xx) / result.duration_s


def run(artifact: Path, run_root: Path, workdir: Path, seconds: int, warmup_s: int) -> list[Curve]:
    """The curve for each variant, at multiples of the shipped stack's capacity."""
    body = models.body(ROWS, model=MODEL)
    body_file = workdir / "overload.body"
    body_file.write_bytes(body)
    curves: list[Curve] = []
    measured: float | None = None
    for variant, cap in VARIANTS.items():
        env = {**ONE_CLIENT, "MAX_INFLIGHT_PREDICTIONS": str(cap)}
        handle = OurStack(f"overload-{cap}", run_root, WORKERS, env).start(artifact)
        try:
            url = handle.base_url + "/model/predict"
            capacity(handle.base_url, cap, body_file, warmup_s)
            if measured is None:
                measured = capacity(handle.base_url, cap, body_file, seconds)
            unloaded = openloop.offer(url, body, UNLOADED_RATE, UNLOADED_RUNS * seconds)
            points = [point(url, body, m, measured, seconds) for m in MULTIPLES]
        finally:
            handle.stop()
        curves.append(
            Curve(
                variant,
                cap,
                unloaded.ok_percentile(0.5) * 1000,
                unloaded.ok_percentile(0.99) * 1000,
                points,
            )
        )
    return curves


def checks(curves: list[Curve]) -> list[Check]:
    if not curves:
        return []
    shipped, top = curves[0], curves[0].at_most
    ratio = top.goodput / shipped.peak
    latency = top.p99_ms / shipped.unloaded_p99_ms
    return [
        Check(
            f"goodput at {top.multiple:g}x offered >= {TARGET}x peak",
            MODEL,
            f"{ratio:.2f}x ({top.goodput:,.0f} of {shipped.peak:,.0f} req/s)",
            ratio >= TARGET,
        ),
        Check(
            f"p99 of the 200s at {top.multiple:g}x <= {LATENCY_BOUND:g}x unloaded p99",
            MODEL,
            f"{latency:.1f}x ({top.p99_ms:.0f} ms vs {shipped.unloaded_p99_ms:.0f} ms)",
            latency <= LATENCY_BOUND,
        ),
    ]
