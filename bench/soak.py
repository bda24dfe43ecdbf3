"""Soak test: steady mixed load through nginx for minutes; errors must stay at zero and
each worker's memory flat. ``make soak`` runs 10 minutes; ``make test`` runs 60 seconds.

Worker recycling (``max_requests``) is switched off for the run: it would hide a leak by
replacing the leaking process, which is exactly what a soak test must not allow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import load, memory, models
from deploy.processes import free_port
from deploy.stack import Stack, StackConfig
from service.model import signing

SLICE_S = 10
GROWTH_LIMIT = 0.05
STEADY = load.Scenario("soak", "1-100 rows mixed, 8 connections", 8, None)
"""Steady rather than saturating: a soak looks for drift, not for the ceiling."""
KEY = "soak-signing-key"


@dataclass
class Soak:
    seconds: int
    slices: list[load.WrkResult] = field(default_factory=list)
    baseline_kib: dict[int, int] = field(default_factory=dict)
    final_kib: dict[int, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.slices)

    @property
    def errors(self) -> int:
        return sum(s.non_2xx + s.socket_errors for s in self.slices)

    def growth(self) -> dict[int, float]:
        """RSS growth per worker from the end of the warm-up to the end of the run."""
        return {
            pid: self.final_kib[pid] / before - 1
            for pid, before in self.baseline_kib.items()
            if pid in self.final_kib
        }

    @property
    def passed(self) -> bool:
        growth = self.growth()
        same_workers = set(self.baseline_kib) == set(self.final_kib)
        return self.errors == 0 and same_workers and all(g < GROWTH_LIMIT for g in growth.values())

    def report(self) -> str:
        lines = [f"soak: {self.seconds} s, {self.requests} requests, {self.errors} errors"]
        for index, s in enumerate(self.slices):
            lines.append(
                f"  t={(index + 1) * SLICE_S:4d} s  {s.requests_per_s:8.1f} req/s  "
                f"p50 {s.p50_ms:7.2f} ms  p99 {s.p99_ms:7.2f} ms  "
                f"errors {s.non_2xx + s.socket_errors}"
            )
        for pid, growth in self.growth().items():
            lines.append(
                f"  worker {pid}: RSS {self.baseline_kib[pid] / 1024:.1f} -> "
                f"{self.final_kib[pid] / 1024:.1f} MiB ({growth:+.1%})"
            )
        lines.append("PASS" if self.passed else "FAIL")
        return "\n".join(lines)


def rss(pids: list[int]) -> dict[int, int]:
    return {m.pid: m.rss_kib for m in memory.measure(pids)}


def run(seconds: int, workdir: Path) -> Soak:
    """Serve the benchmark's linear model and keep it under steady load for ``seconds``."""
    artifact = models.build(workdir / "binary", ["linear"])["linear"]
    signing.write_signature(artifact, KEY.encode())
    bodies = load.write_bodies(workdir)
    config = StackConfig(
        model_path=artifact,
        run_dir=workdir / "run",
        port=free_port(),
        metrics_port=free_port(),
        env={
            "MODEL_SIGNING_KEY": KEY,
            "GUNICORN_MAX_REQUESTS": "0",
            "WEB_CONCURRENCY": "2",
            # Steady load, not overload: nginx admits every connection.
            "MAX_INFLIGHT_PREDICTIONS": str(4 * STEADY.connections),
        },
    )
    soak = Soak(seconds)
    warm_up_slices = max(1, min(6, seconds // SLICE_S // 3))
    with Stack(config) as stack:
        for index in range(max(1, seconds // SLICE_S)):
            soak.slices.append(load.run_wrk(stack.base_url, STEADY, bodies, SLICE_S))
            if index + 1 == warm_up_slices:
                soak.baseline_kib = rss(stack.worker_pids())
        soak.final_kib = rss(stack.worker_pids())
    return soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        soak = run(args.seconds, Path(workdir))
    print(soak.report())
    sys.exit(0 if soak.passed else 1)


if __name__ == "__main__":
    main()
