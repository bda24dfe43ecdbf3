"""``make fleet``: N replicas of the stack behind HAProxy, sharing one model store.

    python -m deploy.fleet [--replicas 3] [--model path/to/pipeline.pkl] [--port 8080] ...

Each replica is the whole stack (``deploy/stack.py``: nginx in front of gunicorn) on
ports of its own; their ``STORE_DIR`` is one folder, ``make run``'s ``.run/store``, so
an upload or an activation through any of them is the fleet's (``control.follower``).
HAProxy (``deploy/haproxy/haproxy.cfg``) listens on the public port, probes every
replica's ``/readyz`` each second, retries a prediction on another replica when one
refuses it, never an admin call, and exports its own metrics on the metrics port. A
replica told to stop drains first (``SHUTDOWN_DRAIN_S``), so restarting one at a
time loses nothing: :meth:`Fleet.restart`.

Stopping is ``make run``'s: INT, TERM or HUP, once or more, stop every process it
started; killed outright, its children die with it.
"""

from __future__ import annotations

import urllib.error
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import click
from prometheus_client.parser import text_string_to_metric_families

from deploy import haproxy_config
from deploy.model_choice import Choice
from deploy.processes import (
    LOOPBACK,
    Child,
    ChildExited,
    free_port,
    holder_of,
    port_free,
    wait_for_exit,
    wait_until,
)
from deploy.run import credentials, launcher_options, serve
from deploy.stack import ChildDied, Stack, StackConfig, StackError, system_binary

DRAIN_S = 5.0
"""A stopping replica fails /readyz this long before it stops taking requests: HAProxy
(probing every second, down after two failures) has taken it out by then."""


class FleetError(StackError):
    """The fleet cannot start; the message says why in one line."""


@dataclass
class FleetConfig:
    model_path: Path
    run_dir: Path
    replicas: int
    port: int
    metrics_port: int
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    """For every replica (credentials, BOOT_MODEL...); the fleet sets STORE_DIR."""
    host: str = "127.0.0.1"

    @property
    def store_dir(self) -> Path:
        return (self.run_dir / "store").resolve()


def render_config(config: FleetConfig, replicas: list[Stack], target: Path) -> Path:
    """The repository's HAProxy config with this fleet's addresses filled in."""
    text = haproxy_config.render(
        listen=f"{config.host}:{config.port}",
        metrics_listen=f"{config.host}:{config.metrics_port}",
        servers=[
            f"server replica-{index} {stack.config.host}:{stack.config.port}"
            for index, stack in enumerate(replicas, start=1)
        ],
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


class Fleet:
    """The replicas and their load balancer; ``with Fleet(config) as fleet:`` stops all."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.replicas: list[Stack] = []
        self.haproxy: Child | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.config.host}:{self.config.metrics_port}/metrics"

    def replica_config(self, index: int) -> StackConfig:
        return StackConfig(
            model_path=self.config.model_path,
            run_dir=self.config.run_dir / "fleet" / f"replica-{index}",
            port=free_port(),
            metrics_port=free_port(),
            env={
                "WEB_CONCURRENCY": str(self.config.workers),
                "SHUTDOWN_DRAIN_S": str(DRAIN_S),
                **self.config.env,
                "STORE_DIR": str(self.config.store_dir),
            },
        )

    def start(self, timeout: float = 60) -> Fleet:
        """Every replica, one after the other (the first seeds the store), then HAProxy
        once it sees every replica ready."""
        for port in (self.config.port, self.config.metrics_port):
            if not port_free(self.config.host, port):
                raise FleetError(
                    f"port {self.config.host}:{port} is in use by {holder_of(f':{port}')}: "
                    "stop it or choose another (PORT=..., METRICS_PORT=...)"
                )
        try:
            for index in range(1, self.config.replicas + 1):
                self.replicas.append(Stack(self.replica_config(index)).start(timeout))
            self.start_haproxy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_haproxy(self, timeout: float) -> None:
        folder = self.config.run_dir / "fleet"
        config = render_config(self.config, self.replicas, folder / "haproxy.cfg")
        self.haproxy = Child.start(
            "haproxy",
            [system_binary("haproxy", "make fleet"), "-db", "-f", str(config)],
            log=folder / "haproxy.log",
        )
        try:
            ready = wait_until(self.all_up, timeout, watching=[self.haproxy])
        except ChildExited:
            raise FleetError(f"haproxy exited: {self.haproxy.tail(5)}") from None
        if not ready:
            raise FleetError(f"haproxy did not see every replica up within {timeout:g} s")

    def all_up(self) -> bool:
        """Every replica answers /readyz through HAProxy's health checks (its metrics)."""
        return self.servers_up() == self.config.replicas * 2  # both backends

    def servers_up(self) -> int:
        """Servers HAProxy counts as up, over both backends (from its exporter); 0 while
        its metrics listener does not answer yet."""
        try:
            with LOOPBACK.open(self.metrics_url, timeout=5) as response:
                text = response.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0
        return sum(
            1
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "haproxy_server_status"
            and sample.labels.get("state") == "UP"
            and sample.value == 1
        )

    def restart(self, index: int, timeout: float = 60) -> Stack:
        """Stop replica ``index`` (0-based) as an orchestrator would (TERM: it drains, then
        stops gracefully) and start it again with the same ports."""
        old = self.replicas[index]
        if old.gunicorn is not None:
            old.gunicorn.stop()  # TERM: /readyz fails, DRAIN_S later the graceful stop
        old.stop()  # then nginx, which no request reaches any more
        self.replicas[index] = Stack(old.config).start(timeout)
        return self.replicas[index]

    def watch(self) -> None:
        """Until a process of the fleet exits (raises ChildDied) or a stop signal."""
        children = [c for stack in self.replicas for c in (stack.gunicorn, stack.nginx) if c]
        children += [self.haproxy] if self.haproxy else []
        raise ChildDied(wait_for_exit(children))

    def stop(self) -> None:
        """HAProxy first (no new requests), then every replica at once: each drains for
        DRAIN_S, which nobody needs any more but which costs the same time in parallel."""
        if self.haproxy is not None:
            self.haproxy.stop()
        with ThreadPoolExecutor(max_workers=max(1, len(self.replicas))) as pool:
            for stopped in [pool.submit(stack.stop) for stack in self.replicas]:
                stopped.result()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@click.command()
@click.option("--replicas", default=3, show_default=True, help="How many replicas.")
@click.option("--workers", default=1, show_default=True, help="gunicorn workers per replica.")
@launcher_options("HAProxy")
def main(
    replicas: int,
    workers: int,
    model: Path | None,
    port: int,
    metrics_port: int,
    run_dir: Path,
    key_file: Path,
    token_file: Path,
) -> None:
    """Serve a model from N replicas behind HAProxy until Ctrl-C."""

    def build(choice: Choice) -> Fleet:
        env = credentials(choice, key_file, token_file)
        return Fleet(
            FleetConfig(choice.model_path, run_dir, replicas, port, metrics_port, workers, env)
        )

    serve(model, run_dir, key_file, build, _announce)


def _announce(fleet: Fleet) -> None:
    click.echo(f"API: {fleet.base_url} (HAProxy, {fleet.config.replicas} replicas, one store)")
    for index, stack in enumerate(fleet.replicas, start=1):
        click.echo(f"  replica-{index}: {stack.base_url}, metrics {stack.metrics_url}")
    click.echo(f"HAProxy metrics: {fleet.metrics_url}; store: {fleet.config.store_dir}")
    click.echo("Ctrl-C stops everything")


if __name__ == "__main__":
    main()
