"""`make monitor`: the repository's Prometheus config and alert rules, scraping a local stack."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import requests

from deploy.processes import Child, free_port
from deploy.stack import ROOT, Stack
from tests.integration.conftest import shell_env, wait_for
from tests.integration.test_make_run import processes_mentioning


def test_make_monitor_scrapes_the_stack_and_stops_with_its_group(
    stack: Stack, tmp_path: Path
) -> None:
    port = free_port()
    console = tmp_path / "console"
    monitor = Child.start(
        "make monitor",
        ["make", "--no-print-directory", "monitor", f"RUN_DIR={tmp_path}"]
        + [f"METRICS_PORT={stack.config.metrics_port}", f"MONITOR_PORT={port}"],
        log=console,
        cwd=ROOT,
        env=shell_env(),
        grace=60,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: "Ctrl-C stops it" in console.read_text() or not monitor.running(),
            60,
            "make monitor",
        )
        assert monitor.running(), console.read_text()

        def target_up() -> bool:
            targets = requests.get(f"{url}/api/v1/targets", timeout=5).json()["data"]
            return [t["health"] for t in targets["activeTargets"]] == ["up"]

        wait_for(target_up, 60, "the stack's metrics listener to be scraped")
        groups = requests.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert any(rule["name"] == "ModelServerNotReady" for g in groups for rule in g["rules"])
        os.killpg(monitor.pid, signal.SIGTERM)
        os.killpg(monitor.pid, signal.SIGTERM)
        monitor.process.wait(timeout=60)
        wait_for(lambda: not processes_mentioning(str(tmp_path)), 30, "prometheus to exit")
    finally:
        monitor.stop()
    assert "stopping" in console.read_text()
