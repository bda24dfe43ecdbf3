"""The servers under test, started and stopped with ``deploy/processes.py``.

A server is anything with a ``name`` and ``start(model_path) -> Handle``; a
handle knows its base URL, its processes by program (for memory and CPU) and
how to stop. Every program runs in a process group of its own
(:class:`deploy.processes.Child`), so a stop leaves nothing behind, workers
included, even when a master died first.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from deploy.fleet import Fleet, FleetConfig
from deploy.processes import Child, exited, free_port
from deploy.stack import Stack, StackConfig

REPO = Path(__file__).resolve().parent.parent
GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"
STOP_GRACE_S = 10.0
OUR_ENV = {
    "ALLOW_UNSIGNED_MODELS": "true",
    "MAX_INFLIGHT_PREDICTIONS": "1024",
    "CLIENT_RATE": "100000r/s",
    "CLIENT_BURST": "100000",
}
"""The benchmark's artifacts are unsigned: verifying an HMAC at load costs well under 1 ms.
Its scenarios are closed-loop, each connection waiting for its answer: they measure a fixed
concurrency (up to 64 connections, from one client), which nginx's admission limits would
refuse in part, so they are lifted; the overload curve (``bench.overload``) measures them."""
APP = "gunicorn"
"""The program group of a server's Python processes (master and workers), whatever proxy
runs in front: the memory figures and thresholds count these."""


@dataclass
class Handle:
    """A running server: where it answers, its processes by program (:data:`APP`, and
    ``nginx`` when it fronts the app), and how to stop them all."""

    base_url: str
    children: dict[str, Child]
    launched_at: float
    """``time.perf_counter()`` just before launch, for the cold start."""
    stop_with: Callable[[], None] | None = None
    """How a server of our stack stops (``Stack.stop``, ``Fleet.stop``): its children, then
    its run folder's lock; else each child is stopped."""

    def groups(self) -> dict[str, list[int]]:
        """Live processes by program."""
        return {program: child.group() for program, child in self.children.items()}

    def pids(self) -> list[int]:
        """Every live process of the server, whatever its program (for CPU use)."""
        return [pid for group in self.groups().values() for pid in group]

    def died(self) -> str | None:
        """None while every process runs, else which stopped, how, and its log's end."""
        dead = exited(self.children.values())
        if dead is None:
            return None
        return f"{dead.name} exited ({dead.exit_status()}); end of {dead.log}:\n{dead.tail()}"

    def stop(self) -> None:
        if self.stop_with is not None:
            self.stop_with()
            return
        for child in self.children.values():
            child.stop()


class Server(Protocol):
    name: str

    @property
    def description(self) -> str:
        """What runs, for the report."""
        ...

    def start(self, model_path: Path) -> Handle: ...


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
        child = Child.start(APP, command, log=log, cwd=REPO, env=env, grace=STOP_GRACE_S)
        return Handle(f"http://127.0.0.1:{port}", {APP: child}, launched_at)


@dataclass(frozen=True)
class OurStack:
    """The stack as shipped, or with ``env`` or gunicorn's config changed (the ablation's
    variants).

    ``env`` comes last, so it may override WEB_CONCURRENCY too.
    """

    name: str
    run_root: Path
    workers: int
    env: dict[str, str] = field(default_factory=dict)
    gunicorn_conf: Path = GUNICORN_CONF

    @property
    def change(self) -> str:
        """What differs from the shipped stack."""
        changes = [f"{name}={value}" for name, value in self.env.items()]
        if self.gunicorn_conf != GUNICORN_CONF:
            changes.append(f"gunicorn -c {self.gunicorn_conf.relative_to(REPO)}")
        return " ".join(changes) or "as shipped"

    @property
    def description(self) -> str:
        conf = self.gunicorn_conf.relative_to(REPO)
        return f"deploy/stack.py: nginx, then gunicorn -c {conf} service.wsgi:app"

    def start(self, model_path: Path) -> Handle:
        config = StackConfig(
            model_path=model_path,
            run_dir=self.run_root / f"{self.name}-{model_path.parent.name}",
            port=free_port(),
            metrics_port=free_port(),
            env={"WEB_CONCURRENCY": str(self.workers), **OUR_ENV, **self.env},
            gunicorn_conf=self.gunicorn_conf,
        )
        launched_at = time.perf_counter()
        stack = Stack(config).start()
        assert stack.gunicorn is not None and stack.nginx is not None  # start() started both
        children = {APP: stack.gunicorn, "nginx": stack.nginx}
        return Handle(stack.base_url, children, launched_at, stop_with=stack.stop)


@dataclass(frozen=True)
class FleetServer:
    """``deploy/fleet.py``: ``replicas`` stacks of ``workers`` each behind HAProxy, one store."""

    name: str
    run_root: Path
    replicas: int
    workers: int

    @property
    def description(self) -> str:
        return (
            f"deploy/fleet.py: HAProxy, then {self.replicas} replicas (nginx, gunicorn with "
            f"{self.workers} worker{'s' if self.workers > 1 else ''}) sharing one store"
        )

    def start(self, model_path: Path) -> Handle:
        config = FleetConfig(
            model_path=model_path,
            run_dir=self.run_root / f"{self.name}-{model_path.parent.name}",
            replicas=self.replicas,
            port=free_port(),
            metrics_port=free_port(),
            workers=self.workers,
            env=OUR_ENV,
        )
        launched_at = time.perf_counter()
        fleet = Fleet(config).start()
        assert fleet.haproxy is not None  # start() started it
        children = {"haproxy": fleet.haproxy}
        for index, stack in enumerate(fleet.replicas, start=1):
            assert stack.gunicorn is not None and stack.nginx is not None
            suffix = "" if index == 1 else f"-{index}"
            children[APP + suffix] = stack.gunicorn
            children["nginx" + suffix] = stack.nginx
        return Handle(fleet.base_url, children, launched_at, stop_with=fleet.stop)


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
