"""Which version start-up serves: the store's active one, or MODEL_PATH when asked."""

from __future__ import annotations

import io
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from service.control import controller
from service.control.store import Store
from service.errors import StoreUnavailable
from service.model import signing
from service.settings import Settings
from tests.unit.conftest import SIGNING_KEY, private_copy


def signed(source: Path, folder: Path) -> Path:
    folder.mkdir()
    target = folder / "pipeline.pkl"
    shutil.copyfile(source, target)
    signing.write_signature(target, SIGNING_KEY.encode())
    return target


@pytest.fixture
def booted(model_path: Path, tmp_path: Path) -> tuple[Path, str]:
    """A store (apart from MODEL_PATH's folder) whose active version is the demo model."""
    demo = private_copy(model_path, tmp_path)
    signing.write_signature(demo, SIGNING_KEY.encode())
    store_dir = tmp_path / "store-here"
    return store_dir, boot(demo, store_dir)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The service logger may not propagate to the root (it writes JSON itself), or may:
    a record can reach the capture twice, so tests compare sets of messages."""
    logger = logging.getLogger("service")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def boot(model: Path, store_dir: Path, mode: str = "active") -> str:
    settings = Settings(
        model_path=model, store_dir=store_dir, boot_model=mode, signing_key=SIGNING_KEY
    )
    return controller.boot_model(settings, Store(store_dir)).sha256


def test_the_active_version_serves_and_a_differing_model_path_is_said(
    booted: tuple[Path, str],
    regressor_path: Path,
    tmp_path: Path,
    logged: pytest.LogCaptureFixture,
) -> None:
    store_dir, first = booted
    assert Store(store_dir).active() == first
    assert not (tmp_path / "store").exists()  # STORE_DIR, not beside MODEL_PATH
    other = signed(regressor_path, tmp_path / "other")
    assert boot(other, store_dir) == first
    [said] = {r.getMessage() for r in logged.records if "not served" in r.getMessage()}
    assert f"serving the store's active version {first}" in said
    assert f"MODEL_PATH {other} holds" in said
    assert "BOOT_MODEL=model_path" in said


def test_boot_model_path_serves_the_file_and_makes_it_active(
    booted: tuple[Path, str],
    regressor_path: Path,
    tmp_path: Path,
    logged: pytest.LogCaptureFixture,
) -> None:
    store_dir, first = booted
    other = signed(regressor_path, tmp_path / "other")
    served = boot(other, store_dir, mode="model_path")
    assert served != first
    assert Store(store_dir).active() == served
    assert Store(store_dir).previous() == first
    assert any("replaces the active version" in r.getMessage() for r in logged.records)
    assert boot(other, store_dir) == served  # a later plain restart keeps it


def test_a_full_disk_still_reads_the_whole_upload(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answering before the body is read would close the connection on unread bytes: nginx,
    still sending them, would see a reset and answer 502 instead of the 507."""
    control = app.extensions["control"]
    body = io.BytesIO(b"x" * (3 * controller.CHUNK))

    def full_disk(stream: io.BytesIO, fd: int) -> None:
        os.close(fd)
        stream.read(controller.CHUNK)
        raise StoreUnavailable("cannot receive the upload: the disk is full")

    monkeypatch.setattr(control, "_copy", full_disk)
    with pytest.raises(StoreUnavailable, match="the disk is full"):
        control.upload(body, signature=None)
    assert body.read() == b"", "the rest of the body was left unread"
    assert not list(control.store.incoming.glob("upload-*"))
