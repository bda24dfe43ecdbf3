"""The ablation: our stack as shipped against variants that each undo one design choice.

Every variant is the shipped stack started with one change (an environment variable,
gunicorn options in ``GUNICORN_CMD_ARGS``, or for the freeze a config file of its own
beside this one), measured in the same run and interleaved with it, so its ratio to
"ours" is what that one choice is worth on this machine today. The production config
keeps no switch that only the benchmark uses. The linear model only: its cost is the fixed overhead
per pipeline call that batching and threads amortise. Scenario B (32 concurrent
one-row clients) is where they should pay; scenario A (one client) shows what they
cost when there is nothing to batch. The memory read after the load shows what
``gc.freeze`` saves and what one more worker costs.
"""

from __future__ import annotations

import ast
from pathlib import Path

from bench import load
from bench.runs import ServerRun
from bench.servers import APP, GUNICORN_CONF, OurStack

MODEL = "linear"
SCENARIOS = tuple(s for key in "BA" for s in load.SCENARIOS if s.key == key)
BASELINE = "ours"
MORE_WORKERS = "workers+1"
NO_GC_FREEZE_CONF = Path(__file__).with_name("gunicorn-no-gc-freeze.conf.py")


def conf_value(setting: str) -> str:
    """What ``deploy/gunicorn.conf.py`` sets ``setting`` to: its literal, or the default
    of the ``os.environ.get(NAME, default)`` it reads.

    Read from the source rather than repeated here, so the report names the shipped
    value even after someone changes it.
    """
    for node in ast.parse(GUNICORN_CONF.read_text()).body:
        match node:
            case ast.Assign(targets=[ast.Name(id=name)], value=value) if name == setting:
                constants = [c.value for c in ast.walk(value) if isinstance(c, ast.Constant)]
                return str(constants[-1])
    raise LookupError(f"{GUNICORN_CONF} does not set {setting}")


def shipped(workers: int) -> str:
    """How the baseline runs, for the report."""
    worker_class, threads = conf_value("worker_class"), conf_value("threads")
    return f"{workers} {worker_class} workers of {threads} threads (deploy/gunicorn.conf.py)"


def variants(run_root: Path, workers: int) -> list[OurStack]:
    """The baseline first, then one variant per design choice."""
    return [
        OurStack(BASELINE, run_root, workers),
        OurStack("no-batching", run_root, workers, {"BATCHING": "false"}),
        # --threads 1 too: gunicorn turns sync workers with threads into gthread ones.
        OurStack(
            "sync", run_root, workers, {"GUNICORN_CMD_ARGS": "--worker-class sync --threads 1"}
        ),
        OurStack("threads-4", run_root, workers, {"GUNICORN_THREADS": "4"}),
        OurStack("no-gc-freeze", run_root, workers, gunicorn_conf=NO_GC_FREEZE_CONF),
        OurStack(MORE_WORKERS, run_root, workers, {"WEB_CONCURRENCY": str(workers + 1)}),
    ]


def per_worker_kib(runs: list[ServerRun]) -> tuple[int, int]:
    """PSS and anonymous PSS one more worker adds to master + workers, after the same load."""
    by_name = {run.server: run for run in runs}
    more, base = by_name[MORE_WORKERS], by_name[BASELINE]
    return (
        more.pss_kib(APP) - base.pss_kib(APP),
        more.pss_anon_kib(APP) - base.pss_anon_kib(APP),
    )
