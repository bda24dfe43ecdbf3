"""Where a worker's time goes under load: py-spy samples the live stack during a scenario.

py-spy (a sampling profiler that reads the process from outside, so the server runs
unmodified) records every gunicorn process while wrk drives one scenario. The raw
stacks are kept (``bench/results/profiles/<model>-<scenario>.txt``, flamegraph-ready:
``flamegraph.pl`` or speedscope read them), and summarised two ways: the share of
the samples holding the GIL in each stage of the request path (:data:`STAGES`, matched on
the innermost frame of ours that a sample is in), and the functions with the most
samples of their own. Those are the figures a MISS is explained with.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import load
from bench.servers import APP, Handle

SAMPLE_RATE = 250
"""Samples per second per process: enough for a 5 s run to resolve a 1% stage."""
TOP_FUNCTIONS = 12

STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("JSON parse", ("payload.py:parse_json",)),
    ("validation", ("payload.py:validate", "payload.py:_columns", "payload.py:_check_shape")),
    ("plan (the arithmetic)", ("service/model/plan/",)),
    ("pipeline (scikit-learn, pandas)", ("sklearn/", "sklearn_pandas/", "pandas/")),
    ("batching and deadline", ("batching.py", "deadline.py")),
    ("response rendering", ("predictor.py:render", "app.py:to_json", "orjson")),
    ("metrics", ("prometheus_client/", "prometheus_flask_exporter/")),
    ("logging", ("logging/", "service/http/logs.py")),
    ("Flask and werkzeug", ("flask/", "werkzeug/")),
    ("gunicorn (sockets, HTTP parsing)", ("gunicorn/",)),
)
"""Stages of the request path, each a list of frame fragments (``file:function`` as
py-spy prints them); a sample counts for the innermost stage its stack enters, so time
inside the plan called from batching is the plan's. Other samples are "other"."""


@dataclass(frozen=True)
class Profile:
    """One scenario's profile of the workers: samples per stage and per function."""

    model: str
    scenario: str
    samples: int
    """Samples of a thread holding the GIL (py-spy --gil): the Python process's CPU."""
    stages: dict[str, int]
    functions: dict[str, int]
    raw: str
    """The raw stacks' file, relative to the results folder."""


def _frame_name(frame: str) -> str:
    """``function (path/to/file.py:line)`` as ``path/to/file.py:function``."""
    function, _, where = frame.partition(" (")
    return f"{where.rsplit(':', 1)[0]}:{function}"


def _stage(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, fragments in STAGES:
            if any(fragment in frame for fragment in fragments):
                return stage
    return "other"


def summarise(raw: str, model: str, scenario: str, relative: str) -> Profile:
    """Count py-spy's collapsed stacks (``frame;frame;... count``) by stage and function."""
    stages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [  # py-spy starts a stack with its process, and its parents' (--subprocesses)
            _frame_name(frame) for frame in stack.split(";") if not frame.startswith("process ")
        ]
        weight = int(count)
        samples += weight
        stages[_stage(frames)] += weight
        if frames:
            functions[frames[-1]] += weight
    return Profile(
        model,
        scenario,
        samples,
        dict(stages.most_common()),
        dict(functions.most_common(TOP_FUNCTIONS)),
        relative,
    )


def record(
    running: Handle,
    model: str,
    scenario: load.Scenario,
    bodies: dict[int | None, Path],
    seconds: int,
    out_dir: Path,
) -> Profile:
    """Drive ``scenario`` with wrk while py-spy samples the gunicorn master and its
    workers for ``seconds``; the summary, and the raw stacks written to ``out_dir``."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    master = running.children[APP].process.pid
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_file = out_dir / f"{model}-{scenario.key}.txt"
    driver = threading.Thread(
        target=load.run_wrk, args=(running.base_url, scenario, bodies, seconds + 2), daemon=True
    )
    driver.start()
    command = [py_spy, "record", "--pid", str(master), "--subprocesses", "--gil", "--nonblocking"]
    command += ["--rate", str(SAMPLE_RATE), "--duration", str(seconds), "--format", "raw"]
    command += ["--output", str(raw_file)]
    subprocess.run(command, capture_output=True, check=True, timeout=seconds + 60)
    driver.join(timeout=seconds + 60)
    relative = str(raw_file.relative_to(out_dir.parent))
    return summarise(raw_file.read_text(), model, scenario.key, relative)
