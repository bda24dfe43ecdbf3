"""Run the production stack (nginx in front of gunicorn) on this machine, without Docker.

``make run`` uses it to serve the demo model, the integration tests and the
benchmark use it to drive the same configs the compose stack ships:
``deploy/gunicorn.conf.py`` and ``deploy/nginx/`` rendered by
``deploy/nginx/render.sh``. Runtime state (rendered configs, socket, logs,
pids) lives in one run folder, ``.run/`` by default.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


class StackError(RuntimeError):
    """The stack did not come up; the message carries the failing process's log tail."""


@dataclass
class StackConfig:
    model_path: Path
    run_dir: Path
    port: int = 8080
    metrics_port: int = 9200
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for gunicorn and the app (WEB_CONCURRENCY, GUNICORN_TIMEOUT...)."""


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_group(process: subprocess.Popen[bytes], sig: int, wait: float) -> None:
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


class Stack:
    """gunicorn and nginx as child processes; use as a context manager so both always stop."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.run_dir = config.run_dir.resolve()
        self.gunicorn: subprocess.Popen[bytes] | None = None
        self.nginx: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.config.host}:{self.config.metrics_port}/metrics"

    @property
    def socket(self) -> Path:
        return self.run_dir / "gunicorn.sock"

    def app_env(self) -> dict[str, str]:
        """The environment gunicorn and the app start with."""
        env = {
            **os.environ,
            "MODEL_PATH": str(self.config.model_path.resolve()),
            "BIND": f"unix:{self.socket}",
            "PROMETHEUS_MULTIPROC_DIR": str(self.run_dir / "prometheus"),
            "DOWNLOAD_ACCEL_PREFIX": "/_artifacts/",
            "PYTHONPATH": str(ROOT),
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
            "MODEL_DIR": str(self.config.model_path.resolve().parent),
            **{k: v for k, v in self.config.env.items() if k == "MAX_BODY_BYTES"},
        }

    def start(self, timeout: float = 60) -> Stack:
        """Start gunicorn, wait until its app is ready, then put nginx in front."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.start_gunicorn()
        self._wait(self._gunicorn_ready, timeout, self.gunicorn, self.run_dir / "gunicorn.log")
        self.start_nginx()
        self._wait(self._nginx_ready, timeout, self.nginx, self.run_dir / "nginx-error.log")
        return self

    def start_gunicorn(self) -> None:
        with (self.run_dir / "gunicorn.log").open("ab") as log:
            self.gunicorn = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py")]
                + ["service.wsgi:app"],
                cwd=ROOT,
                env=self.app_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
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
        with (self.run_dir / "nginx-error.log").open("ab") as log:
            self.nginx = subprocess.Popen(
                [nginx_binary(), "-c", str(conf_dir / "nginx.conf"), "-e", "stderr"]
                + ["-g", directives],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _gunicorn_ready(self) -> bool:
        return self.socket.exists()

    def _nginx_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/readyz", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    @staticmethod
    def _wait(ready, timeout: float, process: subprocess.Popen[bytes] | None, log: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise StackError(f"exited with {process.returncode}:\n{_log_tail(log)}")
            if ready():
                return
            time.sleep(0.1)
        raise StackError(f"not ready after {timeout:.0f} s:\n{_log_tail(log)}")

    def worker_pids(self) -> list[int]:
        """gunicorn's current workers (the master's children)."""
        if self.gunicorn is None:
            return []
        children = Path(f"/proc/{self.gunicorn.pid}/task/{self.gunicorn.pid}/children")
        try:
            return sorted(int(pid) for pid in children.read_text().split())
        except OSError:
            return []

    def stop(self) -> None:
        """Graceful stop (nginx QUIT, gunicorn TERM), then SIGKILL for whatever lingers."""
        if self.nginx is not None:
            _stop_group(self.nginx, signal.SIGQUIT, wait=10)
        if self.gunicorn is not None:
            _stop_group(self.gunicorn, signal.SIGTERM, wait=30)

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def nginx_binary() -> str:
    """nginx's path, installed with apt-get when missing and we are root."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found:
        return found
    if os.geteuid() != 0:
        raise StackError("nginx is not installed: run `sudo apt-get install nginx`, then retry")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("nginx", path="/usr/sbin:/usr/bin") or "nginx"


@click.command()
@click.option("--model", default=ROOT / "binary" / "pipeline.pkl", type=click.Path(path_type=Path))
@click.option("--port", default=8080, envvar="PORT", show_default=True)
@click.option("--metrics-port", default=9200, envvar="METRICS_PORT", show_default=True)
@click.option("--run-dir", default=ROOT / ".run", type=click.Path(path_type=Path))
def main(model: Path, port: int, metrics_port: int, run_dir: Path) -> None:
    """Serve MODEL through nginx and gunicorn until Ctrl-C."""
    config = StackConfig(model_path=model, run_dir=run_dir, port=port, metrics_port=metrics_port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with Stack(config) as stack:
            click.echo(f"serving {model} at {stack.base_url} (metrics: {stack.metrics_url})")
            click.echo(f"logs: {stack.run_dir}/gunicorn.log, {stack.run_dir}/nginx-access.log")
            click.echo("Ctrl-C stops both")
            while stack.gunicorn and stack.gunicorn.poll() is None:
                time.sleep(0.5)
            raise StackError(f"gunicorn exited:\n{_log_tail(stack.run_dir / 'gunicorn.log')}")
    except KeyboardInterrupt:
        click.echo("stopped")
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    main()
