"""Pass/miss thresholds for our server against the naive one, judged on this run's figures.

Throughput, latency, memory and cold start are judged against the naive server
measured in the same run, so a slow or busy machine moves both sides. A naive run
that completed no request counts as infinitely slow: anything that answered beats
it. Memory is judged on anonymous PSS (see ``bench.memory``) and both are shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench import ablation
from bench.fmt import mib, num, times
from bench.load import WrkResult
from bench.runs import ServerRun
from bench.servers import APP

CANDIDATE, REFERENCE = "ours", "naive"
PER_WORKER_LIMIT_KIB = 30 * 1024
MEMORY_RATIO = 0.6
COLD_START_SLACK_S = 1.0
D_P99_LIMIT_MS = 50.0


@dataclass(frozen=True)
class Check:
    target: str
    model: str
    figure: str
    passed: bool


@dataclass(frozen=True)
class Ratio:
    """ours/naive on one scenario's metric, at least (throughput) or at most (latency) ``bound``."""

    scenario: str
    attribute: str
    """A :class:`WrkResult` field or property."""
    label: str
    bound: float

    @property
    def at_least(self) -> bool:
        return not self.attribute.endswith("_ms")

    def target(self) -> str:
        word = ">=" if self.at_least else "<="
        return f"{self.scenario}: {self.label} {word} {self.bound:g}x naive's"

    def value(self, result: WrkResult) -> float:
        """The figure; a latency is infinite when nothing completed (all outlived the timeout)."""
        if not self.at_least and not result.requests:
            return math.inf
        return getattr(result, self.attribute)

    def passes(self, ours: float, naive: float) -> bool:
        if self.at_least:
            return ours > 0 and ours >= self.bound * naive
        return math.isfinite(ours) and ours <= self.bound * naive


RATIOS = (
    Ratio("A", "p50_ms", "p50", 0.5),
    Ratio("B", "requests_per_s", "req/s", 6.0),
    Ratio("B", "p99_ms", "p99", 0.5),
    Ratio("C", "rows_per_s", "rows/s", 3.0),
)
"""Issue 11's targets: a lone client's latency, concurrent one-row throughput and tail,
bulk throughput; D's absolute tail is :data:`D_P99_LIMIT_MS`."""


def _value(figure: float, unit: str) -> str:
    return f"{num(figure)} {unit}" if math.isfinite(figure) else "nothing completed"


def _noisy(ours: ServerRun, naive: ServerRun, scenario: str) -> str:
    return " *noisy*" if ours.noisy(scenario) or naive.noisy(scenario) else ""


def _ratio_check(model: str, ours: ServerRun, naive: ServerRun, ratio: Ratio) -> Check:
    mine = ratio.value(ours.results[ratio.scenario])
    theirs = ratio.value(naive.results[ratio.scenario])
    unit = ratio.label if ratio.at_least else "ms"
    both = math.isfinite(mine) and math.isfinite(theirs)
    figure = (
        f"{times(mine, theirs) if both else 'n/a'}: "
        f"ours {_value(mine, unit)}, naive {_value(theirs, unit)}"
        + _noisy(ours, naive, ratio.scenario)
    )
    return Check(ratio.target(), model, figure, ratio.passes(mine, theirs))


def _mixed_check(model: str, ours: ServerRun) -> Check:
    result = ours.results["D"]
    errors = result.non_2xx + result.socket_errors
    p99 = result.p99_ms if result.requests else math.inf
    return Check(
        f"D: zero errors and p99 < {D_P99_LIMIT_MS:g} ms",
        model,
        f"{errors} errors, p99 {_value(p99, 'ms')}" + (" *noisy*" if ours.noisy("D") else ""),
        errors == 0 and p99 < D_P99_LIMIT_MS,
    )


def _memory_check(model: str, ours: ServerRun, naive: ServerRun, workers: int) -> Check:
    anon, naive_anon = ours.pss_anon_kib(APP), naive.pss_anon_kib(APP)
    pss, naive_pss = ours.pss_kib(APP), naive.pss_kib(APP)
    return Check(
        f"memory: PSS of master + {workers} workers <= {MEMORY_RATIO:g}x naive's, "
        "judged on anonymous PSS",
        model,
        f"anonymous {times(anon, naive_anon)} ({mib(anon)} vs {mib(naive_anon)} MiB); "
        f"all pages {times(pss, naive_pss)} ({mib(pss)} vs {mib(naive_pss)} MiB)",
        anon <= MEMORY_RATIO * naive_anon,
    )


def _cold_start_check(model: str, ours: ServerRun, naive: ServerRun) -> Check:
    late = ours.cold_start_s - naive.cold_start_s
    return Check(
        f"cold start within {COLD_START_SLACK_S:g} s of naive's",
        model,
        f"ours {ours.cold_start_s:.2f} s, naive {naive.cold_start_s:.2f} s ({late:+.2f} s)",
        late <= COLD_START_SLACK_S,
    )


def _per_worker_check(ablated: list[ServerRun]) -> Check:
    pss, anon = ablation.per_worker_kib(ablated)
    return Check(
        f"each additional worker <= {mib(PER_WORKER_LIMIT_KIB)} MiB PSS",
        ablation.MODEL,
        f"+{mib(pss)} MiB PSS (+{mib(anon)} MiB anonymous): ablation, "
        f"{ablation.MORE_WORKERS} minus {ablation.BASELINE}",
        pss <= PER_WORKER_LIMIT_KIB,
    )


def check(runs: list[ServerRun], ablated: list[ServerRun], workers: int) -> list[Check]:
    """Every target the run's figures can judge: per model with both ours and naive run,
    and the per-worker cost when the ablation ran."""
    checks = []
    for model in dict.fromkeys(run.model for run in runs):
        mine = {run.server: run for run in runs if run.model == model}
        if CANDIDATE not in mine or REFERENCE not in mine:
            continue
        ours, naive = mine[CANDIDATE], mine[REFERENCE]
        checks += [_ratio_check(model, ours, naive, ratio) for ratio in RATIOS]
        checks.append(_mixed_check(model, ours))
        checks.append(_memory_check(model, ours, naive, workers))
        checks.append(_cold_start_check(model, ours, naive))
    if ablated:
        checks.append(_per_worker_check(ablated))
    return checks
