"""Starting and stopping the stack: a broken model stops the boot, Ctrl-C leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from deploy.stack import Stack, StackError
from service.model import signing
from tests.integration.conftest import SIGNING_KEY, start_stack


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
