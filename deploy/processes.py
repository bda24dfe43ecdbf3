"""The process toolkit every launcher here shares: ``make run``, ``make monitor``, the
test fixtures and the benchmark start servers with it and stop them the same way.

- :func:`die_with_parent` / :func:`die_with_our_parent`: a child dies with whoever
  started it, even when that process is SIGKILLed (``PR_SET_PDEATHSIG``);
- :class:`StopSignals`: the first INT/TERM/HUP stops, later ones change nothing;
- :func:`port_free`, :func:`socket_live`, :func:`holder_of`: refuse to start over a
  live server, naming the pid that holds the port;
- :func:`stop_group`: graceful signal, then SIGKILL for a group that lingers;
- :func:`free_port`, :func:`group_pids`: ports for test servers, a group's live processes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import FrameType

PR_SET_PDEATHSIG = 1


def _prctl_death_signal(sig: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def die_with_parent(sig: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child receive ``sig`` when its parent dies, however
    the parent dies (SIGKILL included), so no server outlives whoever started it."""
    parent = os.getpid()

    def arm() -> None:
        _prctl_death_signal(sig)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os.kill(os.getpid(), sig)

    return arm


def die_with_our_parent() -> None:
    """TERM this process (a clean stop) when whoever started it dies: make, a shell."""
    _prctl_death_signal(signal.SIGTERM)


class Stop(Exception):
    """Raised in the main thread by the first stop signal."""


class StopSignals:
    """Turns the first INT/TERM/HUP into :class:`Stop`; later ones change nothing, so a
    second Ctrl-C, or the second TERM that make passes on to its group, cannot cut a
    stop short."""

    def __init__(self) -> None:
        self.received: int | None = None
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            raise Stop

    def settle(self) -> None:
        """From now on every signal is ignored: we are stopping anyway."""
        self.received = self.received or -1


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks; a tiny race until the server
    binds it): what the tests and the benchmark give each server they start."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def group_pids(pgid: int) -> list[int]:
    """Live processes of a process group, from ``/proc/PID/stat`` (field 5 is the group)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry.name))
    return sorted(pids)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def socket_live(path: Path) -> bool:
    """A unix socket someone still accepts on (a stale file refuses connections)."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def holder_of(address: str) -> str:
    """Who listens on a TCP port (``:8080``) or unix socket path, as ``pid N (name)``."""
    kind = ["-x", "src", address] if address.startswith("/") else ["-t", "sport", "=", address]
    try:
        listing = subprocess.run(
            ["ss", "-Hlp", *kind], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "an unknown process"
    found = re.search(r'\(\("([^"]+)",pid=(\d+)', listing)
    return f"pid {found.group(2)} ({found.group(1)})" if found else "an unknown process"


def stop_group(process: subprocess.Popen[bytes], sig: int, wait: float) -> None:
    """Signal a process started in its own session; kill the whole group if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.kill(process.pid, sig)
        process.wait(timeout=wait)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
