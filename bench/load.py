"""The load scenarios, driven by wrk, and the numbers wrk reports for each.

wrk is an open-source C load generator cheap enough to share two cores with the
server; our Lua scripts (``bench/wrk/``) add a summary line we parse instead of
scraping wrk's human output.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import models

WRK_DIR = Path(__file__).resolve().parent / "wrk"
MARKER = "BENCH_RESULT "
REQUEST_TIMEOUT = "10s"
"""wrk drops slower answers from its latency stats; 10 s keeps queueing visible in p99."""


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    connections: int
    rows: int | None
    """Rows per request; None for the 1-100 mix."""


SCENARIOS = (
    Scenario("A", "1 row, 1 connection", 1, 1),
    Scenario("B", "1 row, 32 connections", 32, 1),
    Scenario("C", "1,000 rows, 4 connections", 4, 1_000),
    Scenario("D", "1-100 rows mixed, 64 connections", 64, None),
)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    non_2xx: int
    connect: int
    read: int
    write: int
    timeout: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_rows: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s

    @property
    def rows_per_s(self) -> float:
        return self.requests_per_s * self.mean_rows

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout


def write_bodies(folder: Path, model: str = models.DEFAULT) -> dict[int | None, Path]:
    """Body files for the Lua scripts, for ``model``'s columns: one JSON per fixed size,
    ``"<rows> <json>"`` lines for the mix (keyed None)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[int | None, Path] = {}
    for rows in {s.rows for s in SCENARIOS if s.rows is not None}:
        files[rows] = folder / f"body-{rows}.json"
        files[rows].write_bytes(models.body(rows, model=model))
    files[None] = folder / "mixed.txt"
    mixed = models.mixed_bodies(model)
    files[None].write_bytes(b"".join(b"%d %s\n" % pair for pair in mixed))
    return files


def run_wrk(
    base_url: str,
    scenario: Scenario,
    bodies: dict[int | None, Path],
    seconds: int,
    path: str = "/model/predict",
    content_type: str = "application/json",
) -> WrkResult:
    """One bounded wrk run (one thread: the client must leave the cores to the server)."""
    if scenario.rows is None:
        script, args = WRK_DIR / "mixed.lua", [str(bodies[None])]
    else:
        rows = str(scenario.rows)
        script, args = WRK_DIR / "post.lua", [str(bodies[scenario.rows]), rows, content_type]
    command = [
        "wrk",
        "-t1",
        f"-c{scenario.connections}",
        f"-d{seconds}s",
        f"--timeout={REQUEST_TIMEOUT}",
        f"-s{script}",
        f"{base_url}{path}",
        "--",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            return WrkResult(**json.loads(line.removeprefix(MARKER)))
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}): {done.stderr[-500:]}")
