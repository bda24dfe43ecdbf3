"""The production stack (nginx in front of gunicorn) as child processes of this machine.

``make run`` (``deploy/run.py``), the integration tests and the benchmark drive
the same configs the compose stack ships: ``deploy/gunicorn.conf.py`` and
``deploy/nginx/`` rendered by ``deploy/nginx/render.sh``. Runtime state
(rendered configs, socket, logs, pids) lives in one run folder.

What makes it safe to start twice and to kill:
- before touching anything, it takes the run folder's lock and checks that its
  ports and gunicorn's socket are free, naming the pid that holds them;
- both children die with the process that started them, even when it is
  SIGKILLed (``PR_SET_PDEATHSIG``);
- a child that exits is noticed: while starting (the start fails with its reason)
  and while serving (:meth:`Stack.check_alive`, :meth:`Stack.watch`), for nginx as for
  gunicorn;
- :meth:`Stack.stop` runs once, however many times it is called, and leaves no process
  of either group behind.

Processes are started, watched and stopped with ``deploy/processes.py``; this module
only says which programs run, with what configuration, and when they are ready.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from deploy.processes import (
    Child,
    ChildExited,
    answers,
    exited,
    holder_of,
    port_free,
    socket_live,
    wait_for_exit,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
"""The lock the venv's runtime packages come from (make installs requirements/dev.txt, its
superset at the same versions): the app shows its sha256 (LOCK_SHA256)."""
NGINX_SETTINGS = frozenset(
    {"MAX_BODY_BYTES", "MAX_INFLIGHT_PREDICTIONS", "CLIENT_RATE", "CLIENT_BURST", "REAL_IP_FROM"}
)
"""Settings in a stack's ``env`` that nginx's templates read (deploy/nginx/render.sh) too."""
INFLIGHT_PER_WORKER = 4
"""nginx's cap on predictions in flight (MAX_INFLIGHT_PREDICTIONS), per gunicorn worker: one
call scoring, the next batch forming behind it, two being read. Measured on 2 cores (make
bench, the overload curve; README, "Under load"): the 200s' p99 at overload grew with the
cap, and at the threads' cap (16 per worker) 1,000-row requests collapsed, goodput falling
by a third. Below the threads, so probes and metadata always find one."""


class StackError(RuntimeError):
    """The stack cannot start or stopped serving; the message is one line with the reason."""


class ChildDied(StackError):
    """nginx or gunicorn exited while serving: the stack serves nothing any more. The
    message names the process and how it ended; ``tail`` is the end of its log."""

    def __init__(self, child: Child) -> None:
        super().__init__(f"{child.name} exited ({child.exit_status()}) while serving")
        self.child = child
        self.tail = child.tail(LOG_TAIL_LINES)


@dataclass
class StackConfig:
    model_path: Path
    run_dir: Path
    port: int = 8080
    metrics_port: int = 9200
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for gunicorn and the app (WEB_CONCURRENCY, STORE_DIR...)."""
    gunicorn_conf: Path = DEPLOY / "gunicorn.conf.py"
    """gunicorn's configuration: the shipped one unless a benchmark variant names its own."""
    tls: TLS | None = None
    """A TLS listener beside the plain one (render.sh's TLS_* variables)."""


@dataclass(frozen=True)
class TLS:
    port: int
    cert: Path
    key: Path
    redirect: bool = False
    """Plain HTTP answers 308 to the TLS listener (probes excepted)."""

    def env(self, host: str) -> dict[str, str]:
        return {
            "TLS_LISTEN": f"{host}:{self.port}",
            "TLS_CERT_FILE": str(self.cert.resolve()),
            "TLS_KEY_FILE": str(self.key.resolve()),
            "TLS_REDIRECT": "on" if self.redirect else "off",
        }


LOG_TAIL_LINES = 15


class Stack:
    """gunicorn and nginx as child processes; use as a context manager so both always stop."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.run_dir = config.run_dir.resolve()
        self.gunicorn: Child | None = None
        self.nginx: Child | None = None
        self._lock: int | None = None
        self._stopped = False

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.config.host}:{self.config.metrics_port}/metrics"

    @property
    def tls_url(self) -> str | None:
        tls = self.config.tls
        return None if tls is None else f"https://{self.config.host}:{tls.port}"

    @property
    def socket(self) -> Path:
        return self.run_dir / "gunicorn.sock"

    @property
    def store_dir(self) -> Path:
        """Where the app keeps its versions: STORE_DIR, else beside the model."""
        configured = self.config.env.get("STORE_DIR")
        return Path(configured) if configured else self.config.model_path.resolve().parent

    def app_env(self) -> dict[str, str]:
        """The environment gunicorn and the app start with."""
        env = {
            **os.environ,
            "MODEL_PATH": str(self.config.model_path.resolve()),
            "BIND": f"unix:{self.socket}",
            "PROMETHEUS_MULTIPROC_DIR": str(self.run_dir / "prometheus"),
            "DOWNLOAD_ACCEL_PREFIX": "/_artifacts/",
            "PYTHONPATH": str(ROOT),
            "LOCK_SHA256": hashlib.sha256(RUNTIME_LOCK.read_bytes()).hexdigest(),
            **self.config.env,
        }
        env.pop("_METRICS_DIR_OWNER", None)
        return env

    def nginx_env(self) -> dict[str, str]:
        """The variables deploy/nginx/render.sh substitutes."""
        return {
            **os.environ,
            "RUN_DIR": str(self.run_dir),
            "NGINX_LISTEN": f"{self.config.host}:{self.config.port}",
            "METRICS_LISTEN": f"{self.config.host}:{self.config.metrics_port}",
            "UPSTREAM": f"unix:{self.socket}",
            "MODEL_DIR": str(self.store_dir.resolve()),
            "MAX_INFLIGHT_PREDICTIONS": str(self.workers * INFLIGHT_PER_WORKER),
            **{k: v for k, v in self.config.env.items() if k in NGINX_SETTINGS},
            **(self.config.tls.env(self.config.host) if self.config.tls else {}),
        }

    # ---- starting ----------------------------------------------------------------------

    def start(self, timeout: float = 60) -> Stack:
        """Check that nothing else uses our ports, socket or run folder, start gunicorn,
        wait until its app is ready, then put nginx in front. A start that fails (or is
        interrupted) stops whatever it started."""
        try:
            self.preflight()
            self.start_gunicorn()
            self._wait(self.socket.exists, timeout, self.gunicorn_failure)
            self.start_nginx()
            self._wait(lambda: answers(self.base_url + "/readyz"), timeout, self.nginx_failure)
            # Every worker forked, so callers that note worker pids (fault tests) see them all.
            workers = self.workers
            self._wait(lambda: len(self.worker_pids()) == workers, timeout, self.gunicorn_failure)
        except BaseException:
            self.stop()
            raise
        return self

    def children(self) -> list[Child]:
        """The processes started so far: gunicorn, then nginx."""
        return [child for child in (self.gunicorn, self.nginx) if child is not None]

    @property
    def workers(self) -> int:
        """How many workers gunicorn forks: deploy/gunicorn.conf.py's rule."""
        configured = self.config.env.get("WEB_CONCURRENCY", os.environ.get("WEB_CONCURRENCY"))
        return int(configured) if configured else os.cpu_count() or 2

    def preflight(self) -> None:
        """Refuse to start, touching nothing, when another stack or program holds what we
        need: the run folder (its socket and metrics files), our ports, gunicorn's socket."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        ports = [self.config.port, self.config.metrics_port]
        ports += [self.config.tls.port] if self.config.tls else []
        for port in ports:
            if not port_free(self.config.host, port):
                self._release_lock()
                raise StackError(
                    f"port {self.config.host}:{port} is in use by {holder_of(f':{port}')}: "
                    "stop it or choose another port (PORT=..., METRICS_PORT=..., TLS_PORT=...)"
                )
        if socket_live(self.socket):
            self._release_lock()
            raise StackError(
                f"{self.socket} is in use by {holder_of(str(self.socket))}: "
                "another server is running from this run folder"
            )
        self.socket.unlink(missing_ok=True)  # left behind by a stack that was killed

    def _take_lock(self) -> None:
        fd = os.open(self.run_dir / "stack.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StackError(
                f"another stack (pid {owner}) is running from {self.run_dir}: stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock = fd

    def _release_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def start_gunicorn(self) -> None:
        self.gunicorn = Child.start(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "-c", str(self.config.gunicorn_conf)]
            + ["service.wsgi:app"],
            log=self.run_dir / "gunicorn.log",
            cwd=ROOT,
            env=self.app_env(),
            # Graceful: in-flight predictions finish (graceful_timeout is 20 s).
            stop_signal=signal.SIGTERM,
            grace=30,
            # Quick shutdown: whoever started it is gone, so nobody awaits its answers.
            death_signal=signal.SIGINT,
        )

    def start_nginx(self) -> None:
        conf_dir = self.run_dir / "nginx"
        subprocess.run(
            ["sh", str(DEPLOY / "nginx" / "render.sh"), str(conf_dir)],
            env=self.nginx_env(),
            check=True,
        )
        # As root, nginx's workers would otherwise drop to `nobody`, who cannot read a
        # private run folder or model folder; in the container nginx runs unprivileged.
        directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        self.nginx = Child.start(
            "nginx",
            [system_binary("nginx", "make run"), "-c", str(conf_dir / "nginx.conf"), "-e", "stderr"]
            + ["-g", directives],
            log=self.run_dir / "nginx-error.log",
            stop_signal=signal.SIGQUIT,  # graceful: answers in flight are finished
            grace=10,
            death_signal=signal.SIGTERM,  # fast shutdown
        )

    def _wait(self, ready: Callable[[], bool], timeout: float, failure: Callable[[], str]) -> None:
        """Until ``ready``; a child that exits meanwhile fails the start with its reason."""
        try:
            if wait_until(ready, timeout, watching=self.children()):
                return
        except ChildExited as exc:
            reason = self.gunicorn_failure if exc.child is self.gunicorn else self.nginx_failure
            raise StackError(reason()) from None
        raise StackError(f"not ready after {timeout:.0f} s: {failure()}")

    def gunicorn_failure(self) -> str:
        """gunicorn's reason in one line: the boot failure the app reported, else its last
        error line; the full trace stays in the log."""
        log = self.run_dir / "gunicorn.log"
        lines = self.gunicorn.tail(200).splitlines() if self.gunicorn else []
        reported = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
        reason = reported[-1] if reported else (lines[-1] if lines else "no output")
        return f"gunicorn failed: {reason} (log: {log})"

    def nginx_failure(self) -> str:
        log = self.run_dir / "nginx-error.log"
        tail = self.nginx.tail(200).splitlines() if self.nginx else []
        lines = [line for line in tail if "[emerg]" in line]
        reason = lines[-1].partition("[emerg] ")[2] if lines else "see the log"
        return f"nginx failed: {reason} (log: {log})"

    # ---- running -----------------------------------------------------------------------

    def check_alive(self) -> None:
        """Raise :class:`ChildDied` naming the process that exited, nginx or gunicorn: a
        stack with one part gone serves nothing."""
        if (dead := exited(self.children())) is not None:
            raise ChildDied(dead)

    def watch(self) -> NoReturn:
        """Block while both serve; raise :class:`ChildDied` as soon as either exits (the
        caller then stops the other, as ``make run`` does)."""
        raise ChildDied(wait_for_exit(self.children()))

    def worker_pids(self) -> list[int]:
        """gunicorn's current workers (the master's children)."""
        if self.gunicorn is None:
            return []
        children = Path(f"/proc/{self.gunicorn.pid}/task/{self.gunicorn.pid}/children")
        try:
            return sorted(int(pid) for pid in children.read_text().split())
        except OSError:
            return []

    # ---- stopping ----------------------------------------------------------------------

    def stop(self) -> None:
        """Graceful stop (nginx QUIT, gunicorn TERM), then SIGKILL for whatever lingers.
        Runs once: a second call (a second Ctrl-C) does not cut the first one short."""
        if self._stopped:
            return
        self._stopped = True
        try:
            for child in reversed(self.children()):  # nginx first: no new requests
                child.stop()
        finally:
            self._release_lock()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def system_binary(name: str, target: str) -> str:
    """A Debian package's program (nginx, haproxy live in /usr/sbin, which a non-root PATH
    lacks); StackError saying how to install it when it is missing."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise StackError(
            f"{name} is not installed: `{target}` and `make test` install it, "
            f"or run `sudo apt-get install {name}`"
        )
    return found
