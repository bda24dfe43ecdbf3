"""Memory of a server's processes, from ``/proc/PID/smaps_rollup``.

RSS counts shared pages once per process, so it overstates forked workers that
share the model copy-on-write; PSS splits shared pages between their sharers,
so PSS summed over the processes is what the server really costs. Its file part
(libraries) is also split with any other process mapping the same files, such as
the other server and this benchmark; the anonymous part (heap, the model) is not,
so it compares servers whatever else runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    role: str
    rss_kib: int
    pss_kib: int
    pss_anon_kib: int


def _rollup(pid: int) -> dict[str, int]:
    """The kB counters of smaps_rollup (``Rss:``, ``Pss:``...)."""
    counters = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        counters[name.rstrip(":")] = int(value)
    return counters


def _role(pid: int, pids: set[int]) -> str:
    """``<command> master`` for a process whose parent is outside the server, else worker."""
    proc = Path(f"/proc/{pid}")
    command = (proc / "comm").read_text().strip()
    parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    return f"{command} {'worker' if parent in pids else 'master'}"


def measure(pids: list[int]) -> list[ProcessMemory]:
    """RSS and PSS of each process (those that exited meanwhile are skipped)."""
    result = []
    for pid in pids:
        try:
            counters = _rollup(pid)
            role = _role(pid, set(pids))
        except (FileNotFoundError, ProcessLookupError):
            continue
        result.append(
            ProcessMemory(pid, role, counters["Rss"], counters["Pss"], counters["Pss_Anon"])
        )
    return result
