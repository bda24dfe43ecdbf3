"""The isolated check of an uploaded artifact: a child process without the secrets, under a
time and memory limit, whose failures come back as one line saying why.

Each check starts a Python that imports scikit-learn (about two seconds), so the
child is started only where the process boundary is what is tested; the verdicts
are tested on ``_reason`` directly.
"""

from __future__ import annotations

import hashlib
import json
import operator
import subprocess
from pathlib import Path

import cloudpickle
import pytest
from sklearn.pipeline import Pipeline

from service.control import candidate
from service.errors import CandidateRejected
from tests import artifacts

VISIBLE = "CANDIDATE_TEST_VISIBLE"
PROBE = """
import json, os, pathlib, resource
pathlib.Path({marker!r}).write_text(json.dumps({{
    "env": {{name: os.environ.get(name) for name in {names!r}}},
    "address_space": resource.getrlimit(resource.RLIMIT_AS)[0],
}}))
"""


class Probe:
    """Unpickling this records what the check process sees (and yields None)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        names = [*candidate.SECRETS, VISIBLE]
        return (exec, (PROBE.format(marker=str(self.marker), names=names), {}))


class ProbedPipeline:
    """Unpickles to ``pipeline``, once ``Probe`` has run: ``(probe, pipeline)[1]``."""

    def __init__(self, marker: Path, pipeline: Pipeline) -> None:
        self.marker = marker
        self.pipeline = pipeline

    def __reduce__(self):
        return (operator.getitem, ((Probe(self.marker), self.pipeline), 1))


def completed(returncode: int, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["check"], returncode, stdout="", stderr=stderr)


def test_a_servable_artifact_is_checked_without_secrets_under_the_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_pipeline: Pipeline
) -> None:
    for name in candidate.SECRETS:
        monkeypatch.setenv(name, f"secret-{name}")
    monkeypatch.setenv(VISIBLE, "yes")
    marker = tmp_path / "seen.json"
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(cloudpickle.dumps(ProbedPipeline(marker, demo_pipeline)))

    metadata = candidate.check(path, timeout=60, memory_mb=3000)

    assert metadata["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert metadata["model_type"] == "LogisticRegression"
    assert [f["name"] for f in metadata["features"]][:2] == ["age", "income"]
    seen = json.loads(marker.read_text())
    assert seen["env"] == {**dict.fromkeys(candidate.SECRETS), VISIBLE: "yes"}
    assert seen["address_space"] == 3000 * 1024 * 1024


def test_a_check_that_overruns_its_time_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(artifacts.hanging_pickle())
    with pytest.raises(CandidateRejected, match=r"did not finish within 0\.5 s") as caught:
        candidate.check(path, timeout=0.5, memory_mb=4096)
    assert caught.value.details == {"timeout_s": 0.5}


@pytest.mark.parametrize(
    ("process", "reason"),
    [
        (
            completed(-9),
            "the check process died from SIGKILL (a crash, or the memory limit)",
        ),
        (
            completed(-11, "Fatal Python error: Segmentation fault\n"),
            "the check process died from SIGSEGV (a crash, or the memory limit)",
        ),
        (completed(3), "the check process exited with status 3"),
        (completed(1, "\n  \n"), "the check process exited with status 1"),
        (
            completed(1, "error: the artifact is a builtins.dict, not a scikit-learn Pipeline\n"),
            "the artifact is a builtins.dict, not a scikit-learn Pipeline",
        ),
        (
            completed(1, "Traceback (most recent call last):\n  ...\nTypeError: boom\n\n"),
            "TypeError: boom",
        ),
        (
            completed(1, "error: unpickling x.pkl failed: MemoryError: \n"),
            "the artifact exceeded the check's memory limit "
            "(unpickling x.pkl failed: MemoryError: )",
        ),
    ],
    ids=["killed", "crashed", "status", "blank-stderr", "error-line", "traceback", "memory"],
)
def test_the_reason_is_one_line_an_operator_can_act_on(
    process: subprocess.CompletedProcess[str], reason: str
) -> None:
    assert candidate._reason(process) == reason
