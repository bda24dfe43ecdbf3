"""Where the CPU went during a measurement: the server, wrk, and everyone else.

The machine is shared and has two cores. "Others" (other processes, and time
the hypervisor stole) says whether a neighbour took cores during a run: check it
before believing a ratio. "wrk" is the load generator's own share.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Snapshot:
    wall: float
    machine: float
    server: float
    children: float


@dataclass(frozen=True)
class CpuUse:
    """Average cores busy over a measurement."""

    server: float
    client: float
    others: float


def _machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot, steal included, idle and iowait not."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_S


def _processes_s(pids: list[int]) -> float:
    """User plus system CPU seconds of the processes (fields 14 and 15 of their stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS_PER_S


def snapshot(server_pids: list[int]) -> Snapshot:
    """Counters now; our finished children (the wrk runs) are read from our own rusage."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Snapshot(
        time.perf_counter(),
        _machine_busy_s(),
        _processes_s(server_pids),
        children.ru_utime + children.ru_stime,
    )


def between(before: Snapshot, after: Snapshot) -> CpuUse:
    wall = after.wall - before.wall
    server = after.server - before.server
    client = after.children - before.children
    others = after.machine - before.machine - server - client
    return CpuUse(server / wall, client / wall, max(others, 0.0) / wall)
