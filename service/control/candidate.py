"""Checking an uploaded artifact in a separate, limited process before it may be activated.

Unpickling runs the artifact's code. Even signed, a candidate may crash the
interpreter, hang, or allocate without bound; run in the server, any of these
would take a worker (or the master, at reload) down. So the contract, schema,
compiled plan and warm-up prediction are checked by ``python -m service check``
in a child process with a time limit and an address-space limit; only its JSON
verdict comes back.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from service.errors import CandidateRejected

SECRETS = ("MODEL_SIGNING_KEY", "MODEL_SIGNING_KEY_FILE", "ADMIN_TOKEN", "ADMIN_TOKEN_FILE")


def _limit_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _reason(completed: subprocess.CompletedProcess[str]) -> str:
    if completed.returncode < 0:
        name = signal.Signals(-completed.returncode).name
        return f"the check process died from {name} (a crash, or the memory limit)"
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    if not lines:
        return f"the check process exited with status {completed.returncode}"
    last = lines[-1].removeprefix("error: ")
    if "MemoryError" in completed.stderr:
        return f"the artifact exceeded the check's memory limit ({last})"
    return last


def check(path: Path, *, timeout: float, memory_mb: int, fast_path: bool = False) -> dict[str, Any]:
    """The candidate's metadata, or :class:`CandidateRejected` saying why it cannot serve.

    With ``fast_path`` the check compiles and verifies the plan too, as the server will at
    activation; the metadata's ``serving_path`` says whether the plan would serve.
    """
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    flag = "--fast-path" if fast_path else "--no-fast-path"
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "service", "check", flag, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            preexec_fn=lambda: _limit_memory(memory_mb),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CandidateRejected(
            f"the check did not finish within {timeout:g} s (loading or predicting hangs)",
            details={"timeout_s": timeout},
        ) from exc
    if completed.returncode != 0:
        raise CandidateRejected(_reason(completed), details={"exit_status": completed.returncode})
    return json.loads(completed.stdout)
