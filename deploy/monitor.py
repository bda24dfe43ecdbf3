"""``make monitor``: a local Prometheus with the repository's alert rules, scraping
``make run``'s metrics listener, so "scraped by Prometheus" is one command away
outside compose too.

The configuration is ``deploy/prometheus/prometheus.yml`` itself with only the app's
scrape job kept and its targets (compose's app replicas, found by DNS) replaced by this
one stack, and ``alerts.yml`` beside it, so the rules that run here are compose's. The
integration tests start their Prometheus with :func:`start_prometheus` too.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from deploy.processes import (
    Child,
    ChildExited,
    Stop,
    StopSignals,
    answers,
    die_with_our_parent,
    holder_of,
    port_free,
    wait_for_exit,
    wait_until,
)
from deploy.stack import ROOT

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
MODEL_JOB = "model-server"
"""The app's scrape job in prometheus.yml, which the alert rules' help text names."""


class MonitorError(RuntimeError):
    """Prometheus cannot start; the message says why in one line."""


def render_config(target: str, out_dir: Path, scrape_interval: str | None = None) -> Path:
    """The repository's Prometheus config scraping ``target``, with its alert rules."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == MODEL_JOB]
    job.pop("dns_sd_configs", None)  # compose's replicas; here one stack, on loopback
    job["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = [job]
    if scrape_interval:
        config["global"].update(
            scrape_interval=scrape_interval,
            evaluation_interval=scrape_interval,
            scrape_timeout=scrape_interval,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for rules in config.get("rule_files", []):
        shutil.copyfile(PROMETHEUS_DIR / rules, out_dir / rules)
    path = out_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise MonitorError(
            "prometheus is not installed: `make monitor` and `make test` install it, "
            "or run `sudo apt-get install prometheus`"
        )
    return found


def start_prometheus(config: Path, listen: str, log: Path) -> Child:
    """Prometheus on ``listen``, its data beside ``config``; dies with this process."""
    return Child.start(
        "prometheus",
        [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={config.parent / 'data'}",
            f"--web.listen-address={listen}",
        ],
        log=log,
        grace=20,
    )


def wait_ready(prometheus: Child, url: str, timeout: float) -> None:
    """Until Prometheus at ``url`` says it is ready; its exit or a time-out says why."""
    try:
        if wait_until(lambda: answers(url + "/-/ready"), timeout, watching=[prometheus]):
            return
    except ChildExited as exc:
        raise MonitorError(f"{exc}: {prometheus.tail(1) or 'no output'}") from None
    raise MonitorError(f"prometheus not ready after {timeout:.0f} s (log: {prometheus.log})")


@click.command()
@click.option("--metrics-port", default=9200, show_default=True, help="make run's metrics port.")
@click.option("--port", default=9090, show_default=True, help="Prometheus' own port.")
@click.option("--run-dir", default=ROOT / ".run", type=click.Path(path_type=Path))
def main(metrics_port: int, port: int, run_dir: Path) -> None:
    """Run Prometheus against `make run`'s metrics until Ctrl-C."""
    die_with_our_parent()
    signals = StopSignals()
    folder = run_dir / "monitor"
    log = folder / "prometheus.log"
    prometheus = None
    try:
        if not port_free("127.0.0.1", port):
            raise MonitorError(
                f"port 127.0.0.1:{port} is in use by {holder_of(f':{port}')}: "
                "stop it or choose another (MONITOR_PORT=...)"
            )
        config = render_config(f"127.0.0.1:{metrics_port}", folder)
        prometheus = start_prometheus(config, f"127.0.0.1:{port}", log)
        url = f"http://127.0.0.1:{port}"
        wait_ready(prometheus, url, timeout=60)
        click.echo(f"Prometheus: {url} (alerts: {url}/alerts), scraping 127.0.0.1:{metrics_port}")
        click.echo("Ctrl-C stops it")
        wait_for_exit([prometheus])
        raise MonitorError(f"prometheus exited ({prometheus.exit_status()}) (log: {log})")
    except Stop:
        click.echo("stopping")
    except MonitorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        signals.settle()
        if prometheus is not None:
            prometheus.stop()


if __name__ == "__main__":
    main()
