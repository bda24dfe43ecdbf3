"""The report: Markdown tables (stdout and ``report.md``) and a PNG chart.

Ratios are ours/naive: above 1 is better for throughput, below 1 is better for
latency. The ceiling is one core, one ``predict`` per call, while each server
has every core (shared with wrk) and ours batches concurrent requests, so a
server may pass it on the concurrent scenarios.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bench.ceiling import Ceiling
from bench.cpu import CpuUse
from bench.load import SCENARIOS, WrkResult
from bench.memory import ProcessMemory
from bench.models import rows_label

REFERENCE, CANDIDATE = "naive", "ours"
NOISY_CORES = 0.2
"""Above this many cores used by other processes during a run, its row is flagged."""
CEILING_LABEL = "ceiling (in-process, 1 core)"
NOISE_NOTE = (
    f"*noisy*: other processes used more than {NOISY_CORES} of a core during the run; "
    "re-run before trusting that row or its ratio."
)


@dataclass(frozen=True)
class ServerRun:
    """One server's figures on one model."""

    model: str
    server: str
    cold_start_s: float
    results: dict[str, WrkResult]
    """By scenario key, as is ``cpu``."""
    cpu: dict[str, CpuUse]
    memory: list[ProcessMemory]


def _num(value: float) -> str:
    """Three significant figures or so, with thousands separators."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(value: float, reference: float) -> str:
    """n/a when the reference completed nothing (all its figures are then 0)."""
    return f"{value / reference:.2f}x" if reference > 0 else "n/a"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


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


def _scenario_table(model: str, runs: list[ServerRun]) -> list[str]:
    mine = {run.server: run for run in runs if run.model == model}
    rows = []
    for scenario in SCENARIOS:
        label = f"{scenario.key}: {scenario.title}"
        for run in mine.values():
            result = run.results[scenario.key]
            figures = [
                _num(metric(result)) if result.requests or name in THROUGHPUT else "n/a"
                for name, metric in METRICS.items()
            ]
            use = run.cpu[scenario.key]
            cores = f"{use.server:.2f} / {use.client:.2f} / {use.others:.2f}"
            if use.others > NOISY_CORES:
                cores += " *noisy*"
            rows.append([label, run.server, *figures, str(result.non_2xx), _errors(result), cores])
            label = ""
        if REFERENCE in mine and CANDIDATE in mine:
            ours = mine[CANDIDATE].results[scenario.key]
            naive = mine[REFERENCE].results[scenario.key]
            ratios = [_ratio(metric(ours), metric(naive)) for metric in METRICS.values()]
            rows.append(["", f"{CANDIDATE}/{REFERENCE}", *ratios, "", "", ""])
    header = [
        "Scenario",
        "Server",
        *METRICS,
        "non-2xx",
        "socket errors",
        "CPU cores: server / wrk / others",
    ]
    return [f"## Model `{model}`", "", *_table(header, rows), NOISE_NOTE, ""]


def _ceiling_table(ceilings: list[Ceiling]) -> list[str]:
    rows = [
        [
            c.model,
            rows_label(c.case),
            _num(c.calls_per_s),
            _num(c.rows_per_s),
            _num(c.p50_ms),
            _num(c.p99_ms),
            f"{c.others_cores:.2f}" + (" *noisy*" if c.others_cores > NOISY_CORES else ""),
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


def _server_table(runs: list[ServerRun]) -> list[str]:
    rows = []
    for run in runs:
        processes = ", ".join(f"{p.role} {_mib(p.pss_kib)}" for p in run.memory)
        rows.append(
            [
                run.model,
                run.server,
                f"{run.cold_start_s:.2f}",
                _mib(sum(p.pss_kib for p in run.memory)),
                _mib(sum(p.pss_anon_kib for p in run.memory)),
                _mib(sum(p.rss_kib for p in run.memory)),
                processes,
            ]
        )
    header = [
        "Model",
        "Server",
        "Cold start s",
        "PSS MiB",
        "of which anonymous",
        "RSS MiB",
        "PSS MiB per process",
    ]
    return [
        "## Cold start (launch to first correct prediction) and memory after the load",
        "",
        *_table(header, rows),
        "PSS splits each shared page between the processes mapping it. Library pages are"
        " also shared with the other server and the benchmark itself, so compare servers"
        " on the anonymous part (heap and model, shared only between a master and its"
        " forked workers).",
        "",
    ]


def markdown(settings: dict[str, str], ceilings: list[Ceiling], runs: list[ServerRun]) -> str:
    lines = ["# Benchmark: ours vs naive", ""]
    lines += [f"- {name}: {value}" for name, value in settings.items()]
    lines.append("")
    for model in dict.fromkeys(run.model for run in runs):
        lines += _scenario_table(model, runs)
    lines += _ceiling_table(ceilings)
    lines += _server_table(runs)
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
            name: ["//" if run.cpu[key].others > NOISY_CORES else "" for key in keys]
            for name, run in servers.items()
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
