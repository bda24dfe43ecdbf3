"""The fleet for real: three replicas of the stack sharing one store behind HAProxy
(``deploy/fleet.py``, ``deploy/haproxy/haproxy.cfg``), under steady load, through
activations, a replica killed outright and a rolling restart: nothing fails at the
load balancer."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from deploy.fleet import Fleet, FleetConfig
from deploy.processes import free_port
from tests.integration.conftest import ADMIN_TOKEN, SIGNING_KEY, signed_demo, wait_for
from tests.integration.load import Load
from tests.integration.test_model_control import AUTH, ROWS, sha_of, signed

POLL_S = 1.0
REPLICAS = 3


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    model = signed_demo(tmp_path_factory.mktemp("fleet-model"))
    config = FleetConfig(
        model_path=model,
        run_dir=tmp_path_factory.mktemp("fleet-run"),
        replicas=REPLICAS,
        port=free_port(),
        metrics_port=free_port(),
        env={
            "MODEL_SIGNING_KEY": SIGNING_KEY,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "STORE_POLL_S": str(POLL_S),
        },
    )
    with Fleet(config) as running:
        yield running


def predictions(fleet: Fleet) -> Load:
    return Load(f"{fleet.base_url}/model/predict", {"data": ROWS}, clients=3)


def serves(url: str) -> str:
    response = requests.post(f"{url}/model/predict", json={"data": ROWS}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["model"]["sha256"]


def every_replica_serves(fleet: Fleet, sha: str) -> bool:
    return all(serves(replica.base_url) == sha for replica in fleet.replicas)


def upload_and_activate(fleet: Fleet, model: Path) -> str:
    data = model.read_bytes()
    headers = {**AUTH, "X-Model-Signature": signed(data)}
    headers["Content-Type"] = "application/octet-stream"
    uploaded = requests.post(f"{fleet.base_url}/admin/models", data=data, headers=headers)
    assert uploaded.status_code == 201, uploaded.text
    sha = uploaded.json()["sha256"]
    activated = requests.post(f"{fleet.base_url}/admin/models/{sha}/activate", headers=AUTH)
    assert activated.status_code == 200, activated.text
    return sha


def test_an_activation_reaches_every_replica_with_nothing_lost(
    fleet: Fleet, tmp_path: Path
) -> None:
    new = signed_demo(tmp_path, seed=41)
    with predictions(fleet) as load:
        sha = upload_and_activate(fleet, new)
        activated = time.monotonic()
        wait_for(lambda: every_replica_serves(fleet, sha), POLL_S + 5, "every replica")
        took = time.monotonic() - activated
    assert sha == sha_of(new)
    assert took <= POLL_S + 5
    assert load.failures == [], load.summary()
    assert len(load.ok) > 20


def test_a_replica_killed_outright_loses_nothing_and_rejoins(fleet: Fleet) -> None:
    victim = fleet.replicas[0]
    assert victim.gunicorn is not None and victim.nginx is not None
    with predictions(fleet) as load:
        killed = time.monotonic()
        for child in (victim.gunicorn, victim.nginx):
            os.kill(child.pid, signal.SIGKILL)
        wait_for(lambda: fleet.servers_up() == (REPLICAS - 1) * 2, 5, "HAProxy to mark it down")
        marked_down = time.monotonic() - killed
        wait_for(lambda: len(load.ok) > 30, 30, "load through the others")
        rejoined = fleet.restart(0)
        wait_for(fleet.all_up, 15, "HAProxy to see it up again")
    assert marked_down <= 3
    assert load.failures == [], load.summary()
    active = (fleet.config.store_dir / "ACTIVE").read_text().strip()
    assert serves(rejoined.base_url) == active


def test_a_rolling_restart_loses_nothing(fleet: Fleet) -> None:
    with predictions(fleet) as load:
        for index in range(REPLICAS):
            fleet.restart(index)
            wait_for(fleet.all_up, 15, f"replica {index} back in the pool")
    assert load.failures == [], load.summary()
    assert len(load.ok) > 50


def test_admin_calls_are_never_replayed(fleet: Fleet) -> None:
    """An upload or an activation must happen once: the admin backend retries nothing."""
    rendered = (fleet.config.run_dir / "fleet" / "haproxy.cfg").read_text()
    admin = rendered.split("backend admin", 1)[1].split("\nfrontend", 1)[0]
    assert "retry-on none" in admin and "retries 0" in admin
    predictions = rendered.split("backend predictions", 1)[1].split("\nbackend", 1)[0]
    assert "retry-on conn-failure empty-response 503" in predictions


def test_haproxy_metrics_are_on_the_internal_listener_only(fleet: Fleet) -> None:
    public = requests.get(f"{fleet.base_url}/metrics", timeout=10)
    assert public.status_code == 404
    exported = requests.get(fleet.metrics_url, timeout=10).text
    assert 'haproxy_backend_retry_warnings_total{proxy="predictions"}' in exported
    assert 'haproxy_server_status{proxy="admin",server="replica-1",state="UP"} 1' in exported
