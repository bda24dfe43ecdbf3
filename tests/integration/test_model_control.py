"""Model control on the real stack: upload, activate, roll back, across every worker."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import cloudpickle
import pandas as pd
import pytest
import requests

from deploy.stack import Stack
from service.model import signing
from tests import artifacts
from tests.admin_routes import ADMIN_ROUTES
from tests.integration.conftest import (
    ADMIN_TOKEN,
    SIGNING_KEY,
    signed_demo,
    start_stack,
)
from tests.integration.load import Load

ROWS = {
    "age": [25, 38, 52, 67],
    "income": [21000.0, 48000.0, 75000.0, 30000.0],
    "debt_ratio": [0.7, 0.45, 0.5, 0.2],
    "region": ["south", "north", "east", "west"],
    "employment": ["self-employed", "salaried", "salaried", "unemployed"],
}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another demo model, trained on other data, so its probabilities differ."""
    return signed_demo(tmp_path_factory.mktemp("second"), seed=11)


@pytest.fixture(scope="module")
def control_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    model = signed_demo(tmp_path_factory.mktemp("control-binary"))
    with start_stack(model, tmp_path_factory.mktemp("control-run")) as stack:
        yield stack


class Served(Protocol):
    """What the admin helpers talk to: a replica's stack, or the fleet's load balancer."""

    @property
    def base_url(self) -> str: ...


def upload(stack: Served, data: bytes, signature: str | None, schema: Path | None = None) -> Any:
    """POST an artifact as raw bytes, or as a form with its schema file."""
    headers = {**AUTH, "X-Model-Signature": signature} if signature else dict(AUTH)
    url = f"{stack.base_url}/admin/models"
    if schema is None:
        headers["Content-Type"] = "application/octet-stream"
        return requests.post(url, data=data, headers=headers, timeout=60)
    files = {"artifact": ("pipeline.pkl", data), "schema": ("schema.json", schema.read_bytes())}
    return requests.post(url, files=files, headers=headers, timeout=60)


def upload_model(stack: Served, path: Path) -> Any:
    data = path.read_bytes()
    return upload(stack, data, signed(data), path.with_suffix(".schema.json"))


def activate(stack: Served, sha: str) -> Any:
    return requests.post(f"{stack.base_url}/admin/models/{sha}/activate", headers=AUTH, timeout=120)


def predict(stack: Stack) -> dict[str, Any]:
    response = requests.post(
        f"{stack.base_url}/model/predict", json={"data": ROWS, "output": "both"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def expected(path: Path) -> list[list[float]]:
    return cloudpickle.loads(path.read_bytes()).predict_proba(pd.DataFrame(ROWS)).tolist()


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def signed(data: bytes, key: str = SIGNING_KEY) -> str:
    return signing.sign(data, key.encode())


def test_upload_activate_and_rollback(control_stack: Stack, second_model: Path) -> None:
    first = predict(control_stack)
    first_sha = first["model"]["sha256"]
    response = upload_model(control_stack, second_model)
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["sha256"] == sha_of(second_model)
    assert record["model_type"] == "LogisticRegression"
    assert record["features_diff"] == {"added": [], "removed": [], "changed": []}
    assert predict(control_stack)["model"]["sha256"] == first_sha, "upload must not activate"

    activated = activate(control_stack, record["sha256"])
    assert activated.status_code == 200, activated.text
    assert activated.json()["previous"] == first_sha
    for _ in range(10):
        body = predict(control_stack)
        assert body["model"]["sha256"] == record["sha256"]
        assert body["probabilities"] == expected(second_model)

    listing = requests.get(f"{control_stack.base_url}/admin/models", headers=AUTH).json()
    assert listing["active"] == record["sha256"]
    assert listing["previous"] == first_sha
    assert {v["sha256"] for v in listing["versions"]} == {first_sha, record["sha256"]}

    back = activate(control_stack, listing["previous"])
    assert back.status_code == 200, back.text
    assert predict(control_stack)["model"]["sha256"] == first_sha


def test_swaps_under_load_lose_nothing(control_stack: Stack, second_model: Path) -> None:
    assert upload_model(control_stack, second_model).status_code == 201
    one = predict(control_stack)["model"]["sha256"]
    two = sha_of(second_model)
    with Load(f"{control_stack.base_url}/model/predict", {"data": ROWS}, clients=4) as load:
        for target in [two, one, two, one, two]:
            response = activate(control_stack, target)
            assert response.status_code == 200, response.text
            after = [predict(control_stack)["model"]["sha256"] for _ in range(8)]
            assert set(after) == {target}, "after activate returns only the new version answers"
    assert load.failures == [], load.summary()
    assert len(load.ok) > 50
    assert {r["model"]["sha256"] for r in load.ok} == {one, two}
    activate(control_stack, one)


@pytest.mark.parametrize("case", ["unsigned", "tampered", "wrong key"])
def test_untrusted_artifacts_are_never_unpickled(
    control_stack: Stack, tmp_path: Path, case: str
) -> None:
    marker = tmp_path / "unpickled"
    data = artifacts.marker_pickle(marker)
    signature = {
        "unsigned": None,
        "tampered": signed(data),
        "wrong key": signed(data, key="someone-else"),
    }[case]
    if case == "tampered":
        data = data[:-2] + bytes([data[-2] ^ 1]) + data[-1:]
    before = predict(control_stack)
    response = upload(control_stack, data, signature)
    assert response.status_code == 422
    code = response.json()["error"]["code"]
    assert code == ("signature_missing" if case == "unsigned" else "signature_invalid")
    assert not marker.exists(), "the artifact was unpickled"
    assert predict(control_stack) == before


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (artifacts.not_a_pipeline(), "not a scikit-learn Pipeline"),
        (artifacts.raising_pickle(), "invalid literal for int"),
    ],
    ids=["contract", "raises"],
)
def test_broken_candidates_are_refused_with_the_reason(
    control_stack: Stack, data: bytes, reason: str
) -> None:
    assert_refused(control_stack, data, reason)


def test_a_hanging_candidate_is_refused_in_time(tmp_path: Path) -> None:
    """Its own stack with a short check deadline; the shared one keeps the default."""
    with start_stack(signed_demo(tmp_path / "b"), tmp_path / "r", CANDIDATE_TIMEOUT_S="4") as stack:
        assert_refused(stack, artifacts.hanging_pickle(), "did not finish within 4 s")


def assert_refused(stack: Stack, data: bytes, reason: str) -> None:
    before = predict(stack)
    response = upload(stack, data, signed(data))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "candidate_rejected"
    assert reason in error["message"]
    assert predict(stack) == before
    assert requests.get(f"{stack.base_url}/readyz").status_code == 200


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_need_the_token(control_stack: Stack, method: str, path: str) -> None:
    url = control_stack.base_url + path
    missing = requests.request(method, url, timeout=10)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = requests.request(method, url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "forbidden"


def test_deleting_versions(control_stack: Stack, tmp_path: Path) -> None:
    third = signed_demo(tmp_path, seed=23)
    sha = upload_model(control_stack, third).json()["sha256"]
    active = predict(control_stack)["model"]["sha256"]
    refused = requests.delete(f"{control_stack.base_url}/admin/models/{active}", headers=AUTH)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "conflict")
    deleted = requests.delete(f"{control_stack.base_url}/admin/models/{sha}", headers=AUTH)
    assert (deleted.status_code, deleted.json()) == (200, {"deleted": sha})
    again = requests.delete(f"{control_stack.base_url}/admin/models/{sha}", headers=AUTH)
    assert (again.status_code, again.json()["error"]["code"]) == (404, "version_not_found")


def test_concurrent_uploads_both_land_intact(control_stack: Stack, tmp_path: Path) -> None:
    models = [signed_demo(tmp_path / str(seed), seed=seed) for seed in (31, 32)]
    responses: list[Any] = [None, None]

    def send(index: int) -> None:
        responses[index] = upload_model(control_stack, models[index])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    for path, response in zip(models, responses, strict=True):
        sha = response.json()["sha256"]
        assert sha == sha_of(path)
        stored = control_stack.config.model_path.parent / "store" / sha / "pipeline.pkl"
        assert sha_of(stored) == sha


def test_restart_serves_the_activated_version(tmp_path: Path, second_model: Path) -> None:
    model = signed_demo(tmp_path / "binary")
    with start_stack(model, tmp_path / "run1") as stack:
        sha = upload_model(stack, second_model).json()["sha256"]
        assert activate(stack, sha).status_code == 200
    with start_stack(model, tmp_path / "run2") as restarted:
        assert predict(restarted)["model"]["sha256"] == sha
