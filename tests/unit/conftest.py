"""Unit-test fixtures: the app built by the factory and Flask's test client (no processes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.http.app import create_app
from service.model import signing
from service.settings import Settings

SIGNING_KEY = "unit-test-signing-key"
ADMIN_TOKEN = "unit-test-admin-token"


def private_copy(model_path: Path, folder: Path) -> Path:
    """The model in a folder of its own: each test gets a fresh version store."""
    target = folder / "pipeline.pkl"
    shutil.copyfile(model_path, target)
    shutil.copyfile(model_path.with_suffix(".schema.json"), target.with_suffix(".schema.json"))
    return target


@pytest.fixture
def settings(model_path: Path, tmp_path: Path) -> Settings:
    target = private_copy(model_path, tmp_path)
    signing.write_signature(target, SIGNING_KEY.encode())
    return Settings(
        model_path=target,
        max_rows=50,
        max_body_bytes=64 * 1024,
        signing_key=SIGNING_KEY,
        admin_token=ADMIN_TOKEN,
    )


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
