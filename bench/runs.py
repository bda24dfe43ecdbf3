"""What one server did on one model: the figures the report prints and the thresholds judge."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.cpu import CpuUse
from bench.load import WrkResult
from bench.memory import ProcessMemory
from bench.profile import Profile

NOISY_CORES = 0.2
"""Above this many cores used by other processes during a run, its figures are flagged."""


@dataclass(frozen=True)
class ServerRun:
    """One server's figures on one model."""

    model: str
    server: str
    cold_start_s: float
    results: dict[str, WrkResult]
    """By scenario key, as is ``cpu``."""
    cpu: dict[str, CpuUse]
    memory: dict[str, list[ProcessMemory]]
    """After the load, by program (``servers.APP``, ``nginx``)."""
    profiles: dict[str, Profile] = field(default_factory=dict)
    """By scenario key: where the workers' time went (``bench.profile``), when profiled."""

    def processes(self, program: str | None = None) -> list[ProcessMemory]:
        """Every process measured, or one program's (``servers.APP``: master and workers)."""
        return [
            process
            for name, processes in self.memory.items()
            if program in (None, name)
            for process in processes
        ]

    def pss_kib(self, program: str | None = None) -> int:
        return sum(p.pss_kib for p in self.processes(program))

    def pss_anon_kib(self, program: str | None = None) -> int:
        return sum(p.pss_anon_kib for p in self.processes(program))

    def noisy(self, scenario: str) -> bool:
        return self.cpu[scenario].others > NOISY_CORES
