"""The fleet figure: the same cores as three replicas behind HAProxy, or as one replica.

Three replicas of one worker each through HAProxy (``deploy/fleet.py``: what a fleet
adds, a load balancer hop, health checks, one nginx per replica) against one replica of
three workers through nginx, on the same machine, model and load, interleaved scenario
by scenario. The ratio fleet/one-replica is what the load balancer and the extra
replicas cost (or win) on this machine; on several machines the fleet also adds their
cores, which no single-machine figure can show.
"""

from __future__ import annotations

from pathlib import Path

from bench import load
from bench.runs import ServerRun
from bench.servers import FleetServer, OurStack

MODEL = "linear"
SCENARIOS = tuple(s for key in "ABD" for s in load.SCENARIOS if s.key == key)
BASELINE = "one-replica"
FLEET = "fleet"
REPLICAS = 3


def servers(run_root: Path) -> list[OurStack | FleetServer]:
    """One replica of three workers first (the baseline), then three replicas of one."""
    return [
        OurStack(BASELINE, run_root, REPLICAS),
        FleetServer(FLEET, run_root, REPLICAS, workers=1),
    ]


def overhead(runs: list[ServerRun]) -> str:
    """The load balancer's cost in one sentence: A's extra p50, and B's req/s ratio."""
    by_name = {run.server: run for run in runs}
    fleet, one = by_name[FLEET], by_name[BASELINE]
    hop_ms = fleet.results["A"].p50_ms - one.results["A"].p50_ms
    ratio = fleet.results["B"].requests_per_s / max(one.results["B"].requests_per_s, 1e-9)
    return (
        f"HAProxy's hop adds {hop_ms:+.2f} ms to a lone request's p50 (A); under 32 "
        f"connections (B) the fleet serves {ratio:.2f}x the one replica's req/s"
    )
