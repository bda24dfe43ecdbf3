"""docker-compose.yml run for real: images built, containers started, driven from outside.

Two app replicas (`make compose-up COMPOSE_REPLICAS=2`, i.e. `--scale app=2`) behind the lb
service, so what `--scale` promises is exercised: both in HAProxy's rotation and scraped by
Prometheus, an activation through the published port reaching both, a killed replica
neither failing requests nor losing its version.

Marker `compose`: `make test` runs these where a container engine can run (Docker, or
podman, which it installs as root) and leaves them out elsewhere, saying why (inside the
test image itself, for one). The stack comes up from a copy of this working tree, as from a
clean clone: its own folder (so its own compose project, binary/, .run/ and store), on
ports the fixture picks, and `make compose-down` removes it at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import requests
import yaml

from deploy.processes import free_port
from deploy.stack import ROOT
from service.cli import demo
from service.cli.admin_client import AdminClient
from service.model import compat, signing
from tests.integration.conftest import shell_env, wait_for

pytestmark = pytest.mark.compose

PROJECT_LABEL = "com.docker.compose.project"
REPLICAS = 2
READYZ = (
    "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/readyz').read().decode())"
)


@dataclass
class Compose:
    """A copy of the repository whose compose stack is up."""

    folder: Path
    port: int
    prometheus_port: int
    tls_port: int
    engine: str = ""
    """The engine `make compose-up` chose (docker or podman), once it is up."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def project(self) -> str:
        return self.folder.name

    def run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """A command in the copy, as a user's shell would run it (no outer make's state)."""
        env = shell_env()
        env.update(
            COMPOSE_PORT=str(self.port),
            COMPOSE_TLS_PORT=str(self.tls_port),
            COMPOSE_PROMETHEUS_PORT=str(self.prometheus_port),
            COMPOSE_REPLICAS=str(REPLICAS),
        )
        return subprocess.run(
            list(args), cwd=self.folder, env=env, capture_output=True, text=True, timeout=timeout
        )

    def ids(self, kind: str, *filters: str) -> list[str]:
        """The project's containers (`ps`), volumes or networks, by label."""
        command = ["ps", "-aq"] if kind == "ps" else [kind, "ls", "-q"]
        for label in (f"{PROJECT_LABEL}={self.project}", *filters):
            command += ["--filter", f"label={label}"]
        listing = subprocess.run([self.engine, *command], capture_output=True, text=True)
        return listing.stdout.split()

    def apps(self) -> list[str]:
        """The app service's containers, one per replica."""
        return self.ids("ps", "com.docker.compose.service=app")

    def pid(self, container: str) -> int:
        """A container's main process (gunicorn's master for an app), as the host sees it."""
        inspect = [self.engine, "inspect", "--format", "{{.State.Pid}}", container]
        return int(subprocess.run(inspect, capture_output=True, text=True).stdout or 0)

    def serving(self) -> list[str | None]:
        """What each replica itself answers on /readyz (asked inside its container, not
        through the load balancer): the version's sha256, None while not ready."""
        answers = []
        for container in self.apps():
            asked = [self.engine, "exec", container, "python", "-c", READYZ]
            answer = subprocess.run(asked, capture_output=True, text=True, timeout=30)
            ready = answer.returncode == 0 and '"ready"' in answer.stdout
            answers.append(json.loads(answer.stdout)["sha256"] if ready else None)
        return answers


def copy_worktree(source: Path, target: Path) -> None:
    """What a clean clone of this working tree holds: tracked and new files, not ignored
    ones (no binary/ model, no .run/), with their times; the venv is shared."""
    listing = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in filter(None, listing.stdout.split("\0")):
        if (source / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)
    (target / ".venv").symlink_to(source / ".venv")


@pytest.fixture(scope="module")
def containers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compose]:
    folder = tmp_path_factory.mktemp("compose") / f"composetest{os.getpid()}"
    copy_worktree(ROOT, folder)
    compose = Compose(folder, free_port(), free_port(), free_port())
    up = compose.run("make", "--no-print-directory", "compose-up", timeout=1200)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        compose.engine = (folder / ".run" / "compose" / "engine").read_text().strip()
        yield compose
    finally:
        down = compose.run("make", "--no-print-directory", "compose-down", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    for kind in ("ps", "volume", "network"):
        assert compose.ids(kind) == [], f"{kind} left behind"


def test_predictions_through_nginx_equal_in_process(containers: Compose) -> None:
    compat.install()
    pipeline = cloudpickle.loads((containers.folder / "binary" / "pipeline.pkl").read_bytes())
    frame, _ = demo.dataset(rows=25, seed=11)
    columns = {name: frame[name].tolist() for name in frame.columns}
    answer = requests.post(
        containers.url + "/model/predict", json={"data": columns, "output": "both"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pipeline.predict(frame).tolist()
    np.testing.assert_allclose(
        answer.json()["probabilities"], pipeline.predict_proba(frame), rtol=1e-12, atol=0
    )


def test_tls_answers_with_the_certificate_mounted_as_a_secret(containers: Compose) -> None:
    """make compose-up copied make run TLS=1's self-signed certificate into the secret."""
    cert = containers.folder / ".run" / "tls" / "cert.pem"
    secret = containers.folder / ".run" / "compose" / "secrets" / "tls-cert"
    assert secret.read_bytes() == cert.read_bytes()
    answer = requests.get(
        f"https://127.0.0.1:{containers.tls_port}/readyz", verify=cert, timeout=30
    )
    assert answer.json()["status"] == "ready"
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


def query(containers: Compose, promql: str) -> list[str]:
    """The values of an instant query's samples."""
    answer = requests.get(
        f"{containers.prometheus}/api/v1/query", params={"query": promql}, timeout=5
    )
    return [sample["value"][1] for sample in answer.json()["data"]["result"]]


def test_prometheus_scrapes_every_replica_and_runs_the_alert_rules(containers: Compose) -> None:
    wait_for(
        lambda: query(containers, 'up{job="model-server"}') == ["1"] * REPLICAS,
        90,
        f"Prometheus to find {REPLICAS} app replicas by DNS and scrape each (every 15 s)",
    )
    assert query(containers, "model_ready") == ["1"] * REPLICAS
    wait_for(
        lambda: (
            query(containers, 'haproxy_backend_active_servers{proxy="predictions"}')
            == [str(REPLICAS)]
        ),
        90,
        "HAProxy's exporter to show every replica in the predictions backend",
    )
    shipped = {
        rule["alert"]
        for group in yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    rules = requests.get(f"{containers.prometheus}/api/v1/rules", timeout=5).json()
    groups = rules["data"]["groups"]
    assert {rule["name"] for group in groups for rule in group["rules"]} == shipped


def test_an_activation_through_the_published_port_reaches_every_replica(
    containers: Compose,
) -> None:
    """The admin call lands on one replica; the other follows the shared store volume."""
    run_dir = containers.folder / ".run"
    artifact = run_dir / "uploaded.pkl"
    subprocess.run([sys.executable, str(ROOT / "examples/train.py"), str(artifact)], check=True)
    signing.write_signature(artifact, signing.load_key(run_dir / "signing-key"))
    client = AdminClient(containers.url, (run_dir / "admin-token").read_text().strip())
    uploaded = client.upload(artifact, signing.signature_path(artifact).read_text().strip())
    client.activate(uploaded["sha256"])
    wait_for(
        lambda: containers.serving() == [uploaded["sha256"]] * REPLICAS,
        60,
        "every replica to serve the activated version (STORE_POLL_S is 5 s)",
    )
    rows = {"tenure_months": [3.0], "monthly_fee": [100.0], "plan": ["pro"]}
    for _ in range(2 * REPLICAS):
        answer = requests.post(containers.url + "/model/predict", json={"data": rows}, timeout=30)
        assert answer.json()["model"]["sha256"] == uploaded["sha256"]


def test_a_killed_replica_fails_no_request_and_comes_back_serving_the_same_model(
    containers: Compose,
) -> None:
    serving = containers.serving()
    assert len(serving) == REPLICAS and len(set(serving)) == 1 and serving[0], serving
    victim = containers.apps()[0]
    master = containers.pid(victim)
    body = requests.get(containers.url + "/usage", timeout=30).json()["predict"]["example_request"]
    failures: list[str] = []
    answered = 0

    def predict() -> None:
        nonlocal answered
        try:
            answer = requests.post(containers.url + "/model/predict", json=body, timeout=30)
        except requests.RequestException as exc:
            failures.append(repr(exc))
            return
        answered += 1
        if answer.status_code != 200:
            failures.append(f"{answer.status_code} {answer.text[:200]}")

    os.kill(master, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and containers.pid(victim) in (0, master):
        predict()
    while time.monotonic() < deadline and containers.serving() != serving:
        predict()
    assert containers.pid(victim) not in (0, master), "the killed replica did not restart"
    assert containers.serving() == serving
    assert answered > 0 and failures == [], f"{len(failures)} of {answered}: {failures[:3]}"


def test_make_test_inside_the_test_image(containers: Compose) -> None:
    """The compose `test` service: lint and every test that can run in a container."""
    tested = containers.run(sys.executable, "-m", "deploy.compose", "test-image", timeout=2400)
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output[-6000:]
    assert " passed" in output.splitlines()[-1] or " passed" in output[-2000:]
