"""Following the store: a version activated through one replica reaches another sharing
the store, once, after the isolated check, and a version that fails here is not retried."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.control import controller, follower
from service.control.controller import Control, forget_reloads, reload_in_master, replica_lock
from service.errors import CandidateRejected
from service.http.app import create_app
from service.model import signing
from service.settings import Settings
from tests.unit.conftest import ADMIN_TOKEN, SIGNING_KEY, private_copy

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def replica(model: Path, store: Path) -> Flask:
    return create_app(
        Settings(
            model_path=model, store_dir=store, signing_key=SIGNING_KEY, admin_token=ADMIN_TOKEN
        )
    )


@pytest.fixture
def fleet(model_path: Path, tmp_path: Path) -> tuple[Flask, Flask]:
    """Two replicas (apps) sharing one store, as a fleet's would on a shared volume."""
    target = private_copy(model_path, tmp_path)
    signing.write_signature(target, SIGNING_KEY.encode())
    return replica(target, tmp_path / "store"), replica(target, tmp_path / "store")


def upload_elsewhere(app: Flask, artifact: Path) -> str:
    """Upload through replica ``app``: stored for the fleet, not active."""
    data = artifact.read_bytes()
    headers = {
        **AUTH,
        "X-Model-Signature": signing.sign(data, SIGNING_KEY.encode()),
        "Content-Type": "application/octet-stream",
    }
    uploaded = app.test_client().post("/admin/models", data=data, headers=headers)
    assert uploaded.status_code == 201, uploaded.get_json()
    return str(uploaded.get_json()["sha256"])


def activate_elsewhere(app: Flask, artifact: Path) -> str:
    """Upload and activate through replica ``app`` (it swaps itself in-process)."""
    sha = upload_elsewhere(app, artifact)
    assert app.test_client().post(f"/admin/models/{sha}/activate", headers=AUTH).status_code == 200
    return sha


def following(app: Flask) -> follower.Follower:
    """A follower whose "master" is this process, fresh (as gunicorn's when_ready makes
    it): HUP becomes the master's reload."""
    control: Control = app.extensions["control"]
    control.master = os.getpid()
    forget_reloads(os.getpid())

    def hup() -> int:
        reload_in_master(control)
        return os.getpid()

    return follower.Follower(control, hup)


def served(app: Flask) -> str:
    return app.extensions["runtime"].model.sha256


def test_a_replica_follows_an_activation_made_through_another(
    fleet: tuple[Flask, Flask], regressor_path: Path
) -> None:
    here, elsewhere = fleet
    before = served(here)
    sha = activate_elsewhere(elsewhere, regressor_path)
    assert served(here) == before, "nothing moves a replica but its follower"
    watcher = following(here)
    assert watcher.step() == sha
    assert served(here) == sha
    assert here.test_client().get("/readyz").get_json()["sha256"] == sha
    assert watcher.step() is None, "a replica moves once"


def test_a_version_that_fails_here_is_not_retried_until_active_moves(
    fleet: tuple[Flask, Flask], regressor_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, elsewhere = fleet
    before = served(here)
    checks: list[Path] = []

    def refuse(path: Path, **_: Any) -> dict[str, Any]:
        checks.append(path)
        raise CandidateRejected("the candidate crashed while loading")

    sha = activate_elsewhere(elsewhere, regressor_path)
    monkeypatch.setattr(controller.candidate, "check", refuse)
    watcher = following(here)
    assert watcher.step() is None and watcher.step() is None
    assert checks.count(here.extensions["control"].store.path(sha)) == 1, "checked once"
    assert served(here) == before, "it keeps serving what it served"
    assert here.extensions["control"].verdicts() == {sha: False}


def test_a_new_version_is_checked_before_it_is_activated(
    fleet: tuple[Flask, Flask], regressor_path: Path
) -> None:
    """The check costs seconds: a replica runs it when a version is stored, so that an
    activation elsewhere costs it only the reload."""
    here, elsewhere = fleet
    watcher = following(here)
    sha = upload_elsewhere(elsewhere, regressor_path)
    assert watcher.step() is None, "stored, not active: nothing to move to"
    assert here.extensions["control"].verdicts() == {sha: True}


def test_a_replica_busy_with_a_swap_is_not_moved_twice(
    fleet: tuple[Flask, Flask], regressor_path: Path
) -> None:
    here, elsewhere = fleet
    sha = activate_elsewhere(elsewhere, regressor_path)
    watcher = following(here)
    with replica_lock(os.getpid(), wait=True):
        assert watcher.step() is None, "the lock's holder (a local activation) moves it"
    assert watcher.step() == sha
