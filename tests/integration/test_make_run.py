"""`make run` as a newcomer uses it: their own pickle, mistakes, a second start, signals.

Every test runs the real `make run` (make, deploy/run.py, nginx, gunicorn) in a run
folder of its own, on ports it picks, with MODEL= set so the repository's binary/
is never written (one test proves it byte for byte).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from deploy import model_choice
from deploy.processes import Child, free_port, group_pids
from deploy.stack import ROOT
from service.model import compat
from tests.integration.conftest import shell_env, wait_for

EXAMPLE = ROOT / "examples" / "train.py"
MAKE_LINE = re.compile(r"^make(\[\d+\])?: ")
ROWS = {"tenure_months": [3.0, 40.0], "monthly_fee": [100.0, 20.5], "plan": ["pro", "basic"]}
LAUNCHES = itertools.count()
LOGS = {"nginx": "nginx-error.log", "gunicorn": "gunicorn.log"}


def processes_mentioning(text: str) -> list[int]:
    """Live pids whose command line or environment mentions ``text`` (zombies excluded)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if (proc / "stat").read_text().rpartition(")")[2].split()[0] == "Z":
                continue
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(proc.name))
    return found


@dataclass
class Launch:
    """One `make run` in its own process group (as a terminal or systemd would start it)."""

    make: Child
    run_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return self.make.log.read_text(errors="replace")

    def launcher_pid(self) -> int:
        """deploy/run.py: make's child (the recipe execs it in place of the shell)."""
        [launcher] = children_of(self.make.pid)
        return launcher

    def servers(self) -> dict[str, int]:
        """The launcher's children, nginx's and gunicorn's masters, by program."""
        masters = children_of(self.launcher_pid())
        return {
            "nginx" if os.readlink(f"/proc/{pid}/exe").endswith("/nginx") else "gunicorn": pid
            for pid in masters
        }

    def ready(self) -> bool:
        try:
            return requests.get(self.url + "/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self) -> None:
        """Until the API answers and the console says so (its last start-up line)."""
        started = "Ctrl-C stops everything"
        wait_for(lambda: started in self.output or not self.make.running(), 120, "make run")
        assert self.ready(), self.output

    def finish(self, timeout: float = 60) -> int:
        return self.make.process.wait(timeout=timeout)

    def stop(self) -> None:
        self.make.stop()
        wait_for(lambda: not processes_mentioning(str(self.run_dir)), 30, "no process left")


def children_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def make_run(run_dir: Path, model: Path | None = None, port: int | None = None) -> Launch:
    run_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = ["make", "--no-print-directory", "run", f"RUN_DIR={run_dir}", f"PORT={port}"]
    args += [f"METRICS_PORT={free_port()}"] + ([f"MODEL={model}"] if model else [])
    make = Child.start(
        "make run",
        args,
        log=run_dir.parent / f"{run_dir.name}.{next(LAUNCHES)}.console",
        cwd=ROOT,
        env=shell_env("MODEL", "MODEL_PATH"),
        grace=60,
    )
    return Launch(make, run_dir, port)


def our_lines(output: str) -> list[str]:
    """The console lines that are ours: make adds its own (`make: *** ... Error 1`, or
    `make[2]: ...` under `make test`) and the credentials' recipes echo themselves on a
    first run."""
    return [
        line
        for line in output.splitlines()
        if line and not MAKE_LINE.match(line) and not line.startswith(("mkdir -p", "umask 077"))
    ]


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def foreign_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's training script, run as a user would: an unsigned, unpacked pickle."""
    folder = tmp_path_factory.mktemp("user-models")
    target = folder / "my_pipeline.pkl"
    subprocess.run([sys.executable, str(EXAMPLE), str(target)], cwd=folder, check=True)
    return target


@pytest.fixture(scope="module")
def serving(foreign_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launch]:
    binary_before = tree_digest(ROOT / "binary")
    user_folder_before = tree_digest(foreign_model.parent)
    launch = make_run(tmp_path_factory.mktemp("serving") / "run", foreign_model)
    try:
        launch.wait_ready()
        yield launch
    finally:
        launch.stop()
    assert tree_digest(ROOT / "binary") == binary_before
    assert tree_digest(foreign_model.parent) == user_folder_before


def test_an_unsigned_foreign_pipeline_serves_as_in_process(
    serving: Launch, foreign_model: Path
) -> None:
    compat.install()
    pipeline = cloudpickle.loads(foreign_model.read_bytes())
    frame = pd.DataFrame(ROWS)
    answer = requests.post(
        serving.url + "/model/predict", json={"data": ROWS, "output": "both"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["predictions"] == pipeline.predict(frame).tolist()
    np.testing.assert_array_equal(body["probabilities"], pipeline.predict_proba(frame))
    sha = hashlib.sha256(foreign_model.read_bytes()).hexdigest()
    assert body["model"]["sha256"] == sha
    says = [line for line in serving.output.splitlines() if line.startswith("serving")]
    assert says == [
        f"serving {foreign_model} (sha256 {sha[:12]}, unsigned: signed a copy in "
        f"{serving.run_dir}/models/{sha[:12]} with {serving.run_dir}/signing-key; "
        "schema inferred from the pipeline at load)"
    ]


def test_the_usage_curl_example_works_as_printed(serving: Launch) -> None:
    usage = requests.get(serving.url + "/usage", timeout=10).json()
    command = usage["predict"]["curl"]
    assert f"{serving.url}/model/predict" in command
    ran = subprocess.run(
        shlex.split(command) + ["-w", "\n%{http_code}"], capture_output=True, text=True, timeout=30
    )
    body, _, status = ran.stdout.rpartition("\n")
    assert status == "200", ran.stdout + ran.stderr
    assert len(json.loads(body)["predictions"]) == 1


def test_a_second_make_run_fails_fast_and_the_first_keeps_serving(
    serving: Launch, foreign_model: Path, tmp_path: Path
) -> None:
    assert requests.get(serving.url + "/readyz", timeout=5).status_code == 200
    same_folder = make_run(serving.run_dir, foreign_model)
    assert same_folder.finish() != 0
    assert our_lines(same_folder.output) == [
        f"error: another stack (pid {serving.launcher_pid()}) is running from "
        f"{serving.run_dir}: stop it first"
    ]
    same_port = make_run(tmp_path / "run", foreign_model, port=serving.port)
    assert same_port.finish() != 0
    [line] = our_lines(same_port.output)
    assert line.startswith(f"error: port 127.0.0.1:{serving.port} is in use by pid ")
    assert "(nginx)" in line
    same_port.stop()
    assert requests.get(serving.url + "/readyz", timeout=5).status_code == 200
    predicted = requests.post(serving.url + "/model/predict", json={"data": ROWS}, timeout=10)
    assert predicted.status_code == 200 and len(predicted.json()["predictions"]) == 2


def _not_a_pipeline(folder: Path) -> Path:
    path = folder / "weights.pkl"
    path.write_bytes(cloudpickle.dumps({"weights": [1, 2]}))
    return path


def _no_mapper_first(folder: Path) -> Path:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    path = folder / "unmapped.pkl"
    path.write_bytes(cloudpickle.dumps(pipeline.fit(frame, [0, 0, 1, 1])))
    return path


def _not_a_pickle(folder: Path) -> Path:
    path = folder / "notes.pkl"
    path.write_bytes(b"definitely not a pickle")
    return path


def _wrongly_signed(folder: Path) -> Path:
    path = _not_a_pickle(folder)
    path.with_name(path.name + ".sig").write_text("0" * 64 + "\n")
    return path


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda folder: folder / "nope.pkl", "error: model not found: {model}"),
        (
            _not_a_pickle,
            "error: gunicorn failed: cannot serve: {copy} is not a valid pickle",
        ),
        (_not_a_pipeline, "error: gunicorn failed: cannot serve: the artifact is a builtins.dict"),
        (
            _no_mapper_first,
            "error: gunicorn failed: cannot serve: step 0 'scale' (StandardScaler) "
            "is not a sklearn_pandas.DataFrameMapper",
        ),
        (
            _wrongly_signed,
            "error: {model}: the signature does not match its bytes under the configured key "
            "(altered, or signed with another key); if you trust it, sign it: "
            "python -m service sign {model} --key-file {run}/signing-key",
        ),
    ],
    ids=["missing", "not-a-pickle", "not-a-pipeline", "no-mapper-first", "wrongly-signed"],
)
def test_a_model_that_cannot_serve_is_one_line_and_no_traceback(
    tmp_path: Path, build, expected: str
) -> None:
    model = build(tmp_path)
    launch = make_run(tmp_path / "run", model)
    try:
        assert launch.finish(timeout=120) != 0
    finally:
        launch.stop()
    assert "Traceback" not in launch.output
    [line] = our_lines(launch.output)
    sha = hashlib.sha256(model.read_bytes()).hexdigest()[:12] if model.exists() else ""
    copy = launch.run_dir / "models" / sha / "pipeline.pkl"
    assert line.startswith(expected.format(model=model, run=launch.run_dir, copy=copy)), line
    if "gunicorn failed" in line:
        assert line.endswith(f"(log: {launch.run_dir}/gunicorn.log)")


@pytest.mark.parametrize(
    "how", ["TERM-group-twice", "INT-group-twice", "KILL-launcher", "KILL-make"]
)
def test_make_run_stops_everything_however_it_is_stopped(
    foreign_model: Path, tmp_path: Path, how: str
) -> None:
    launch = make_run(tmp_path / "run", foreign_model)
    try:
        launch.wait_ready()
        assert len(processes_mentioning(str(launch.run_dir))) >= 6  # make, launcher, 2+2+
        group = launch.make.pid
        if how.endswith("group-twice"):
            sig = signal.SIGTERM if how.startswith("TERM") else signal.SIGINT
            os.killpg(group, sig)
            os.killpg(group, sig)
        elif how == "KILL-launcher":
            os.kill(launch.launcher_pid(), signal.SIGKILL)
        else:
            os.kill(group, signal.SIGKILL)
        wait_for(lambda: not processes_mentioning(str(launch.run_dir)), 30, "every process to exit")
        if how.endswith("group-twice"):
            assert launch.output.splitlines()[-2:] == ["stopping", "stopped"]
    finally:
        launch.stop()
    assert not launch.ready()


@pytest.mark.parametrize("dying", ["nginx", "gunicorn"])
def test_make_run_stops_everything_when_a_server_dies(
    foreign_model: Path, tmp_path: Path, dying: str
) -> None:
    """Either master killed: the launcher says which, shows its log's end, stops the other
    (workers included) and fails."""
    launch = make_run(tmp_path / "run", foreign_model)
    try:
        launch.wait_ready()
        masters = launch.servers()
        assert sorted(masters) == ["gunicorn", "nginx"]
        assert all(len(group_pids(pid)) >= 2 for pid in masters.values())  # master + workers
        os.kill(masters[dying], signal.SIGKILL)
        assert launch.finish() != 0
        for pid in masters.values():
            assert group_pids(pid) == [], f"process group {pid} outlived make run"
    finally:
        launch.stop()
    log = launch.run_dir.resolve() / LOGS[dying]
    lines = our_lines(launch.output)
    [error] = [index for index, line in enumerate(lines) if line.startswith("error:")]
    assert lines[error] == (
        f"error: {dying} exited (killed by SIGKILL) while serving: stopping everything; "
        f"the end of {log}:"
    )
    assert lines[error + 1 :] and all(line.startswith("  ") for line in lines[error + 1 :])
    assert "Traceback" not in launch.output
    assert not launch.ready()


def test_the_demo_is_trained_only_into_an_empty_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = tmp_path / "binary"
    monkeypatch.setattr(model_choice, "DEFAULT_MODEL", binary / "pipeline.pkl")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "signing-key").write_text("key\n")
    choice = model_choice.choose(None, run_dir=run_dir, key_file=run_dir / "signing-key")
    assert sorted(p.name for p in binary.iterdir()) == [
        "pipeline.pkl",
        "pipeline.pkl.sig",
        "pipeline.schema.json",
    ]
    assert choice.model_path == binary / "pipeline.pkl"
    assert ", signed; schema from " in choice.says
    written = (binary / "pipeline.pkl").stat().st_mtime_ns
    again = model_choice.choose(None, run_dir=run_dir, key_file=run_dir / "signing-key")
    assert again == choice
    assert (binary / "pipeline.pkl").stat().st_mtime_ns == written  # nothing retrained
