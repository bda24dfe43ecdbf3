"""The versioned store on disk: atomic pointer, records, rollback target, refusals."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from service.control import store
from service.control.store import Store
from service.errors import Conflict, StoreUnavailable, VersionNotFound

SHA_A, SHA_B = "a" * 64, "b" * 64


def add(target: Store, sha: str, tmp_path: Path) -> None:
    source = tmp_path / f"upload-{sha[:4]}"
    source.write_bytes(sha.encode())
    target.add(sha, source, {"model_type": "X"}, signature="f" * 64)


@pytest.fixture
def versions(tmp_path: Path) -> Store:
    target = Store(tmp_path / "binary")
    target.versions_dir.mkdir(parents=True)
    add(target, SHA_A, tmp_path)
    add(target, SHA_B, tmp_path)
    return target


def test_versions_are_kept_by_digest(versions: Store) -> None:
    assert versions.path(SHA_A).read_bytes() == SHA_A.encode()
    assert (versions.folder(SHA_A) / "pipeline.pkl.sig").read_text().strip() == "f" * 64
    assert oct(versions.path(SHA_A).stat().st_mode)[-3:] == "644"
    assert {v["sha256"] for v in versions.versions()} == {SHA_A, SHA_B}
    assert versions.record(SHA_A)["model_type"] == "X"


def test_activation_survives_a_new_store_object(versions: Store) -> None:
    assert versions.active() is None
    versions.activate(SHA_A)
    versions.activate(SHA_B)
    reopened = Store(versions.root)
    assert reopened.active() == SHA_B
    assert reopened.previous() == SHA_A
    assert [v["active"] for v in reopened.versions() if v["sha256"] == SHA_B] == [True]


def test_deleting(versions: Store) -> None:
    versions.activate(SHA_A)
    with pytest.raises(Conflict):
        versions.delete(SHA_A)
    versions.delete(SHA_B)
    assert not versions.has(SHA_B)
    with pytest.raises(VersionNotFound):
        versions.delete(SHA_B)
    assert versions.previous() is None


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "a" * 63])
def test_only_digests_name_versions(versions: Store, bad: str) -> None:
    with pytest.raises(VersionNotFound):
        versions.path(bad)


@pytest.mark.parametrize(
    ("code", "reason"), [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only")]
)
def test_full_or_read_only_disk_changes_nothing(
    versions: Store, monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    versions.activate(SHA_A)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(store.os, "replace", refuse)
    with pytest.raises(StoreUnavailable, match=reason) as caught:
        versions.activate(SHA_B)
    assert caught.value.status_code == 507
    assert versions.active() == SHA_A
    assert not [p for p in versions.root.iterdir() if p.name.startswith(".ACTIVE")]


def test_a_version_landed_by_another_replica_meanwhile_is_kept(
    versions: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas sharing the store bootstrap the same MODEL_PATH at once: the one whose rename
    comes second finds the version there and keeps it, instead of failing its boot."""
    before = versions.path(SHA_A).read_bytes()
    checks = iter([False])  # the first check runs before the other replica's rename
    real_has = Store.has
    monkeypatch.setattr(Store, "has", lambda self, sha: next(checks, None) or real_has(self, sha))
    source = tmp_path / "second"
    source.write_bytes(b"the same digest, staged by the second replica")
    record = versions.add(SHA_A, source, {"model_type": "X"})
    assert record["sha256"] == SHA_A
    assert versions.path(SHA_A).read_bytes() == before
    assert not source.exists()
    assert [p.name for p in versions.versions_dir.iterdir() if p.name.startswith(".staging")] == []


def test_bootstrapping_twice_keeps_one_version_and_no_temporary_file(tmp_path: Path) -> None:
    artifact = tmp_path / "pipeline.pkl"
    artifact.write_bytes(b"model")
    shared = Store(tmp_path / "store")
    for _ in range(2):
        Store(shared.root).import_bootstrap(artifact, SHA_A, {"model_type": "X"})
    assert shared.active() == SHA_A
    assert shared.path(SHA_A).read_bytes() == b"model"
    assert list(shared.incoming.iterdir()) == []
