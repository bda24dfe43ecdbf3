"""docker-compose.yml run for real: images built, containers started, driven from outside.

Marker `compose`: `make test` runs these where a container engine can run (Docker, or
podman, which it installs as root) and leaves them out elsewhere, saying why (inside the
test image itself, for one). The stack comes up from a copy of this working tree, as from a
clean clone: its own folder (so its own compose project, binary/, .run/ and store), on
ports the fixture picks, and `make compose-down` removes it at the end.
"""

from __future__ import annotations

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


@dataclass
class Compose:
    """A copy of the repository whose compose stack is up."""

    folder: Path
    port: int
    prometheus_port: int
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
        env.update(COMPOSE_PORT=str(self.port), COMPOSE_PROMETHEUS_PORT=str(self.prometheus_port))
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

    def app_pid(self) -> int:
        """The app container's gunicorn master, as the host sees it."""
        [app] = self.ids("ps", "com.docker.compose.service=app")
        inspect = [self.engine, "inspect", "--format", "{{.State.Pid}}", app]
        return int(subprocess.run(inspect, capture_output=True, text=True).stdout)

    def readyz(self) -> dict[str, str] | None:
        try:
            answer = requests.get(self.url + "/readyz", timeout=5)
        except requests.RequestException:
            return None
        return answer.json() if answer.status_code == 200 else None


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
    compose = Compose(folder, free_port(), free_port())
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


def test_prometheus_scrapes_the_app_and_runs_the_alert_rules(containers: Compose) -> None:
    def scraped() -> bool:
        query = {"query": 'up{job="model-server"}'}
        result = requests.get(f"{containers.prometheus}/api/v1/query", params=query, timeout=5)
        samples = result.json()["data"]["result"]
        return [s["value"][1] for s in samples] == ["1"]

    wait_for(scraped, 90, "Prometheus to scrape nginx:9200 (every 15 s)")
    query = {"query": "model_ready"}
    ready = requests.get(f"{containers.prometheus}/api/v1/query", params=query, timeout=5).json()
    assert {s["value"][1] for s in ready["data"]["result"]} == {"1"}
    shipped = {
        rule["alert"]
        for group in yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    rules = requests.get(f"{containers.prometheus}/api/v1/rules", timeout=5).json()
    groups = rules["data"]["groups"]
    assert {rule["name"] for group in groups for rule in group["rules"]} == shipped


def test_an_upload_and_activation_through_the_published_port(containers: Compose) -> None:
    """The admin API works with the compose secrets, and the version lands in the store."""
    run_dir = containers.folder / ".run"
    artifact = run_dir / "uploaded.pkl"
    subprocess.run([sys.executable, str(ROOT / "examples/train.py"), str(artifact)], check=True)
    signing.write_signature(artifact, signing.load_key(run_dir / "signing-key"))
    client = AdminClient(containers.url, (run_dir / "admin-token").read_text().strip())
    uploaded = client.upload(artifact, signing.signature_path(artifact).read_text().strip())
    client.activate(uploaded["sha256"])
    assert (containers.readyz() or {}).get("sha256") == uploaded["sha256"]
    rows = {"tenure_months": [3.0], "monthly_fee": [100.0], "plan": ["pro"]}
    answer = requests.post(containers.url + "/model/predict", json={"data": rows}, timeout=30)
    assert answer.json()["model"]["sha256"] == uploaded["sha256"]


def test_a_crashed_app_container_restarts_serving_the_same_model(containers: Compose) -> None:
    serving = (containers.readyz() or {}).get("sha256")
    assert serving
    master = containers.app_pid()
    os.kill(master, signal.SIGKILL)
    wait_for(lambda: containers.app_pid() not in (0, master), 120, "the app to restart")
    deadline = time.monotonic() + 120
    while containers.readyz() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (containers.readyz() or {}).get("sha256") == serving


def test_make_test_inside_the_test_image(containers: Compose) -> None:
    """The compose `test` service: lint and every test that can run in a container."""
    tested = containers.run(sys.executable, "-m", "deploy.compose", "test-image", timeout=2400)
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output[-6000:]
    assert " passed" in output.splitlines()[-1] or " passed" in output[-2000:]
