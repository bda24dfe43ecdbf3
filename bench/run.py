"""``make bench`` / ``python -m bench.run``: our server against the naive app, under wrk.

For each model: launch each server and time its first correct prediction
(cold start); run scenarios A-D (each after a short warm-up) on the servers in
turn; read the memory of every process; stop. The in-process ceiling runs
first, while no server runs. One load at a time: the machine has two cores, so
anything concurrent would be measured too. Every process started is stopped on
error, Ctrl-C or SIGTERM.

Settings (environment): BENCH_DURATION seconds per scenario (12), BENCH_WARMUP
(1), BENCH_CEILING seconds per ceiling case (2), BENCH_WORKERS per server (2),
BENCH_MODELS (``linear,heavy``), BENCH_SERVERS (``ours,naive``; also
``ours-gunicorn``). The defaults take about four minutes (250 s measured): 12 s, not
15, per scenario keeps 2 models x 2 servers x 4 scenarios under five.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import sklearn

from bench import ceiling, cpu, load, memory, models, report, servers

RESULTS = Path(__file__).resolve().parent / "results"
READY_TIMEOUT_S = 120.0
POLL_S = 0.02


@dataclass(frozen=True)
class Config:
    """The run's settings, from BENCH_* variables (see the module docstring)."""

    duration_s: int
    warmup_s: int
    ceiling_s: float
    workers: int
    models: tuple[str, ...]
    servers: tuple[str, ...]

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            duration_s=int(os.environ.get("BENCH_DURATION", "12")),
            warmup_s=int(os.environ.get("BENCH_WARMUP", "1")),
            ceiling_s=float(os.environ.get("BENCH_CEILING", "2")),
            workers=int(os.environ.get("BENCH_WORKERS", "2")),
            models=_names("BENCH_MODELS", "linear,heavy", models.CLASSIFIERS),
            servers=_names("BENCH_SERVERS", "ours,naive", servers.NAMES),
        )


def _names(variable: str, default: str, known: Iterable[str]) -> tuple[str, ...]:
    """A comma-separated choice from the environment, refused early if it names unknowns."""
    names = tuple(os.environ.get(variable, default).split(","))
    unknown = set(names) - set(known)
    if unknown:
        raise SystemExit(f"{variable}: unknown {sorted(unknown)}; known: {', '.join(known)}")
    return names


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the report."""
    print(message, file=sys.stderr, flush=True)


LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Straight to 127.0.0.1, whatever proxy the environment names."""


def _fetch(url: str, body: bytes | None = None) -> bytes:
    """The response body; raises OSError (HTTPError, URLError) on refusal or non-2xx."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    with LOOPBACK.open(urllib.request.Request(url, body, headers), timeout=10) as response:
        return response.read()


def cold_start(handle: servers.Handle, probe: bytes, expected: list[Any]) -> float:
    """Seconds from launch to the first correct prediction, polled once /readyz says 200."""
    ready = False
    while time.perf_counter() - handle.launched_at < READY_TIMEOUT_S:
        if (why := handle.died()) is not None:
            raise RuntimeError(f"the server stopped during start-up: {why}")
        try:
            if not ready:
                _fetch(f"{handle.base_url}/readyz")  # raises until it answers 2xx
                ready = True
            answer = orjson.loads(_fetch(f"{handle.base_url}/model/predict", probe))
        except OSError:
            time.sleep(POLL_S)
            continue
        if answer["predictions"] != expected:
            raise RuntimeError(f"wrong predictions {answer}; expected {expected}")
        return time.perf_counter() - handle.launched_at
    raise TimeoutError(f"no correct prediction within {READY_TIMEOUT_S:.0f} s")


def measure(
    model: str,
    name: str,
    running: servers.Handle,
    scenario: load.Scenario,
    bodies: dict[int | None, Path],
    config: Config,
) -> tuple[load.WrkResult, cpu.CpuUse]:
    """One scenario on one server: warm-up, then the measured run and where the CPU went."""
    load.run_wrk(running.base_url, scenario, bodies, config.warmup_s)
    before = cpu.snapshot(running.pids())
    result = load.run_wrk(running.base_url, scenario, bodies, config.duration_s)
    use = cpu.between(before, cpu.snapshot(running.pids()))
    log(
        f"{model}/{name} {scenario.key}: {result.requests_per_s:.1f} req/s, "
        f"p99 {result.p99_ms:.1f} ms, {result.non_2xx} non-2xx, "
        f"{result.socket_errors} socket errors, {use.others:.2f} cores used by others"
    )
    return result, use


def bench_model(
    under_test: list[servers.Server],
    model: str,
    artifact: Path,
    bodies: dict[int | None, Path],
    config: Config,
) -> list[report.ServerRun]:
    """Every server on one model, stopped in all cases.

    The servers run side by side, idle but for the one under load, and take turns
    scenario by scenario: a neighbour's burst on this shared machine then hits both
    servers' runs of a scenario, not all the scenarios of one server.
    """
    expected = models.load(artifact).predict(models.frame(1)).tolist()
    with contextlib.ExitStack() as stack:
        running: dict[str, servers.Handle] = {}
        started: dict[str, float] = {}
        for server in under_test:
            running[server.name] = server.start(artifact)
            stack.callback(running[server.name].stop)
            started[server.name] = cold_start(running[server.name], models.body(1), expected)
            log(f"{model}/{server.name}: first correct prediction {started[server.name]:.2f} s")
        measured = {
            (name, scenario.key): measure(model, name, handle, scenario, bodies, config)
            for scenario in load.SCENARIOS
            for name, handle in running.items()
        }
        runs = []
        for name, handle in running.items():
            if (why := handle.died()) is not None:
                raise RuntimeError(f"{name} stopped during the load: {why}")
            results = {s.key: measured[name, s.key][0] for s in load.SCENARIOS}
            cpu_use = {s.key: measured[name, s.key][1] for s in load.SCENARIOS}
            used = memory.measure(handle.pids())
            runs.append(report.ServerRun(model, name, started[name], results, cpu_use, used))
        return runs


def revision() -> str:
    """The commit measured, flagged when the code under test differs from it."""
    try:
        head, changed = (
            subprocess.run(
                command, cwd=servers.REPO, capture_output=True, text=True, check=True
            ).stdout.strip()
            for command in (
                ["git", "rev-parse", "--short", "HEAD"],
                ["git", "status", "--porcelain", "--", "service", "deploy"],
            )
        )
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return head + (" with uncommitted changes in service/ or deploy/" if changed else "")


def settings(config: Config, under_test: list[servers.Server]) -> dict[str, str]:
    """What a reader needs to judge the figures: code, machine, load and servers."""
    facts = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "code": revision(),
        "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start",
        "versions": f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}",
        "load": (
            f"wrk, 1 thread, {config.duration_s} s per scenario after {config.warmup_s} s "
            f"of warm-up; {config.workers} gunicorn workers per server"
        ),
    }
    facts.update({server.name: server.description for server in under_test})
    return facts


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks stop the servers."""
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # KeyboardInterrupt on SIGINT even when started in the background, where it is ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    config = Config.from_env()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    logs = RESULTS / "logs"
    shutil.rmtree(logs, ignore_errors=True)  # the stack appends to its logs: keep this run's
    logs.mkdir(parents=True)
    known = servers.available(logs, config.workers)
    under_test = [known[name] for name in config.servers]
    facts = settings(config, under_test)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        artifacts = models.build(Path(workdir), config.models)
        bodies = load.write_bodies(Path(workdir))
        log(f"models built; in-process ceiling, {config.ceiling_s:g} s per case")
        ceilings = ceiling.run(artifacts, config.ceiling_s)
        for model, artifact in artifacts.items():
            runs += bench_model(under_test, model, artifact, bodies, config)
    raw = {"settings": facts, "ceilings": ceilings, "runs": runs}
    (RESULTS / "results.json").write_bytes(orjson.dumps(raw, option=orjson.OPT_INDENT_2))
    text = report.markdown(facts, ceilings, runs)
    (RESULTS / "report.md").write_text(text)
    report.chart(ceilings, runs, RESULTS / "bench.png")
    print(text)
    log(f"wrote report.md, bench.png and results.json (raw) in {RESULTS}; server logs in {logs}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        log("interrupted: every server started was stopped")
        sys.exit(130)
