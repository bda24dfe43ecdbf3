"""Schemathesis against the real stack, through nginx: every operation, every check.

The OpenAPI document the stack serves (``service/http/openapi.py``) is the contract; schemathesis
generates valid and invalid requests from it and checks every answer: no server error,
documented status, content type, headers and body schema, invalid data rejected, valid data
accepted, undeclared methods answered 405 with ``Allow``, admin routes refusing a missing or
wrong token. ``make test`` runs a bounded pass (fixed seed, few examples, well under a
minute); ``make fuzz`` runs ``python -m tests.integration.test_fuzz``, which starts its own
stack and explores longer with a fresh seed.

schemathesis runs as a CLI subprocess: the command is the one to rerun by hand, and the
library's own warnings stay out of pytest's ``filterwarnings = error``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from deploy.stack import Stack
from tests.integration.conftest import ADMIN_TOKEN, signed_demo, start_stack

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]


@dataclass(frozen=True)
class Budget:
    """How hard one pass tries: examples per operation, time, seed."""

    max_examples: int
    max_time: int | None
    """schemathesis keeps fuzzing until this is spent (None: stop after the examples)."""
    timeout: int
    """The pass is killed, and fails, past this many seconds."""
    seed: int | None
    reload_probability: float
    """How often a version path parameter is the active version instead of a generated one:
    activating it makes every worker reload, which takes seconds each time."""
    phases: str = "examples,coverage,fuzzing,stateful"


QUICK = Budget(
    max_examples=15,
    max_time=None,
    timeout=90,
    seed=20261126,
    reload_probability=0.05,
    phases="examples,coverage,fuzzing",  # stateful sequences mostly wait for reloads
)
LONG = Budget(max_examples=500, max_time=600, timeout=900, seed=None, reload_probability=0.2)

CONFIG = """\
# nginx answers TRACE itself, before any location, with a 405 that cannot carry the route's
# Allow header. So TRACE is left out of the undeclared-method probes; all others are probed.
[phases.coverage]
unexpected-methods = ["get", "put", "post", "delete", "options", "patch", "query"]

# 413 is a rejection too: invalid bodies with too many rows (or bytes) get it.
[checks.negative_data_rejection]
expected-statuses = [
  "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx",
]

[dictionaries]
versions = {{ values = ["{active}"] }}
names = {{ values = ["pipeline"] }}

[parameters]
"path.sha256" = {{ dictionary = "versions", probability = {probability} }}
"path.version" = {{ dictionary = "versions", probability = {probability} }}
"path.name" = {{ dictionary = "names", probability = {probability} }}

# Two limits JSON Schema cannot state: columns of unequal length are ragged data (422), and
# MAX_ROWS rows can weigh more than MAX_BODY_BYTES (413). A text/csv body is any string to
# a schema: one that is no CSV table (no header, ragged lines) is a 400.
[[operations]]
include-operation-id = "api.predict.post"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "413", "422"]

[[operations]]
include-operation-id = "mlflow.invocations.post"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "413", "422"]

# Values a tensor's datatype allows may still not be the column's (a number column's FP64
# tensor may not hold 1e400), and tensors of unequal shapes are ragged data (422).
[[operations]]
include-operation-id = "v2.infer.post"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "413", "422"]

[[operations]]
include-operation-id = "v2.infer_version.post"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "413", "422"]

# A fuzzer cannot sign an artifact: schema-valid uploads are refused (422), empty ones 400.
[[operations]]
include-operation-id = "admin.upload.post"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "422"]
"""


def write_config(folder: Path, active: str, budget: Budget) -> Path:
    path = folder / "schemathesis.toml"
    path.write_text(CONFIG.format(active=active, probability=budget.reload_probability))
    return path


def command(schema_url: str, config: Path, budget: Budget, *scope: str) -> list[str]:
    """The schemathesis CLI invocation; ``scope`` picks the base URL and operations."""
    seed = [] if budget.seed is None else ["--seed", str(budget.seed)]
    time = [] if budget.max_time is None else ["--max-time", str(budget.max_time)]
    return (
        SCHEMATHESIS
        + ["--config-file", str(config), "run", schema_url, "--checks", "all"]
        + ["--header", f"Authorization: Bearer {ADMIN_TOKEN}"]
        + ["--max-examples", str(budget.max_examples), "--phases", budget.phases]
        + ["--generation-database", "none", "--no-color", "--output-truncate", "true"]
        + time
        + seed
        + list(scope)
    )


def runs(stack: Stack, config: Path, budget: Budget) -> dict[str, list[str]]:
    """Two passes, both through nginx: the public listener for every operation but
    ``/metrics``, which nginx keeps off it (404 for every method), and the internal metrics
    listener for ``/metrics`` alone."""
    schema_url = stack.base_url + "/openapi.json"
    metrics_base = stack.metrics_url.removesuffix("/metrics")
    # One GET: its examples are done in seconds, and it has no links to follow.
    one_get = replace(budget, max_time=None, phases="examples,coverage,fuzzing")
    return {
        "public": command(schema_url, config, budget, "--exclude-path", "/metrics"),
        "metrics": command(
            schema_url, config, one_get, "--url", metrics_base, "--include-path", "/metrics"
        ),
    }


def active_version(stack: Stack) -> str:
    return requests.get(stack.base_url + "/readyz", timeout=5).json()["sha256"]


def fuzz(
    stack: Stack, folder: Path, budget: Budget, *, capture: bool = True
) -> dict[str, subprocess.CompletedProcess]:
    """Run both passes; their output is captured for an assertion, or streamed (make fuzz)."""
    config = write_config(folder, active_version(stack), budget)
    results = {}
    for name, argv in runs(stack, config, budget).items():
        if not capture:
            print(f"==== {name} pass: {shlex.join(argv)}", flush=True)
        results[name] = subprocess.run(
            argv,
            capture_output=capture,
            text=True,
            timeout=budget.timeout,
            cwd=folder,
            check=False,
        )
    return results


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: fuzzing may activate versions, which the shared one must not see."""
    model = signed_demo(tmp_path_factory.mktemp("fuzz-binary"))
    with start_stack(model, tmp_path_factory.mktemp("fuzz-run")) as running:
        yield running


def test_schemathesis_finds_nothing(fuzz_stack: Stack, tmp_path: Path) -> None:
    """A bounded pass: zero failures of any check on every operation, through nginx."""
    for name, completed in fuzz(fuzz_stack, tmp_path, QUICK).items():
        assert completed.returncode == 0, f"{name} pass failed:\n{report(completed)}"


def report(completed: subprocess.CompletedProcess, width: int = 400, size: int = 20_000) -> str:
    """schemathesis' failures, reproduction commands and summary, with long lines (generated
    bodies can be megabytes) cut so the summary stays readable."""
    lines = (completed.stdout + completed.stderr).splitlines()
    text = "\n".join(line if len(line) <= width else line[:width] + " [...]" for line in lines)
    return text if len(text) <= size else "...\n" + text[-size:]


# ---- make fuzz --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Start a stack of its own, fuzz it long, print schemathesis' reports; 0 if clean."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=LONG.max_examples)
    parser.add_argument("--max-time", type=int, default=LONG.max_time, help="seconds per pass")
    parser.add_argument("--seed", type=int, default=LONG.seed)
    args = parser.parse_args(argv)
    budget = Budget(
        max_examples=args.max_examples,
        max_time=args.max_time,
        timeout=args.max_time + 300,
        seed=args.seed,
        reload_probability=LONG.reload_probability,
    )
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        folder = Path(tmp)
        (folder / "binary").mkdir()
        with start_stack(signed_demo(folder / "binary"), folder / "run") as stack:
            print(f"fuzzing {stack.base_url} (metrics {stack.metrics_url})", flush=True)
            results = fuzz(stack, folder, budget, capture=False)
    for name, completed in results.items():
        print(f"==== {name} pass: exit {completed.returncode}")
    return max(completed.returncode for completed in results.values())


if __name__ == "__main__":
    sys.exit(main())
