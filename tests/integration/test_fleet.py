"""Replicas sharing one store, each the real nginx + gunicorn stack: an activation through
any of them reaches them all, under load, and concurrent activations converge."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from deploy.stack import Stack
from tests.integration.conftest import signed_demo, start_stack, wait_for
from tests.integration.load import Load
from tests.integration.test_model_control import ROWS, activate, predict, upload_model

POLL_S = 1.0
FOLLOW_LIMIT_S = POLL_S + 5
"""The issue's promise: every replica serves an activated version within STORE_POLL_S + 5 s."""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fleet-store")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, store: Path) -> Iterator[list[Stack]]:
    """Two replicas of the stack, their store on one folder (a fleet's shared volume)."""
    model = signed_demo(tmp_path_factory.mktemp("fleet-binary"))
    env = {"STORE_DIR": str(store), "STORE_POLL_S": str(POLL_S)}
    with contextlib.ExitStack() as running:
        yield [
            running.enter_context(start_stack(model, tmp_path_factory.mktemp("replica"), **env))
            for _ in range(2)
        ]


def served(replica: Stack) -> str:
    return predict(replica)["model"]["sha256"]


def uploaded(replica: Stack, path: Path) -> str:
    response = upload_model(replica, path)
    assert response.status_code == 201, response.text
    return response.json()["sha256"]


def test_an_activation_through_one_replica_reaches_the_other_under_load(
    replicas: list[Stack], tmp_path: Path
) -> None:
    through, other = replicas
    sha = uploaded(through, signed_demo(tmp_path, seed=21))
    loads = [Load(f"{r.base_url}/model/predict", {"data": ROWS}, clients=2) for r in replicas]
    with contextlib.ExitStack() as running:
        for load in loads:
            running.enter_context(load)
        assert activate(through, sha).status_code == 200
        activated = time.monotonic()
        wait_for(lambda: served(other) == sha, FOLLOW_LIMIT_S, "the other replica to follow")
        followed = time.monotonic() - activated
        ready = requests.get(f"{other.base_url}/readyz", timeout=10).json()
    assert ready["sha256"] == sha
    assert followed <= FOLLOW_LIMIT_S
    for load in loads:
        assert load.failures == [], load.summary()
        assert len(load.ok) > 10


def test_concurrent_activations_converge_and_keep_both_versions(
    replicas: list[Stack], store: Path, tmp_path: Path
) -> None:
    one, two = replicas
    versions = [signed_demo(tmp_path / name, seed) for name, seed in (("a", 31), ("b", 32))]
    shas = [uploaded(one, versions[0]), uploaded(two, versions[1])]
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda r=r, s=s: answers.append(activate(r, s).status_code))
        for r, s in zip(replicas, shas, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert answers == [200, 200]
    active = (store / "ACTIVE").read_text().strip()
    assert active in shas
    wait_for(
        lambda: served(one) == served(two) == active, FOLLOW_LIMIT_S, "both replicas to converge"
    )
    for sha, version in zip(shas, versions, strict=True):
        kept = store / "store" / sha / "pipeline.pkl"
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == sha
        assert kept.read_bytes() == version.read_bytes()


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
                assert served(replica)
            answered = len(load.ok)
        wait_for(lambda: not gunicorn.running(), 30, "the graceful stop")
        stopped = time.monotonic() - told
        assert gunicorn.exit_status() == "exit code 0"
    assert reason["error"]["message"].startswith("stopping: draining")
    assert load.failures == [], load.summary()
    assert answered > 10
    assert stopped >= drain_s
