"""Validate the Prometheus config and alerting rules with promtool.

Needs the `promtool` binary (Debian package `prometheus`). A missing
promtool is a test FAILURE, not a skip: otherwise broken alert rules
could ship unnoticed on a machine without it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROM_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def _run(*args: str) -> str:
    """Run promtool, assert it succeeded, return its combined output."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool not found on PATH: install it (apt-get install prometheus) "
            "so the Prometheus config and alert rules can be validated"
        )
    proc = subprocess.run(
        [promtool, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    assert "SUCCESS" in output, output
    assert "FAILED" not in output, output
    return output


def test_prometheus_config_is_valid() -> None:
    """Prometheus refuses to start on an invalid config, and the rule file
    path is resolved relative to prometheus.yml: both are checked here."""
    output = _run("check", "config", str(PROM_DIR / "prometheus.yml"))
    assert "1 rule files found" in output, output


def test_alert_rules_are_valid() -> None:
    """A PromQL syntax error in alerts.yml would make Prometheus reject the
    whole rule file, silently leaving the service without any alert."""
    output = _run("check", "rules", str(PROM_DIR / "alerts.yml"))
    assert "5 rules found" in output, output


def test_alert_rules_unit_tests_pass() -> None:
    """Valid PromQL can still be wrong: the unit tests prove each alert fires
    on a synthetic incident and stays quiet on healthy traffic."""
    _run("test", "rules", str(PROM_DIR / "alerts_test.yml"))
