"""Starting and stopping the stack: a broken model stops the boot, Ctrl-C leaves nothing
behind, a replica told to stop drains first."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests

from deploy.stack import Stack, StackError
from service.model import signing
from tests.integration.conftest import SIGNING_KEY, signed_demo, start_stack, wait_for
from tests.integration.load import Load
from tests.integration.test_model_control import ROWS, predict


def test_broken_model_stops_gunicorn_with_the_loader_message(tmp_path: Path) -> None:
    model = tmp_path / "pipeline.pkl"
    model.write_bytes(b"definitely not a pickle")
    signing.write_signature(model, SIGNING_KEY.encode())
    stack = start_stack(model, tmp_path / "run")
    with pytest.raises(StackError) as caught:
        stack.__enter__()
    assert stack.gunicorn is not None and stack.gunicorn.process.returncode not in (0, None)
    assert "is not a valid pickle" in str(caught.value)


def test_stack_context_manager_stops_processes(stack_model: Path, tmp_path: Path) -> None:
    with start_stack(stack_model, tmp_path / "run") as stack:
        pids = [stack.gunicorn.pid, stack.nginx.pid, *stack.worker_pids()]
        assert requests.get(stack.base_url + "/healthz", timeout=5).status_code == 200
    assert isinstance(stack, Stack)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_a_replica_told_to_stop_drains_first(tmp_path: Path) -> None:
    """TERM to the master: /readyz fails at once (the load balancer takes the replica out)
    while predictions are still answered; the graceful stop comes SHUTDOWN_DRAIN_S later."""
    drain_s = 4.0
    model = signed_demo(tmp_path / "binary")
    with start_stack(model, tmp_path / "run", SHUTDOWN_DRAIN_S=str(drain_s)) as replica:
        gunicorn = replica.gunicorn
        assert gunicorn is not None
        with Load(f"{replica.base_url}/model/predict", {"data": ROWS}, clients=2) as load:
            told = time.monotonic()
            gunicorn.process.send_signal(signal.SIGTERM)
            wait_for(
                lambda: requests.get(f"{replica.base_url}/readyz", timeout=5).status_code == 503,
                2,
                "/readyz to fail",
            )
            reason = requests.get(f"{replica.base_url}/readyz", timeout=5).json()
            while time.monotonic() - told < drain_s - 1:
                assert predict(replica)
            answered = len(load.ok)
        wait_for(lambda: not gunicorn.running(), 30, "the graceful stop")
        stopped = time.monotonic() - told
        assert gunicorn.exit_status() == "exit code 0"
    assert reason["error"]["message"].startswith("stopping: draining")
    assert load.failures == [], load.summary()
    assert answered > 10
    assert stopped >= drain_s
