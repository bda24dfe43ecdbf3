"""Unit-test fixtures: the app built by the factory and Flask's test client (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.settings import Settings


@pytest.fixture
def settings(model_path: Path) -> Settings:
    return Settings(model_path=model_path, max_rows=50, max_body_bytes=64 * 1024)


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
