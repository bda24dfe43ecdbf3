"""The servers under test, each started in process groups we can always stop.

A server is anything with a ``name`` and ``start(model_path) -> Handle``; a
handle knows its base URL, its processes by program (for memory and CPU) and
how to stop.
Every launch is a new session, so a stop can kill whole groups, workers
included, even when a master died first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from deploy.processes import die_with_parent, free_port, group_pids, stop_group
from deploy.stack import Stack, StackConfig

REPO = Path(__file__).resolve().parent.parent
GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"
STOP_GRACE_S = 10.0
OUR_ENV = {"ALLOW_UNSIGNED_MODELS": "true"}
"""The benchmark's artifacts are unsigned: verifying an HMAC at load costs well under 1 ms."""
LOG_TAIL_CHARS = 2_000
APP = "gunicorn"
"""The program group of a server's Python processes (master and workers), whatever proxy
runs in front: the issue's memory targets count these."""


class Handle(Protocol):
    base_url: str
    launched_at: float
    """``time.perf_counter()`` just before launch, for the cold start."""

    def groups(self) -> dict[str, list[int]]:
        """Live processes by program: :data:`APP`, and ``nginx`` when it fronts the app."""
        ...

    def died(self) -> str | None:
        """None while the server runs, else why it stopped (for an error message)."""
        ...

    def stop(self) -> None: ...


class Server(Protocol):
    name: str

    @property
    def description(self) -> str:
        """What runs, for the report."""
        ...

    def start(self, model_path: Path) -> Handle: ...


def pids(handle: Handle) -> list[int]:
    """Every live process of a server, whatever its program (for CPU use)."""
    return [pid for group in handle.groups().values() for pid in group]


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group of a session leader we started, then SIGKILL whatever is left
    (the naive server's workers too, which stop_group's leader-first TERM would orphan)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    stop_group(process, signal.SIGTERM, wait=STOP_GRACE_S)
    if group_pids(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return "(no log)"


@dataclass
class ProcessGroup:
    """A server we launched as the leader of a new session."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path
    launched_at: float

    def groups(self) -> dict[str, list[int]]:
        return {APP: group_pids(self.process.pid)}

    def died(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        return f"exited with code {code}; end of {self.log}:\n{log_tail(self.log)}"

    def stop(self) -> None:
        kill_group(self.process)


@dataclass(frozen=True)
class Gunicorn:
    """gunicorn serving ``app`` on a free loopback port, no nginx, the model from MODEL_PATH."""

    name: str
    app: str
    log_dir: Path
    workers: int
    options: tuple[str, ...]
    env: dict[str, str]

    @property
    def description(self) -> str:
        return " ".join(["gunicorn", *self.options, self.app, "(no nginx)"])

    def start(self, model_path: Path) -> Handle:
        port = free_port()
        log = self.log_dir / f"{self.name}-{model_path.parent.name}.log"
        env = {
            **os.environ,
            "MODEL_PATH": str(model_path),
            "WEB_CONCURRENCY": str(self.workers),
            # deploy/gunicorn.conf.py empties this folder, by default the dev stack's .run/
            "PROMETHEUS_MULTIPROC_DIR": str(log.with_suffix(".metrics")),
            **self.env,
        }
        command = [str(Path(sys.executable).with_name("gunicorn")), *self.options]
        command += ["-b", f"127.0.0.1:{port}", self.app]  # -b overrides a config file's bind
        launched_at = time.perf_counter()
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        return ProcessGroup(f"http://127.0.0.1:{port}", process, log, launched_at)


@dataclass
class StackHandle:
    """Our production stack from ``deploy/stack.py``: nginx in front of gunicorn."""

    stack: Stack
    launched_at: float

    @property
    def base_url(self) -> str:
        return self.stack.base_url

    def _processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in (self.stack.gunicorn, self.stack.nginx) if p is not None]

    def groups(self) -> dict[str, list[int]]:
        programs = {APP: self.stack.gunicorn, "nginx": self.stack.nginx}
        return {name: group_pids(p.pid) for name, p in programs.items() if p is not None}

    def died(self) -> str | None:
        for process in self._processes():
            if process.poll() is not None:
                logs = self.stack.run_dir
                return f"{process.args[0]} exited with {process.returncode}; logs in {logs}"
        return None

    def stop(self) -> None:
        """The stack's own graceful stop, then make sure neither group left anything."""
        try:
            self.stack.stop()
        finally:
            for process in self._processes():
                kill_group(process)


@dataclass(frozen=True)
class OurStack:
    """The stack as shipped, or started with ``env`` changed (the ablation's variants).

    ``env`` comes last, so it may override WEB_CONCURRENCY too.
    """

    name: str
    run_root: Path
    workers: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def change(self) -> str:
        """What differs from the shipped stack."""
        return " ".join(f"{name}={value}" for name, value in self.env.items()) or "as shipped"

    @property
    def description(self) -> str:
        return "deploy/stack.py: nginx, then gunicorn -c deploy/gunicorn.conf.py service.wsgi:app"

    def start(self, model_path: Path) -> Handle:
        config = StackConfig(
            model_path=model_path,
            run_dir=self.run_root / f"{self.name}-{model_path.parent.name}",
            port=free_port(),
            metrics_port=free_port(),
            env={"WEB_CONCURRENCY": str(self.workers), **OUR_ENV, **self.env},
        )
        handle = StackHandle(Stack(config), time.perf_counter())
        try:
            handle.stack.start()
        except BaseException:
            handle.stop()
            raise
        return handle


NAMES = ("ours", "ours-gunicorn", "naive")


def available(log_dir: Path, workers: int) -> dict[str, Server]:
    """Every server the benchmark knows, by name (BENCH_SERVERS picks among them).

    ours: the production stack. ours-gunicorn: the same gunicorn config without nginx,
    to tell nginx's share. naive: ``bench/naive_app.py`` under gunicorn's defaults (sync
    workers), the yardstick; only its control socket is moved out of ``$HOME``.
    """
    return {
        "ours": OurStack("ours", log_dir, workers),
        "ours-gunicorn": Gunicorn(
            "ours-gunicorn",
            "service.wsgi:app",
            log_dir,
            workers,
            ("-c", str(GUNICORN_CONF)),
            OUR_ENV,
        ),
        "naive": Gunicorn(
            "naive",
            "bench.naive_app:app",
            log_dir,
            workers,
            ("-w", str(workers), "--no-control-socket"),
            {},
        ),
    }
