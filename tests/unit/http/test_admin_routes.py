"""The admin API in-process: auth, upload checks, activation and rollback (swap in-process)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.http.app import create_app
from service.model import signing
from service.settings import Settings
from tests import artifacts
from tests.admin_routes import ADMIN_ROUTE_IDS, ADMIN_ROUTES
from tests.unit.conftest import ADMIN_TOKEN, SIGNING_KEY

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ROW = {"data": {"size": [80.0], "rooms": [3.0], "city": ["nice"]}}


def post_artifact(client: FlaskClient, data: bytes, *, sign: bool = True, **headers: str) -> Any:
    if sign:
        headers["X-Model-Signature"] = signing.sign(data, SIGNING_KEY.encode())
    headers.setdefault("Content-Type", "application/octet-stream")
    return client.post("/admin/models", data=data, headers={**AUTH, **headers})


def test_upload_activate_rollback_in_process(client: FlaskClient, regressor_path: Path) -> None:
    first = client.get("/model").get_json()["sha256"]
    response = post_artifact(client, regressor_path.read_bytes())
    assert response.status_code == 201, response.get_json()
    record = response.get_json()
    assert record["model_type"] == "Ridge"
    assert record["serving_path"]["path"] == "plan", "the candidate check verified its plan"
    assert record["serving_path"]["detail"]["verified_rows"] >= 2000
    assert record["features_diff"]["added"] == ["city", "rooms", "size"]
    assert "employment" in record["features_diff"]["removed"]

    activated = client.post(f"/admin/models/{record['sha256']}/activate", headers=AUTH)
    assert activated.status_code == 200, activated.get_json()
    assert activated.get_json()["previous"] == first
    body = client.post("/model/predict", json=ROW).get_json()
    assert body["model"]["sha256"] == record["sha256"]
    assert client.get("/model").get_json()["model_type"] == "Ridge"

    listing = client.get("/admin/models", headers=AUTH).get_json()
    assert (listing["active"], listing["previous"]) == (record["sha256"], first)
    listed = {version["sha256"]: version for version in listing["versions"]}
    assert listed[record["sha256"]]["serving_path"] == record["serving_path"]
    client.post(f"/admin/models/{listing['previous']}/activate", headers=AUTH)
    assert client.get("/model").get_json()["sha256"] == first


def test_multipart_upload_keeps_the_schema(client: FlaskClient, model_path: Path) -> None:
    data = model_path.read_bytes()
    form = {
        "artifact": (io.BytesIO(data), "pipeline.pkl"),
        "schema": (io.BytesIO(model_path.with_suffix(".schema.json").read_bytes()), "s.json"),
    }
    response = client.post(
        "/admin/models",
        data=form,
        headers={**AUTH, "X-Model-Signature": signing.sign(data, SIGNING_KEY.encode())},
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["features_diff"] == {"added": [], "removed": [], "changed": []}


@pytest.mark.parametrize(
    ("data", "code", "fragment"),
    [
        (artifacts.not_a_pipeline(), "candidate_rejected", "not a scikit-learn Pipeline"),
        (artifacts.raising_pickle(), "candidate_rejected", "invalid literal for int"),
        (b"", "bad_request", "the body is empty"),
    ],
)
def test_refused_uploads_say_why(
    client: FlaskClient, data: bytes, code: str, fragment: str
) -> None:
    response = post_artifact(client, data)
    assert response.status_code in (400, 422)
    error = response.get_json()["error"]
    assert error["code"] == code
    assert fragment in error["message"]
    assert client.get("/admin/models", headers=AUTH).get_json()["versions"][0]["source"] == (
        "bootstrap"
    )


def test_a_hanging_candidate_times_out(settings: Settings, tmp_path: Path) -> None:
    client = create_app(dataclasses.replace(settings, candidate_timeout_s=2)).test_client()
    response = post_artifact(client, artifacts.hanging_pickle())
    assert response.status_code == 422
    assert "did not finish within 2 s" in response.get_json()["error"]["message"]


def test_unsigned_upload_is_not_unpickled(client: FlaskClient, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    response = post_artifact(client, artifacts.marker_pickle(marker), sign=False)
    assert (response.status_code, response.get_json()["error"]["code"]) == (
        422,
        "signature_missing",
    )
    assert not marker.exists()


def test_upload_limits(settings: Settings) -> None:
    client = create_app(dataclasses.replace(settings, max_upload_bytes=1000)).test_client()
    response = post_artifact(client, b"x" * 5000)
    assert response.status_code == 413
    wrong_type = client.post(
        "/admin/models", data=b"x", headers={**AUTH, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415


@pytest.mark.parametrize(
    ("method", "path"),
    ADMIN_ROUTES,
    ids=ADMIN_ROUTE_IDS,
)
def test_admin_auth(client: FlaskClient, method: str, path: str) -> None:
    missing = client.open(path, method=method)
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (401, "unauthorized")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = client.open(path, method=method, headers={"Authorization": "Bearer x"})
    assert (wrong.status_code, wrong.get_json()["error"]["code"]) == (403, "forbidden")
    basic = client.open(path, method=method, headers={"Authorization": f"Basic {ADMIN_TOKEN}"})
    assert basic.status_code == 401


def test_admin_disabled_without_a_token(settings: Settings) -> None:
    client = create_app(dataclasses.replace(settings, admin_token="")).test_client()
    response = client.get("/admin/models", headers=AUTH)
    assert response.status_code == 403
    assert "no ADMIN_TOKEN" in response.get_json()["error"]["message"]


def test_download_can_require_the_token(settings: Settings) -> None:
    client = create_app(dataclasses.replace(settings, download_requires_token=True)).test_client()
    assert client.get("/model/download").status_code == 401
    assert client.get("/model/download", headers={"Authorization": "Bearer x"}).status_code == 403
    with client.get("/model/download", headers=AUTH) as response:
        assert response.status_code == 200


def test_restart_serves_the_activated_version(settings: Settings, regressor_path: Path) -> None:
    client = create_app(settings).test_client()
    sha = post_artifact(client, regressor_path.read_bytes()).get_json()["sha256"]
    client.post(f"/admin/models/{sha}/activate", headers=AUTH)
    restarted = create_app(settings).test_client()
    assert restarted.get("/model").get_json()["sha256"] == sha


def test_unknown_version(client: FlaskClient) -> None:
    response = client.post(f"/admin/models/{'e' * 64}/activate", headers=AUTH)
    assert (response.status_code, response.get_json()["error"]["code"]) == (
        404,
        "version_not_found",
    )
