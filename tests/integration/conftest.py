"""Fixtures that start the real stack (gunicorn + nginx) and a real Prometheus on loopback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from deploy import monitor
from deploy.processes import free_port, wait_until
from deploy.run import self_signed
from deploy.stack import TLS, Stack, StackConfig
from service.cli import demo
from service.control import packing
from service.model import compat, signing
from tests.estimators import LoggingSleeper

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402

BODY_LIMIT = 256 * 1024
"""Small enough that the over-limit test sends little; both nginx and the app enforce it."""
SIGNING_KEY = "integration-signing-key"
ADMIN_TOKEN = "integration-admin-token"


def shell_env(*dropped: str) -> dict[str, str]:
    """The environment a user's shell would give `make ...`: without the state of the
    `make test` running these tests (its MAKEFLAGS would change the inner make's output)
    and without ``dropped``."""
    outer = {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", *dropped}
    return {k: v for k, v in os.environ.items() if k not in outer}


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    if not wait_until(lambda: bool(predicate()), timeout, interval=0.2):
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def signed_demo(folder: Path, seed: int = 5) -> Path:
    """The demo model trained on ``seed``'s data, packed and signed into ``folder``."""
    frame, labels = demo.dataset(rows=400, seed=seed)
    target, _ = packing.pack(demo.train(frame, labels), frame, folder)
    signing.write_signature(target, SIGNING_KEY.encode())
    return target


MARKER = 999.0
"""The value that makes :func:`logging_model` sleep."""


def one_column_model(folder: Path, estimator: BaseEstimator) -> Path:
    """``estimator`` behind a mapper of one number column ``x``, packed and signed."""
    sample = pd.DataFrame({"x": [1.0, -1.0]})
    pipeline = Pipeline([("m", DataFrameMapper([(["x"], None)])), ("clf", estimator)])
    target, _ = packing.pack(pipeline.fit(sample, [True, False]), sample, folder)
    signing.write_signature(target, SIGNING_KEY.encode())
    return target


def logging_model(folder: Path, log: Path, seconds: float = 3.0) -> Path:
    """A model that logs every value of ``x`` it scores to ``log`` and sleeps ``seconds`` on
    :data:`MARKER`: proof of what reached it, and a way to keep it busy."""
    return one_column_model(folder, LoggingSleeper(str(log), MARKER, seconds))


def scored(log: Path) -> list[float]:
    """The values :func:`logging_model` scored, in order."""
    return [float(line) for line in log.read_text().split()] if log.exists() else []


@pytest.fixture(scope="session")
def stack_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return signed_demo(tmp_path_factory.mktemp("binary"))


def start_stack(model: Path, run_dir: Path, tls: TLS | None = None, **env: str) -> Stack:
    config = StackConfig(
        model_path=model,
        run_dir=run_dir,
        port=free_port(),
        metrics_port=free_port(),
        env={
            "WEB_CONCURRENCY": "2",
            "MAX_BODY_BYTES": str(BODY_LIMIT),
            "MODEL_SIGNING_KEY": SIGNING_KEY,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            **env,
        },
        tls=tls,
    )
    return Stack(config)


@pytest.fixture(scope="session")
def stack(stack_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx in front of two gunicorn workers serving the demo model, with a TLS listener
    beside the plain one (``make run TLS=1``'s self-signed certificate)."""
    run_dir = tmp_path_factory.mktemp("run")
    tls = TLS(free_port(), *self_signed(run_dir / "tls"))
    with start_stack(stack_model, run_dir, tls) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="session")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus, configured as `make monitor` and compose configure it (the repo's
    prometheus.yml and alert rules), scraping the stack's metrics listener every second."""
    folder = tmp_path_factory.mktemp("prometheus")
    target = stack.metrics_url.removeprefix("http://").removesuffix("/metrics")
    config = monitor.render_config(target, folder, scrape_interval="1s")
    url = f"http://127.0.0.1:{free_port()}"
    process = monitor.start_prometheus(config, url.removeprefix("http://"), folder / "log")
    try:
        monitor.wait_ready(process, url, timeout=30)
        yield url
    finally:
        process.stop()
