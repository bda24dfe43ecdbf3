"""``make bench`` / ``python -m bench.run``: our server against the naive app, under wrk.

First, while no server runs: the in-process ceiling and the cheap wins
(``bench.wins``). Then for each model: launch each server and time its first
correct prediction (cold start); run scenarios A-D (each after a short warm-up)
on the servers in turn; read the memory of every process; stop. Then the
ablation (``bench.ablation``): our stack against one-change variants, the same
way on scenarios B and A. Last, the thresholds against the naive server are
judged on the run's figures (``bench.thresholds``). One load at a time: the
machine has two cores, so anything concurrent would be measured too. Every
process started is stopped on error, Ctrl-C, SIGTERM or SIGHUP.

Before the servers, the model zoo (``bench.zoo``): how each of its pipelines is served
(plan or fallback, verified on how many rows) and the plan's in-process speedup. After
each model's scenarios, py-spy profiles our stack under each scenario
(``bench.profile``): the report explains a MISS with them.

Settings (environment): BENCH_DURATION seconds per scenario (10), BENCH_WARMUP
(1), BENCH_CEILING seconds per ceiling case (1), BENCH_WINS seconds per cheap
win (0.5), BENCH_ZOO seconds per zoo timing (0.5), BENCH_PROFILE seconds per
profiled scenario (5; 0 skips profiling), BENCH_ABLATION seconds per ablation
scenario (5; 0 skips the ablation), BENCH_PROTOCOLS seconds per run of scenario B through
each protocol (4, five rounds; 0 skips ``bench.protocols``), BENCH_OVERLOAD seconds per
step of the overload curve (5, twelve steps; 0 skips ``bench.overload``), BENCH_FLEET
seconds per fleet scenario (5; 0 skips the fleet figure, ``bench.fleet``), BENCH_WORKERS
per server (2),
BENCH_MODELS (``demo,linear``; also ``heavy``; the ablation and the wins always use their
models), BENCH_SERVERS (``ours,naive``; also ``ours-gunicorn``). The defaults take
about eleven minutes on two cores.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sklearn

from bench import (
    ablation,
    ceiling,
    cpu,
    fleet,
    load,
    memory,
    models,
    overload,
    profile,
    protocols,
    report,
    servers,
    thresholds,
    wins,
    zoo,
)
from bench.runs import ServerRun
from deploy.processes import LOOPBACK, ChildExited, Stop, StopSignals, wait_until

RESULTS = Path(__file__).resolve().parent / "results"
READY_TIMEOUT_S = 120.0
POLL_S = 0.02
STARTED = time.perf_counter()


@dataclass(frozen=True)
class Config:
    """The run's settings, from BENCH_* variables (see the module docstring)."""

    duration_s: int
    warmup_s: int
    ceiling_s: float
    wins_s: float
    zoo_s: float
    profile_s: int
    ablation_s: int
    fleet_s: int
    protocols_s: int
    overload_s: int
    workers: int
    models: tuple[str, ...]
    servers: tuple[str, ...]

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            duration_s=int(os.environ.get("BENCH_DURATION", "10")),
            warmup_s=int(os.environ.get("BENCH_WARMUP", "1")),
            ceiling_s=float(os.environ.get("BENCH_CEILING", "1")),
            wins_s=float(os.environ.get("BENCH_WINS", "0.5")),
            zoo_s=float(os.environ.get("BENCH_ZOO", "0.5")),
            profile_s=int(os.environ.get("BENCH_PROFILE", "5")),
            ablation_s=int(os.environ.get("BENCH_ABLATION", "5")),
            fleet_s=int(os.environ.get("BENCH_FLEET", "5")),
            protocols_s=int(os.environ.get("BENCH_PROTOCOLS", "4")),
            overload_s=int(os.environ.get("BENCH_OVERLOAD", "5")),
            workers=int(os.environ.get("BENCH_WORKERS", "2")),
            models=_names("BENCH_MODELS", "demo,linear", models.NAMES),
            servers=_names("BENCH_SERVERS", "ours,naive", servers.NAMES),
        )


@dataclass(frozen=True)
class Schedule:
    """What every server of one comparison runs: these scenarios, each for ``seconds``
    after ``warmup_s`` of the same load."""

    scenarios: tuple[load.Scenario, ...]
    seconds: int
    warmup_s: int
    profile_s: int = 0
    """Seconds of py-spy per scenario on our stack, after the measured runs (0: none)."""


def _names(variable: str, default: str, known: Iterable[str]) -> tuple[str, ...]:
    """A comma-separated choice from the environment, refused early if it names unknowns."""
    names = tuple(os.environ.get(variable, default).split(","))
    unknown = set(names) - set(known)
    if unknown:
        raise SystemExit(f"{variable}: unknown {sorted(unknown)}; known: {', '.join(known)}")
    return names


def log(message: str) -> None:
    """Progress goes to stderr, stamped with the seconds since start (the run has a time
    budget); stdout carries only the report."""
    print(f"[{time.perf_counter() - STARTED:4.0f} s] {message}", file=sys.stderr, flush=True)


def _fetch(url: str, body: bytes | None = None) -> bytes:
    """The response body; raises OSError (HTTPError, URLError) on refusal or non-2xx."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    with LOOPBACK.open(urllib.request.Request(url, body, headers), timeout=10) as response:
        return response.read()


def cold_start(handle: servers.Handle, probe: bytes, expected: list[Any]) -> float:
    """Seconds from launch to the first correct prediction, polled once /readyz says 200."""
    ready = False

    def predicted() -> bool:
        nonlocal ready
        try:
            if not ready:
                _fetch(f"{handle.base_url}/readyz")  # raises until it answers 2xx
                ready = True
            answer = orjson.loads(_fetch(f"{handle.base_url}/model/predict", probe))
        except OSError:
            return False
        if answer["predictions"] != expected:
            raise RuntimeError(f"wrong predictions {answer}; expected {expected}")
        return True

    left = READY_TIMEOUT_S - (time.perf_counter() - handle.launched_at)
    try:
        if wait_until(predicted, left, watching=handle.children.values(), interval=POLL_S):
            return time.perf_counter() - handle.launched_at
    except ChildExited:
        raise RuntimeError(f"the server stopped during start-up: {handle.died()}") from None
    raise TimeoutError(f"no correct prediction within {READY_TIMEOUT_S:.0f} s")


def measure(
    model: str,
    name: str,
    running: servers.Handle,
    scenario: load.Scenario,
    bodies: dict[int | None, Path],
    schedule: Schedule,
) -> tuple[load.WrkResult, cpu.CpuUse]:
    """One scenario on one server: warm-up, then the measured run and where the CPU went."""
    load.run_wrk(running.base_url, scenario, bodies, schedule.warmup_s)
    before = cpu.snapshot(running.pids())
    result = load.run_wrk(running.base_url, scenario, bodies, schedule.seconds)
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
    schedule: Schedule,
) -> list[ServerRun]:
    """Every server on one model, stopped in all cases.

    The servers run side by side, idle but for the one under load, and take turns
    scenario by scenario: a neighbour's burst on this shared machine then hits both
    servers' runs of a scenario, not all the scenarios of one server.
    """
    expected = models.load(artifact).predict(models.frame(1, model=model)).tolist()
    probe = models.body(1, model=model)
    with contextlib.ExitStack() as stack:
        running: dict[str, servers.Handle] = {}
        started: dict[str, float] = {}
        for server in under_test:
            running[server.name] = server.start(artifact)
            stack.callback(running[server.name].stop)
            started[server.name] = cold_start(running[server.name], probe, expected)
            log(f"{model}/{server.name}: first correct prediction {started[server.name]:.2f} s")
        measured = {
            (name, scenario.key): measure(model, name, handle, scenario, bodies, schedule)
            for scenario in schedule.scenarios
            for name, handle in running.items()
        }
        profiles = _profiles(model, running, bodies, schedule)
        runs = []
        for name, handle in running.items():
            if (why := handle.died()) is not None:
                raise RuntimeError(f"{name} stopped during the load: {why}")
            results = {s.key: measured[name, s.key][0] for s in schedule.scenarios}
            cpu_use = {s.key: measured[name, s.key][1] for s in schedule.scenarios}
            used = {program: memory.measure(pids) for program, pids in handle.groups().items()}
            runs.append(
                ServerRun(
                    model, name, started[name], results, cpu_use, used, profiles.get(name, {})
                )
            )
        return runs


def _profiles(
    model: str,
    running: dict[str, servers.Handle],
    bodies: dict[int | None, Path],
    schedule: Schedule,
) -> dict[str, dict[str, profile.Profile]]:
    """Our stack's profile under each scenario, by server and scenario (none when off)."""
    ours = running.get(thresholds.CANDIDATE)
    if not schedule.profile_s or ours is None:
        return {}
    found = {}
    for scenario in schedule.scenarios:
        found[scenario.key] = profile.record(
            ours, model, scenario, bodies, schedule.profile_s, RESULTS / "profiles"
        )
        log(f"{model}/ours {scenario.key}: profiled, {found[scenario.key].samples} samples")
    return {thresholds.CANDIDATE: found}


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
        "in-process": (
            f"ceiling {config.ceiling_s:g} s per case, cheap wins {config.wins_s:g} s per "
            f"comparison, model zoo {config.zoo_s:g} s per comparison (best of "
            f"{zoo.ROUNDS} rounds per side, taking turns), "
            "before any server starts"
        ),
        "profiles": (
            f"py-spy, {config.profile_s} s per scenario at {profile.SAMPLE_RATE} Hz, our stack"
            " only, after its measured runs"
            if config.profile_s
            else "off (BENCH_PROFILE=0)"
        ),
    }
    if config.ablation_s:
        facts["ablation"] = (
            f"model {ablation.MODEL}, scenarios {', '.join(s.key for s in ablation.SCENARIOS)}, "
            f"{config.ablation_s} s each after {config.warmup_s} s of warm-up; "
            f"{ablation.BASELINE}: {ablation.shipped(config.workers)}"
        )
    if config.fleet_s:
        facts["fleet"] = (
            f"model {fleet.MODEL}, scenarios {', '.join(s.key for s in fleet.SCENARIOS)}, "
            f"{config.fleet_s} s each after {config.warmup_s} s of warm-up"
        )
    facts.update({server.name: server.description for server in under_test})
    return facts


def main() -> None:
    config = Config.from_env()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    logs = RESULTS / "logs"
    shutil.rmtree(logs, ignore_errors=True)  # the stack appends to its logs: keep this run's
    logs.mkdir(parents=True)
    known = servers.available(logs, config.workers)
    under_test = [known[name] for name in config.servers]
    variants = ablation.variants(logs / "ablation", config.workers) if config.ablation_s else []
    facts = settings(config, under_test)
    runs = []
    ablated: list[ServerRun] = []
    fleet_runs: list[ServerRun] = []
    fronts: list[protocols.FrontResult] = []
    curves: list[overload.Curve] = []
    fleet_servers = fleet.servers(logs / "fleet") if config.fleet_s else []
    main_load = Schedule(load.SCENARIOS, config.duration_s, config.warmup_s, config.profile_s)
    shutil.rmtree(RESULTS / "profiles", ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        artifacts = models.build(Path(workdir))  # every model: the wins need linear and heavy
        bodies = {
            model: load.write_bodies(Path(workdir) / "bodies" / model, model)
            for model in {*config.models, ablation.MODEL}
        }
        log(f"models built; model zoo, {config.zoo_s:g} s per timing")
        zoo_results = zoo.run(Path(workdir) / "zoo", config.zoo_s)
        log(f"in-process ceiling, {config.ceiling_s:g} s per case")
        ceilings = ceiling.run({m: artifacts[m] for m in config.models}, config.ceiling_s)
        log(f"cheap wins, {config.wins_s:g} s per comparison")
        won = wins.run(artifacts, config.wins_s)
        for model in config.models:
            runs += bench_model(under_test, model, artifacts[model], bodies[model], main_load)
        if variants:
            log(f"ablation: {len(variants)} variants, {config.ablation_s} s per scenario")
            ablation_load = Schedule(ablation.SCENARIOS, config.ablation_s, config.warmup_s)
            ablated = bench_model(
                variants,
                ablation.MODEL,
                artifacts[ablation.MODEL],
                bodies[ablation.MODEL],
                ablation_load,
            )
        if config.protocols_s:
            log(f"protocols: scenario B through each, {config.protocols_s} s per run")
            fronts = protocols.run(
                artifacts[protocols.MODEL],
                logs / "protocols",
                Path(workdir),
                config.protocols_s,
                config.warmup_s,
            )
        if config.overload_s:
            log(f"overload curve: {config.overload_s} s per step")
            curves = overload.run(
                artifacts[overload.MODEL],
                logs / "overload",
                Path(workdir),
                config.overload_s,
                config.warmup_s,
            )
        if fleet_servers:
            log(f"fleet: {fleet.REPLICAS} replicas vs one, {config.fleet_s} s per scenario")
            fleet_load = Schedule(fleet.SCENARIOS, config.fleet_s, config.warmup_s)
            fleet_runs = bench_model(
                fleet_servers, fleet.MODEL, artifacts[fleet.MODEL], bodies[fleet.MODEL], fleet_load
            )
    results = report.Results(
        settings=facts,
        thresholds=[
            *thresholds.check(runs, ablated, config.workers),
            *protocols.checks(fronts),
            *overload.checks(curves),
        ],
        runs=runs,
        ablation=ablated,
        changes={variant.name: variant.change for variant in variants},
        wins=won,
        ceilings=ceilings,
        zoo=zoo_results,
        fleet=fleet_runs,
        protocols=fronts,
        overload=curves,
        servers={server.name: server.description for server in fleet_servers},
    )
    (RESULTS / "results.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    )
    text = report.markdown(results)
    (RESULTS / "report.md").write_text(text)
    report.chart(ceilings, runs, RESULTS / "bench.png")
    if curves:
        report.overload_chart(curves, RESULTS / "overload.png")
    print(text)
    log(
        f"wrote report.md, bench.png, overload.png and results.json (raw) in {RESULTS};"
        f" server logs in {logs}"
    )


if __name__ == "__main__":
    # The first INT, TERM or HUP (even started in the background, where INT is ignored)
    # unwinds main(), whose `finally` blocks stop every server; later ones change nothing.
    signals = StopSignals()
    try:
        main()
    except Stop:
        log("interrupted: every server started was stopped")
        sys.exit(128 + (signals.received or 0))
