"""The versioned model store: every artifact kept by its sha256, one of them active.

Layout, beside the configured ``MODEL_PATH`` (``binary/`` by default)::

    binary/
      pipeline.pkl (+ .schema.json, .sig)   bootstrap artifact: imported as the first version
      store/<sha256>/pipeline.pkl           each version's artifact, schema, signature
      store/<sha256>/version.json           its record (model type, features, times)
      ACTIVE                                the active sha256
      store/activations.log                 every activation, oldest first (for rollback)

Every write goes to a temporary name, is fsynced, then renamed, so a crash or
a full disk leaves the previous state whole; ``ACTIVE`` survives restarts.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.errors import Conflict, StoreUnavailable, VersionNotFound
from service.model.signing import HEX_SHA256, signature_path

ARTIFACT = "pipeline.pkl"
SCHEMA = "pipeline.schema.json"
RECORD = "version.json"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Disk full or read-only store become the service's 507, saying which."""
    try:
        yield
    except OSError as exc:
        reasons = {errno.ENOSPC: "the disk is full", errno.EROFS: "the store is read-only"}
        reason = reasons.get(exc.errno or 0, exc.strerror or str(exc))
        raise StoreUnavailable(f"cannot {action}: {reason}", details={"errno": exc.errno}) from exc


def write_atomic(path: Path, data: bytes) -> None:
    """Write, fsync, rename, fsync the folder: readers see the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; nginx's user reads artifacts for downloads
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """Versions on disk; safe for several processes (renames are atomic, names are digests)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions_dir = root / "store"
        self.incoming = self.versions_dir / ".incoming"
        self.pointer = root / "ACTIVE"
        self.history = self.versions_dir / "activations.log"

    def path(self, sha256: str) -> Path:
        """The artifact of a stored version."""
        return self.folder(sha256) / ARTIFACT

    def folder(self, sha256: str) -> Path:
        if not HEX_SHA256.match(sha256):
            raise VersionNotFound(f"{sha256!r} is not a sha256", details={"sha256": sha256})
        return self.versions_dir / sha256

    def has(self, sha256: str) -> bool:
        return (self.folder(sha256) / RECORD).exists()

    def active(self) -> str | None:
        try:
            sha = self.pointer.read_text().strip()
        except FileNotFoundError:
            return None
        return sha if HEX_SHA256.match(sha) and self.has(sha) else None

    def activate(self, sha256: str) -> None:
        self.require(sha256)
        with storage_errors("activate the version"):
            write_atomic(self.pointer, (sha256 + "\n").encode())
            with self.history.open("a") as log:
                log.write(f"{now()} {sha256}\n")

    def previous(self) -> str | None:
        """The version active before the current one that is still stored: the rollback."""
        active = self.active()
        try:
            lines = self.history.read_text().split("\n")
        except FileNotFoundError:
            return None
        for line in reversed(lines):
            sha = line.rpartition(" ")[2]
            if sha and sha != active and self.has(sha):
                return sha
        return None

    def require(self, sha256: str) -> None:
        if not self.has(sha256):
            raise VersionNotFound(f"no stored version {sha256}", details={"sha256": sha256})

    def record(self, sha256: str) -> dict[str, Any]:
        self.require(sha256)
        return json.loads((self.folder(sha256) / RECORD).read_text())

    def versions(self) -> list[dict[str, Any]]:
        """Every stored version's record, newest upload first, with its active flag."""
        active = self.active()
        records = [
            {**json.loads(path.read_text()), "active": path.parent.name == active}
            for path in self.versions_dir.glob(f"*/{RECORD}")
        ]
        return sorted(records, key=lambda r: r.get("uploaded_at", ""), reverse=True)

    def new_upload_file(self) -> tuple[int, Path]:
        """A temporary file on the store's disk to stream an upload into."""
        with storage_errors("receive the upload"):
            self.incoming.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.incoming, prefix="upload-")
        return fd, Path(name)

    def add(
        self,
        sha256: str,
        artifact: Path,
        record: dict[str, Any],
        *,
        signature: str | None = None,
        schema: Path | None = None,
    ) -> dict[str, Any]:
        """Move a checked artifact into the store under its digest; idempotent."""
        if self.has(sha256):
            artifact.unlink(missing_ok=True)
            return self.record(sha256)
        with storage_errors("store the version"):
            staging = Path(tempfile.mkdtemp(dir=self.versions_dir, prefix=".staging-"))
            try:
                shutil.copyfile(artifact, staging / ARTIFACT)
                os.chmod(staging / ARTIFACT, 0o644)
                if schema is not None and schema.exists():
                    shutil.copyfile(schema, staging / SCHEMA)
                if signature:
                    (staging / (ARTIFACT + ".sig")).write_text(signature + "\n")
                full = {"sha256": sha256, "uploaded_at": now(), **record}
                (staging / RECORD).write_text(json.dumps(full, indent=2) + "\n")
                for path in staging.iterdir():
                    with path.open("rb") as handle:
                        os.fsync(handle.fileno())
                os.chmod(staging, 0o755)
                self._land(staging, sha256)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        artifact.unlink(missing_ok=True)
        return self.record(sha256)

    def _land(self, staging: Path, sha256: str) -> None:
        """Rename the staged version into place. Replicas sharing the store may land the same
        digest at once (all bootstrapping one ``MODEL_PATH``, or one upload sent twice): the
        loser's rename finds the folder there, and the winner's copy is the same bytes."""
        try:
            os.rename(staging, self.folder(sha256))
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not self.has(sha256):
                raise
            shutil.rmtree(staging, ignore_errors=True)
            return
        fsync_dir(self.versions_dir)

    def delete(self, sha256: str) -> None:
        self.require(sha256)
        if sha256 == self.active():
            raise Conflict(
                "the active version cannot be deleted; activate another one first",
                details={"sha256": sha256},
            )
        with storage_errors("delete the version"):
            trash = self.versions_dir / f".deleting-{sha256}"
            os.rename(self.folder(sha256), trash)
            shutil.rmtree(trash)

    def import_bootstrap(self, artifact: Path, sha256: str, record: dict[str, Any]) -> None:
        """Make a plain ``pipeline.pkl`` the first version, keeping its schema and signature."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        sig = signature_path(artifact)
        fd, name = self.new_upload_file()  # a name of its own: replicas may boot at once
        os.close(fd)
        copy = Path(name)
        shutil.copyfile(artifact, copy)
        self.add(
            sha256,
            copy,
            {**record, "source": "bootstrap"},
            signature=sig.read_text().strip() if sig.exists() else None,
            schema=artifact.with_suffix(".schema.json"),
        )
        self.activate(sha256)
