"""Faults on the real stack, each bounded in time: nothing a client sent is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests

from deploy.stack import Stack
from service.model import signing
from tests.estimators import SleepOnMarker
from tests.integration.conftest import (
    ADMIN_TOKEN,
    MARKER,
    SIGNING_KEY,
    one_column_model,
    signed_demo,
    start_stack,
    wait_for,
)
from tests.integration.load import Load

DEMO_BODY = {
    "data": {
        "age": [33],
        "income": [39000.0],
        "debt_ratio": [0.3],
        "region": ["west"],
        "employment": ["salaried"],
    }
}


def sleepy_model(folder: Path, seconds: float) -> Path:
    """A model that answers at once, except for x == MARKER, which takes ``seconds``."""
    return one_column_model(folder, SleepOnMarker(MARKER, seconds))


def predict_url(stack: Stack) -> str:
    return f"{stack.base_url}/model/predict"


@pytest.fixture
def demo_stack(tmp_path: Path) -> Iterator[Stack]:
    with start_stack(signed_demo(tmp_path / "binary"), tmp_path / "run") as stack:
        yield stack


def _answers(load: Load, count: int, deadline: float, what: str) -> None:
    """Wait until ``count`` more answers have come back: the load flows."""
    target = len(load.ok) + count
    wait_for(lambda: len(load.ok) >= target, max(deadline - time.monotonic(), 1), what)


WORKERS = 2
MIN_KILLS = 10
MAX_KILLS = 40
KILL_BUDGET_S = 35
"""Kills go on to MAX_KILLS while this budget lasts (at least MIN_KILLS). Without the fix a
kill cut an answer short about one time in 15 on 2 cores: 40 kills catch it almost surely,
and a slow machine still makes its 10 within the test's 80 s."""


def _replaced(stack: Stack, victim: int) -> bool:
    """The master has reaped ``victim`` and forked its replacement."""
    pids = stack.worker_pids()
    return victim not in pids and len(pids) == WORKERS


def test_sigkill_of_workers_under_keepalive_load_truncates_no_answer(tmp_path: Path) -> None:
    """Issue 17: 16 keep-alive clients predict while workers are SIGKILLed one at a time.
    A request the dead worker had not answered is retried by nginx on the other worker;
    one it had answered arrived whole: no client sees a 200 head with no body."""
    model = signed_demo(tmp_path / "binary")
    # 16 clients is load, not overload: nginx admits them all (its default cap is 8 here).
    env = {"WEB_CONCURRENCY": str(WORKERS), "MAX_INFLIGHT_PREDICTIONS": "32"}
    with start_stack(model, tmp_path / "run", **env) as stack:
        deadline = time.monotonic() + 80
        kills = 0
        with Load(predict_url(stack), DEMO_BODY, clients=16) as load:
            _answers(load, 200, deadline, "the load to start")
            budget_end = time.monotonic() + KILL_BUDGET_S
            while kills < MAX_KILLS and (kills < MIN_KILLS or time.monotonic() < budget_end):
                victim = stack.worker_pids()[0]  # the oldest: a worker that has connections
                os.kill(victim, signal.SIGKILL)
                kills += 1
                wait_for(
                    partial(_replaced, stack, victim),
                    max(deadline - time.monotonic(), 1),
                    f"kill {kills}: the master to replace worker {victim}",
                )
                _answers(load, 50, deadline, f"kill {kills}: answers after the replacement")
        assert load.failures == [], f"over {kills} kills: {load.summary()}"
        assert len(stack.worker_pids()) == WORKERS


def test_hup_under_load_loses_no_request(demo_stack: Stack) -> None:
    before = set(demo_stack.worker_pids())
    with Load(predict_url(demo_stack), DEMO_BODY, clients=6) as load:
        load.wait_for_requests(100)
        os.kill(demo_stack.gunicorn.pid, signal.SIGHUP)
        wait_for(lambda: not set(demo_stack.worker_pids()) & before, 30, "workers to be renewed")
        load.wait_for_requests(100)
    assert load.failures == [], load.summary()
    assert len(demo_stack.worker_pids()) == 2


def test_sigterm_finishes_in_flight_then_nginx_answers_503(tmp_path: Path) -> None:
    model = sleepy_model(tmp_path / "binary", seconds=1.5)
    with start_stack(model, tmp_path / "run") as stack:
        results: list[Any] = []

        def slow() -> None:
            body = {"data": {"x": [MARKER]}}
            results.append(requests.post(predict_url(stack), json=body, timeout=30))

        in_flight = [threading.Thread(target=slow) for _ in range(2)]
        for thread in in_flight:
            thread.start()
        wait_for(lambda: _busy(stack), 10, "requests to reach the workers")
        stack.gunicorn.process.send_signal(signal.SIGTERM)
        for thread in in_flight:
            thread.join(timeout=30)
        assert [r.status_code for r in results] == [200, 200]
        stack.gunicorn.process.wait(timeout=30)
        for path in ("/model/predict", "/readyz"):
            response = requests.post(stack.base_url + path, json={"data": {"x": [1.0]}})
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "2"
            assert response.json()["error"]["code"] == "service_unavailable"


def _busy(stack: Stack) -> bool:
    """Both workers are inside a request (their access log has not yet got the lines)."""
    log = (stack.run_dir / "nginx-access.log").read_text()
    return log.count('"uri":"/model/predict"') == 0 and _connections(stack) >= 2


def _connections(stack: Stack) -> int:
    """Open connections from nginx to gunicorn's socket."""
    out = subprocess.run(["ss", "-xH", "state", "connected"], capture_output=True, text=True)
    return out.stdout.count(str(stack.socket))


def test_overdue_prediction_gets_504_and_its_worker_is_replaced(tmp_path: Path) -> None:
    """The overdue request gets a JSON 504 and its worker is replaced. Requests that were
    batched into that same pipeline call share its 504 (they were inside the call); every
    other request of the other clients succeeds, retried by nginx on a live worker."""
    model = sleepy_model(tmp_path / "binary", seconds=30)
    with start_stack(model, tmp_path / "run", PREDICT_TIMEOUT_S="2") as stack:
        before = set(stack.worker_pids())
        with Load(predict_url(stack), {"data": {"x": [1.0, -2.0]}}, clients=4) as load:
            load.wait_for_requests(50)
            stuck = requests.post(predict_url(stack), json={"data": {"x": [MARKER]}}, timeout=30)
            load.wait_for_requests(50)
        assert stuck.status_code == 504
        assert stuck.json()["error"]["code"] == "prediction_timeout"
        overdue = 'status: 504 {"error":{"code":"prediction_timeout"'
        co_batched = [f for f in load.failures if f.startswith(overdue)]
        assert load.failures == co_batched, "only requests of the overdue call may fail"
        assert len(co_batched) <= 4, "at most one call's worth: one request per client"
        wait_for(lambda: len(set(stack.worker_pids()) - before) >= 1, 40, "a replacement")
        assert len(stack.worker_pids()) == 2


def test_corrupted_model_file_keeps_serving_and_reload_says_why(demo_stack: Stack) -> None:
    body = requests.post(predict_url(demo_stack), json=DEMO_BODY).json()
    sha = body["model"]["sha256"]
    stored = demo_stack.config.model_path.parent / "store" / sha / "pipeline.pkl"
    stored.write_bytes(b"garbage")
    demo_stack.config.model_path.unlink()
    assert requests.post(predict_url(demo_stack), json=DEMO_BODY).json() == body
    assert requests.get(f"{demo_stack.base_url}/readyz").status_code == 200
    os.kill(demo_stack.gunicorn.pid, signal.SIGHUP)
    log = demo_stack.run_dir / "gunicorn.log"
    wait_for(lambda: "reload of" in log.read_text(), 30, "the reload to fail")
    assert "signature does not match" in log.read_text()
    with Load(predict_url(demo_stack), DEMO_BODY, clients=2) as load:
        load.wait_for_requests(30)
    assert load.failures == [], load.summary()
    assert {r["model"]["sha256"] for r in load.ok} == {sha}
    assert requests.get(f"{demo_stack.base_url}/readyz").status_code == 200


def in_container() -> bool:
    """podman writes /run/.containerenv, Docker /.dockerenv."""
    return Path("/run/.containerenv").exists() or Path("/.dockerenv").exists()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: the model store on a disk that fills up (or turns read-only).

    Mounting needs CAP_SYS_ADMIN: root on a machine has it, a container (the compose test
    image, run unprivileged) does not; only there is the test skipped, saying why."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0 and (os.geteuid() != 0 or in_container()):
        pytest.skip(f"cannot mount a tmpfs without CAP_SYS_ADMIN: {mounted.stderr.strip()}")
    assert mounted.returncode == 0, mounted.stderr
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.parametrize("fault", ["disk full", "read-only"])
def test_upload_to_a_full_or_read_only_store_changes_nothing(
    small_disk: Path, tmp_path: Path, fault: str
) -> None:
    model = signed_demo(small_disk / "binary")
    with start_stack(model, tmp_path / "run") as stack:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        listing = requests.get(f"{stack.base_url}/admin/models", headers=auth).json()
        before = requests.post(predict_url(stack), json=DEMO_BODY).json()
        if fault == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
            data = model.read_bytes()
            expected = "the store is read-only"
        else:
            data = os.urandom(2 * 1024 * 1024)
            expected = "the disk is full"
        response = requests.post(
            f"{stack.base_url}/admin/models",
            data=data,
            headers={
                **auth,
                "Content-Type": "application/octet-stream",
                "X-Model-Signature": signing.sign(data, SIGNING_KEY.encode()),
            },
        )
        assert response.status_code == 507, response.text
        error = response.json()["error"]
        assert (error["code"], expected in error["message"]) == ("store_unavailable", True)
        assert requests.get(f"{stack.base_url}/admin/models", headers=auth).json() == listing
        assert requests.post(predict_url(stack), json=DEMO_BODY).json() == before
        assert not list((small_disk / "binary" / "store" / ".incoming").glob("upload-*"))
