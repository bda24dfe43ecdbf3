"""The process toolkit every launcher here shares: ``make run``, ``make monitor``, the
test fixtures and the benchmark start servers with it and stop them the same way.

- :class:`Child`: a program started as the leader of its own process group, dying with
  whoever started it even when that process is SIGKILLed (``PR_SET_PDEATHSIG``), and
  stopped by the one stop policy (:meth:`Child.stop`);
- :func:`wait_until`: poll a condition, failing as soon as a watched child exits;
  :func:`wait_for_exit`: block until one of several children exits;
- :class:`StopSignals`, :func:`die_with_our_parent`: the first INT/TERM/HUP stops, later
  ones change nothing; a launcher dies with make (or whatever started it);
- :func:`port_free`, :func:`socket_live`, :func:`holder_of`: refuse to start over a
  live server, naming the pid that holds the port;
- :func:`free_port`, :func:`group_pids`, :func:`answers`: ports for test servers, a
  group's live processes, a readiness probe.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass
class Child:
    """A program we started as the leader of a new session (so of its own process group),
    its output appended to ``log``. It receives ``death_signal`` when whoever started it
    dies, however that process dies; :meth:`stop` is the one stop policy."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int
    grace: float

    @classmethod
    def start(
        cls,
        name: str,
        command: Sequence[str],
        *,
        log: Path,
        stop_signal: int = signal.SIGTERM,
        grace: float = 10,
        death_signal: int = signal.SIGTERM,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        """Start ``command``; ``stop_signal`` and ``grace`` are its graceful stop."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(death_signal),
            )
        return cls(name, process, log, stop_signal, grace)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def group(self) -> list[int]:
        """Its live processes: the leader and every worker it forked."""
        return group_pids(self.pid)

    def exit_status(self) -> str | None:
        """None while it runs, else how it ended: ``exit code 1``, ``killed by SIGKILL``."""
        code = self.process.poll()
        if code is None:
            return None
        if code >= 0:
            return f"exit code {code}"
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:  # a real-time signal: no name
            return f"killed by signal {-code}"

    def tail(self, lines: int = 30) -> str:
        """The end of its log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """``stop_signal`` to the leader, up to ``grace`` seconds for the whole group to
        exit, then SIGKILL for whatever is left of it (workers a dead master orphaned too).
        Safe to call again, and on a child that already exited."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, self.stop_signal)
            wait_until(lambda: not self.running() and not self.group(), self.grace)
        if self.group():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


class ChildExited(RuntimeError):
    """A child that should be running exited; the message names it and how it ended."""

    def __init__(self, child: Child) -> None:
        super().__init__(f"{child.name} exited ({child.exit_status()})")
        self.child = child


def exited(children: Iterable[Child]) -> Child | None:
    """The first of ``children`` that is no longer running, if any."""
    return next((child for child in children if not child.running()), None)


def wait_for_exit(children: Sequence[Child], interval: float = 0.5) -> Child:
    """Block while every one of ``children`` runs; return the first that exits."""
    while (dead := exited(children)) is None:
        time.sleep(interval)
    return dead


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    *,
    watching: Iterable[Child] = (),
    interval: float = 0.1,
) -> bool:
    """Poll ``ready`` until it holds (True) or ``timeout`` seconds pass (False). Raises
    :class:`ChildExited` as soon as one of ``watching`` exits: what it was to serve will
    not come."""
    watched = list(watching)
    deadline = time.monotonic() + timeout
    while True:
        if (dead := exited(watched)) is not None:
            raise ChildExited(dead)
        if ready():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Straight to the address, whatever proxy the environment names."""


def answers(url: str, timeout: float = 2) -> bool:
    """``url`` answers 200 now."""
    try:
        with LOOPBACK.open(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
