"""The report: Markdown tables (stdout and ``report.md``) and a PNG chart.

Every comparison is a ratio to a baseline measured in the same run: ours/naive in
the scenario tables (above 1 is better for throughput, below 1 for latency),
variant/ours in the ablation, shipped/alternative time in the cheap wins. The
ceiling is one core, one ``predict`` per call, while each server has every core
(shared with wrk) and ours batches concurrent requests, so a server may pass it on
the concurrent scenarios.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bench import ablation, fleet, overload, protocols
from bench.ceiling import Ceiling
from bench.fmt import mib, num, times
from bench.load import SCENARIOS, Scenario, WrkResult
from bench.models import rows_label
from bench.overload import Curve
from bench.profile import Profile
from bench.protocols import FrontResult
from bench.runs import NOISY_CORES, ServerRun
from bench.servers import APP
from bench.thresholds import REFERENCE, Check
from bench.wins import Win
from bench.zoo import SPEEDUP_ROWS, ZooResult

CEILING_LABEL = "ceiling (in-process, 1 core)"
NOISE_NOTE = (
    f"*noisy*: other processes used more than {NOISY_CORES} of a core during the run; "
    "re-run before trusting that row or its ratio."
)
PSS_NOTE = (
    "PSS splits each shared page between the processes mapping it. Library pages are"
    " also shared with the other servers and the benchmark itself, so compare servers"
    " on the anonymous part (heap and model, shared only between a master and its"
    " forked workers). master+workers: the gunicorn processes alone, without nginx."
)


@dataclass(frozen=True)
class Results:
    """Everything one run measured (``results.json`` is this, raw)."""

    settings: dict[str, str]
    thresholds: list[Check]
    runs: list[ServerRun]
    ablation: list[ServerRun]
    changes: dict[str, str]
    """What each ablation variant changes, by name."""
    wins: list[Win]
    ceilings: list[Ceiling]
    zoo: list[ZooResult]
    fleet: list[ServerRun]
    protocols: list[FrontResult]
    overload: list[Curve]
    servers: dict[str, str]
    """What each server of the fleet figure runs, by name."""


def _errors(result: WrkResult) -> str:
    kinds = {
        "connect": result.connect,
        "read": result.read,
        "write": result.write,
        "timeout": result.timeout,
    }
    detail = ", ".join(f"{name} {count}" for name, count in kinds.items() if count)
    return f"{result.socket_errors} ({detail})" if detail else "0"


THROUGHPUT = ("req/s", "rows/s")
"""The metrics still meaningful (zero) when no request completed; latencies are not."""
METRICS: dict[str, Callable[[WrkResult], float]] = {
    "req/s": lambda r: r.requests_per_s,
    "rows/s": lambda r: r.rows_per_s,
    "p50 ms": lambda r: r.p50_ms,
    "p90 ms": lambda r: r.p90_ms,
    "p99 ms": lambda r: r.p99_ms,
}


def _table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def _others(cores: float) -> str:
    return f"{cores:.2f}" + (" *noisy*" if cores > NOISY_CORES else "")


def _load_table(runs: list[ServerRun], scenarios: Sequence[Scenario], reference: str) -> list[str]:
    """One model's runs scenario by scenario, then each server's ratios to ``reference``."""
    mine = {run.server: run for run in runs}
    rows = []
    for scenario in scenarios:
        label = f"{scenario.key}: {scenario.title}"
        for run in mine.values():
            result = run.results[scenario.key]
            figures = [
                num(metric(result)) if result.requests or name in THROUGHPUT else "n/a"
                for name, metric in METRICS.items()
            ]
            use = run.cpu[scenario.key]
            cores = f"{use.server:.2f} / {use.client:.2f} / {_others(use.others)}"
            rows.append([label, run.server, *figures, str(result.non_2xx), _errors(result), cores])
            label = ""
        if reference not in mine:
            continue
        base = mine[reference].results[scenario.key]
        for server, run in mine.items():
            if server == reference:
                continue
            result = run.results[scenario.key]
            ratios = [
                times(metric(result), metric(base))
                if name in THROUGHPUT or (result.requests and base.requests)
                else "n/a"
                for name, metric in METRICS.items()
            ]
            rows.append(["", f"{server}/{reference}", *ratios, "", "", ""])
    header = [
        "Scenario",
        "Server",
        *METRICS,
        "non-2xx",
        "socket errors",
        "CPU cores: server / wrk / others",
    ]
    return [*_table(header, rows), NOISE_NOTE, ""]


def _memory(run: ServerRun) -> list[float]:
    """Cold start, then PSS, anonymous PSS (all processes and master+workers), RSS."""
    return [
        run.cold_start_s,
        run.pss_kib(),
        run.pss_kib(APP),
        run.pss_anon_kib(),
        run.pss_anon_kib(APP),
        sum(p.rss_kib for p in run.processes()),
    ]


def _server_table(runs: list[ServerRun], reference: str) -> list[str]:
    """Cold start and memory per server, then each server's ratios to ``reference``."""
    rows = []
    for model in dict.fromkeys(run.model for run in runs):
        mine = {run.server: run for run in runs if run.model == model}
        for run in mine.values():
            start, pss, app, anon, app_anon, rss = _memory(run)
            processes = ", ".join(f"{p.role} {mib(p.pss_kib)}" for p in run.processes())
            rows.append(
                [
                    model,
                    run.server,
                    f"{start:.2f}",
                    f"{mib(pss)} / {mib(app)}",
                    f"{mib(anon)} / {mib(app_anon)}",
                    mib(rss),
                    processes,
                ]
            )
        if reference not in mine:
            continue
        base = _memory(mine[reference])
        for name, run in mine.items():
            if name == reference:
                continue
            ratios = [times(value, of) for value, of in zip(_memory(run), base, strict=True)]
            start, pss, app, anon, app_anon, rss = ratios
            rows.append(
                [
                    "",
                    f"{name}/{reference}",
                    start,
                    f"{pss} / {app}",
                    f"{anon} / {app_anon}",
                    rss,
                    "",
                ]
            )
    header = [
        "Model",
        "Server",
        "Cold start s",
        "PSS MiB: all / master+workers",
        "anonymous PSS MiB: all / master+workers",
        "RSS MiB",
        "PSS MiB per process",
    ]
    return [*_table(header, rows), PSS_NOTE, ""]


def _ceiling_table(ceilings: list[Ceiling]) -> list[str]:
    rows = [
        [
            c.model,
            rows_label(c.case),
            num(c.calls_per_s),
            num(c.rows_per_s),
            num(c.p50_ms),
            num(c.p99_ms),
            _others(c.others_cores),
        ]
        for c in ceilings
    ]
    header = [
        "Model",
        "Rows per call",
        "calls/s",
        "rows/s",
        "p50 ms",
        "p99 ms",
        "CPU cores: others",
    ]
    return [
        "## Ceiling: `pipeline.predict` in-process, one thread",
        "",
        *_table(header, rows),
        NOISE_NOTE,
        "",
    ]


def _thresholds_table(checks: list[Check]) -> list[str]:
    rows = [[c.target, c.model, c.figure, "PASS" if c.passed else "MISS"] for c in checks]
    return [
        "## Thresholds against the naive server, from this run's figures",
        "",
        *_table(["Target", "Model", "Figure", "Verdict"], rows),
    ]


def _ablation(runs: list[ServerRun], changes: dict[str, str]) -> list[str]:
    pss, anon = ablation.per_worker_kib(runs)
    return [
        f"## Ablation: what each design choice is worth (model `{ablation.MODEL}`)",
        "",
        f"Each variant is `{ablation.BASELINE}` started with one change; ratios are"
        f" variant/{ablation.BASELINE}, measured in the same run, scenario by scenario.",
        "",
        *(f"- {name}: {change}" for name, change in changes.items()),
        "",
        *_load_table(runs, ablation.SCENARIOS, ablation.BASELINE),
        "### Cold start and memory after the load",
        "",
        *_server_table(runs, ablation.BASELINE),
        f"One more worker ({ablation.MORE_WORKERS} minus {ablation.BASELINE}) adds"
        f" {mib(pss)} MiB of PSS to master+workers, {mib(anon)} MiB of it anonymous.",
        "",
        "`gc.freeze()` keeps a worker's first *full* garbage collection from writing to"
        " every preloaded object and so copying the shared heap. Python runs one only once"
        " the long-lived objects have grown by a quarter, which a run this short may not"
        " reach: no-gc-freeze then reads about 1.00x here.",
        "",
    ]


def _zoo_table(results: list[ZooResult]) -> list[str]:
    rows = []
    for r in results:
        speed = []
        for rows_ in SPEEDUP_ROWS:
            pipeline_ms, served_ms = r.speedup[rows_]
            speed += [f"{pipeline_ms:.3f} / {served_ms:.3f}", times(pipeline_ms, served_ms)]
        verified = f"{r.verified_rows:,} rows, {r.verify_s:.2f} s" if r.verified_rows else "-"
        rows.append([f"`{r.name}`: {r.title}", r.path, r.reason, verified, *speed])
    header = ["Model", "Served by", "Why", "Verified (load + verify)"]
    for rows_ in SPEEDUP_ROWS:
        header += [f"{rows_label(rows_)}: pipeline / served ms", f"{rows_label(rows_)}: speedup"]
    return [
        "## Model zoo: how each pipeline is served, in-process",
        "",
        *_table(header, rows),
        "`Model.score` on validated columns, as a worker calls it, with the fast path off"
        " (the pipeline) and on (the plan, or the pipeline where it falls back: about 1x by"
        " construction, the rest is noise); the best of several rounds, the two sides taking"
        " turns. A plan serves only after matching the pipeline on the packed sample and"
        " 2,000 synthetic rows (labels identical, continuous outputs within 1e-12).",
        "",
    ]


def _profile_tables(runs: list[ServerRun]) -> list[str]:
    lines = [
        "## Profiles: where our workers' time goes under each scenario",
        "",
        "py-spy samples of the gunicorn processes holding the GIL, by stage of the request"
        " path (the innermost stage a sample is in), then the functions with most samples"
        " of their own. Raw stacks (flamegraph input) in `bench/results/profiles/`. nginx"
        " and the kernel are not in these samples: see the CPU columns above.",
        "",
    ]
    for run in runs:
        if not run.profiles:
            continue
        profiles = list(run.profiles.values())
        stages = list(dict.fromkeys(stage for p in profiles for stage in p.stages))
        header = ["Stage", *(f"{p.scenario} ({p.samples:,} samples)" for p in profiles)]
        rows = [[stage, *(_share(p, p.stages.get(stage, 0)) for p in profiles)] for stage in stages]
        lines += [f"### Model `{run.model}`", "", *_table(header, rows)]
        for p in profiles:
            top = ", ".join(f"`{name}` {_share(p, n)}" for name, n in list(p.functions.items())[:6])
            lines.append(f"- {p.scenario} ({p.raw}): {top}")
        lines.append("")
    return lines


def _share(p: Profile, samples: int) -> str:
    return f"{samples / p.samples:.0%}" if p.samples else "n/a"


def _protocols(results: list[FrontResult]) -> list[str]:
    header = [
        "Protocol",
        "Route",
        "Content-Type",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "vs native",
    ]
    rows = [
        [
            r.protocol,
            f"`{r.path}`",
            r.content_type,
            num(r.result.requests_per_s),
            num(r.result.p50_ms),
            num(r.result.p99_ms),
            str(r.result.non_2xx),
            f"{r.ratio:.2f}x",
        ]
        for r in results
    ]
    return [
        f"## Protocols: {protocols.SCENARIO.key} ({protocols.SCENARIO.title}) through each"
        f" front door (model `{protocols.MODEL}`, {protocols.WORKERS} workers)",
        "",
        *_table(header, rows),
        f"Median of {protocols.ROUNDS} rounds, the fronts taking turns; each ratio is against"
        f" the native API in the same round. Target: none below {protocols.TARGET}x.",
        "",
    ]


def _overload(curves: list[Curve]) -> list[str]:
    header = [
        "Cap",
        "Offered",
        "req/s offered",
        "goodput req/s",
        "p50 ms (200s)",
        "p99 ms (200s)",
        "refused",
        "no answer",
        "generator cores",
    ]
    rows = []
    for curve in curves:
        label = f"{curve.variant} ({curve.cap})"
        for p in curve.points:
            rows.append(
                [
                    label,
                    f"{p.multiple:g}x",
                    num(p.offered),
                    num(p.goodput),
                    num(p.p50_ms),
                    num(p.p99_ms),
                    f"{p.refused:.0%}",
                    str(p.broken),
                    f"{p.client_cores:.2f}",
                ]
            )
            label = ""
    unloaded = "; ".join(
        f"{c.variant}: p50 {num(c.unloaded_p50_ms)} ms, p99 {num(c.unloaded_p99_ms)} ms"
        for c in curves
    )
    return [
        f"## Overload: offered load from {overload.MULTIPLES[0]:g}x to"
        f" {overload.MULTIPLES[-1]:g}x capacity (model `{overload.MODEL}`,"
        f" {overload.ROWS} rows per request, {overload.WORKERS} workers, open-loop)",
        "",
        *_table(header, rows),
        "Capacity: what wrk gets with as many connections as the cap admits. The cap is"
        " nginx's MAX_INFLIGHT_PREDICTIONS; refused answers are 503 `overloaded` with"
        f" Retry-After. Unloaded ({overload.UNLOADED_RATE:g} req/s): {unloaded}."
        " Chart: overload.png.",
        "",
    ]


def _fleet(runs: list[ServerRun], servers: dict[str, str]) -> list[str]:
    return [
        f"## Fleet: {fleet.REPLICAS} replicas behind HAProxy vs one replica (model"
        f" `{fleet.MODEL}`)",
        "",
        *(f"- {name}: {description}" for name, description in servers.items()),
        "",
        *_load_table(runs, fleet.SCENARIOS, fleet.BASELINE),
        f"{fleet.overhead(runs)}. Both use the same {fleet.REPLICAS} workers on this"
        " machine's cores; on separate machines the fleet adds theirs.",
        "",
    ]


def _wins_table(wins: list[Win]) -> list[str]:
    rows = [
        [
            w.concern,
            w.shipped,
            w.alternative,
            f"{w.shipped_s * 1e3:.3f}",
            f"{w.alternative_s * 1e3:.3f}",
            times(w.shipped_s, w.alternative_s),
            times(w.shipped_cpu_s, w.alternative_cpu_s),
        ]
        for w in wins
    ]
    header = [
        "Concern",
        "Shipped",
        "Alternative",
        "shipped ms",
        "alternative ms",
        "time: shipped/alternative",
        "CPU time: shipped/alternative",
    ]
    return [
        "## Cheap wins: shipped code against the alternative, in-process",
        "",
        *_table(header, rows),
        "Medians of alternating batches; below 1x the shipped code is faster. Wall and CPU"
        " time differ only where threads run in parallel: a saturated server pays the CPU.",
        "",
    ]


def markdown(results: Results) -> str:
    lines = ["# Benchmark: ours vs naive", ""]
    lines += [f"- {name}: {value}" for name, value in results.settings.items()]
    lines.append("")
    lines += _thresholds_table(results.thresholds)
    lines += _zoo_table(results.zoo)
    lines += _profile_tables([r for r in results.runs if r.profiles])
    for model in dict.fromkeys(run.model for run in results.runs):
        lines += [f"## Model `{model}`", ""]
        lines += _load_table([r for r in results.runs if r.model == model], SCENARIOS, REFERENCE)
    lines += [
        "## Cold start (launch to first correct prediction) and memory after the load",
        "",
        *_server_table(results.runs, REFERENCE),
    ]
    if results.ablation:
        lines += _ablation(results.ablation, results.changes)
    if results.protocols:
        lines += _protocols(results.protocols)
    if results.overload:
        lines += _overload(results.overload)
    if results.fleet:
        lines += _fleet(results.fleet, results.servers)
    lines += _wins_table(results.wins)
    lines += _ceiling_table(results.ceilings)
    return "\n".join(lines)


def chart(ceilings: list[Ceiling], runs: list[ServerRun], path: Path) -> None:
    """Per model: rows/s and p99 per scenario, one bar per server plus the ceiling.

    Hatched bars are the *noisy* runs of the tables.
    """
    model_names = list(dict.fromkeys(run.model for run in runs))
    figure = Figure(figsize=(12, 4 * len(model_names)), layout="constrained")
    axes = figure.subplots(len(model_names), 2, squeeze=False)
    keys = [s.key for s in SCENARIOS]
    ticks = [f"{s.key}: {s.title}".replace(", ", "\n", 1) for s in SCENARIOS]
    for row, model in enumerate(model_names):
        by_case = {c.case: c for c in ceilings if c.model == model}
        servers = {run.server: run for run in runs if run.model == model}
        hatches = {
            name: ["//" if run.noisy(key) else "" for key in keys] for name, run in servers.items()
        }
        for ax, title, attribute in (
            (axes[row][0], "rows/s (higher is better)", "rows_per_s"),
            (axes[row][1], "p99 latency, ms (lower is better)", "p99_ms"),
        ):
            bars = {
                name: [getattr(run.results[key], attribute) for key in keys]
                for name, run in servers.items()
            }
            bars[CEILING_LABEL] = [getattr(by_case[s.rows], attribute) for s in SCENARIOS]
            width = 0.8 / len(bars)
            for index, (name, values) in enumerate(bars.items()):
                ax.bar(
                    [i + index * width for i in range(len(keys))],
                    values,
                    width,
                    label=name,
                    hatch=hatches.get(name, ""),
                )
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(keys))], ticks, fontsize="small")
            ax.set_yscale("log")
            ax.set_title(f"{model}: {title}")
    legend = [
        Patch(facecolor=bars.patches[0].get_facecolor(), label=bars.get_label())
        for bars in axes[0][0].containers
    ]
    legend.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="noisy run"))
    figure.legend(handles=legend, loc="outside upper center", ncols=len(legend))
    figure.savefig(path, dpi=100)


def overload_chart(curves: list[Curve], path: Path) -> None:
    """Goodput and the 200s' p99 against offered load, one line per cap."""
    figure = Figure(figsize=(12, 4), layout="constrained")
    throughput, latency = figure.subplots(1, 2)
    for curve in curves:
        offered = [p.multiple for p in curve.points]
        label = f"{curve.variant} (MAX_INFLIGHT_PREDICTIONS={curve.cap})"
        throughput.plot(offered, [p.goodput for p in curve.points], marker="o", label=label)
        latency.plot(offered, [p.p99_ms for p in curve.points], marker="o", label=label)
    throughput.plot(
        [p.multiple for p in curves[0].points],
        [p.offered for p in curves[0].points],
        linestyle=":",
        color="grey",
        label="offered",
    )
    throughput.set_title(f"{overload.MODEL}, {overload.ROWS} rows: goodput, req/s")
    latency.set_title("p99 of the 200s, ms (lower is better)")
    for ax in (throughput, latency):
        ax.set_xlabel("offered load, x capacity")
        ax.legend(fontsize="small")
    figure.savefig(path, dpi=110)
