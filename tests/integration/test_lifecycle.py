"""Starting and stopping the stack: a broken model stops the boot, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from deploy.stack import ROOT, Stack, StackError
from service import signing
from tests.integration.conftest import SIGNING_KEY, free_port, start_stack, wait_for


def processes_mentioning(text: str) -> list[int]:
    """Live pids whose command line or environment mentions ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(proc.name))
    return found


def test_broken_model_stops_gunicorn_with_the_loader_message(tmp_path: Path) -> None:
    model = tmp_path / "pipeline.pkl"
    model.write_bytes(b"definitely not a pickle")
    signing.write_signature(model, SIGNING_KEY.encode())
    stack = start_stack(model, tmp_path / "run")
    with pytest.raises(StackError) as caught:
        stack.__enter__()
    assert stack.gunicorn is not None and stack.gunicorn.returncode not in (0, None)
    assert "is not a valid pickle" in str(caught.value)


def test_make_run_launcher_stops_everything_on_ctrl_c(stack_model: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    port = free_port()
    env = {**os.environ, "MODEL_SIGNING_KEY": SIGNING_KEY}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "deploy.stack", "--model", str(stack_model)]
        + ["--port", str(port), "--metrics-port", str(free_port()), "--run-dir", str(run_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _ready(f"http://127.0.0.1:{port}/readyz"), 60, "make run's stack")
        assert len(processes_mentioning(str(run_dir))) >= 4  # nginx master+workers, gunicorn
        launcher.send_signal(signal.SIGINT)
        output = launcher.communicate(timeout=60)[0].decode()
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, output
    assert "stopped" in output
    wait_for(lambda: processes_mentioning(str(run_dir)) == [], 10, "every process to exit")


def _ready(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_stack_context_manager_stops_processes(stack_model: Path, tmp_path: Path) -> None:
    with start_stack(stack_model, tmp_path / "run") as stack:
        pids = [stack.gunicorn.pid, stack.nginx.pid, *stack.worker_pids()]  # type: ignore[union-attr]
        assert requests.get(stack.base_url + "/healthz", timeout=5).status_code == 200
    assert isinstance(stack, Stack)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
