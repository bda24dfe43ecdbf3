"""Model control: which version serves, uploading new ones, and swapping without downtime.

Boot: the store's active version is served; a store with none imports the
bootstrap ``MODEL_PATH`` as its first version. Every artifact's signature is
checked on its raw bytes before anything unpickles it.

Swap under gunicorn (see README, "Model control"): the worker that handles
``activate`` moves the ``ACTIVE`` pointer and sends HUP to the master. The
master's ``on_reload`` hook (deploy/gunicorn.conf.py) loads the new version
into the preloaded app and reports the outcome in a status file; gunicorn
then forks fresh workers from it, which share the new model copy-on-write,
and retires the old ones gracefully. The handler returns once no old worker
but itself is left. Without gunicorn (tests, ``flask run``) the swap happens
in-process. Other replicas sharing the store follow (``service.control.follower``).

The status file and the follow lock belong to one replica (one master): they live in
the machine's temporary folder, keyed by the master's pid, never in the store, which
a fleet shares.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import SkipJsonSchema

from service.control import candidate
from service.control.store import Store, now, storage_errors, write_atomic
from service.errors import (
    BadRequest,
    Conflict,
    PayloadTooLarge,
    ReloadFailed,
    ServiceError,
    StoreUnavailable,
)
from service.model import predictor, signing, skew
from service.model.predictor import Feature, ModelSummary, Sha256, Timestamp
from service.serving.metrics import Metrics
from service.serving.runtime import Runtime
from service.settings import Settings

log = logging.getLogger("service.control.controller")

CHUNK = 1024 * 1024
STATUS = "reload-status.json"
CHECKED = "checked.json"
RETIRE_LINGER = 2.5
"""gunicorn gives a retiring gthread worker's idle keep-alive connections 2 s
(STOP_KEEPALIVE_LINGER); after that no old worker but the caller can answer."""


def judge_skew(trained_sklearn: str | None, settings: Settings) -> None:
    """VERSION_SKEW's verdict on a model pickled with ``trained_sklearn``: raises
    VersionSkew, or logs the one line that names both versions (``service.model.skew``)."""
    warning = skew.judge(trained_sklearn, settings.version_skew)
    if warning is not None:
        log.warning(warning)


def boot_model(settings: Settings, store: Store) -> predictor.Model:
    """The model to serve at start-up (see ``Settings.boot_model``), once VERSION_SKEW let
    it: the store's active version, or ``MODEL_PATH``, which then becomes the active one."""
    model = _boot_model(settings, store)
    judge_skew(model.trained_sklearn, settings)
    return model


def _boot_model(settings: Settings, store: Store) -> predictor.Model:
    active = store.active()
    if active is not None and (
        settings.boot_model == "active" or file_sha256(settings.model_path) == active
    ):
        _note_unserved_bootstrap(settings.model_path, active)
        return predictor.load(store.path(active), key=settings.key, fast_path=settings.fast_path)
    loaded = predictor.load(settings.model_path, key=settings.key, fast_path=settings.fast_path)
    try:
        store.import_bootstrap(settings.model_path, loaded.sha256, loaded.record())
    except (StoreUnavailable, OSError) as exc:
        log.warning("model store not writable (%s): serving MODEL_PATH without versions", exc)
        return loaded
    if active is not None:
        log.warning(
            "serving MODEL_PATH %s (%s) as BOOT_MODEL=model_path asks; it replaces the "
            "active version %s (`python -m service rollback` returns to it)",
            settings.model_path,
            loaded.sha256,
            active,
        )
    return predictor.load(store.path(loaded.sha256), key=settings.key, fast_path=settings.fast_path)


def discard(stream: IO[bytes], limit: int) -> None:
    """Read a request body to its end (at most ``limit`` bytes), keeping nothing."""
    read = 0
    while read <= limit and (chunk := stream.read(CHUNK)):
        read += len(chunk)


def file_sha256(path: Path) -> str | None:
    """A file's digest, None when it cannot be read (the loader then says why)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _note_unserved_bootstrap(path: Path, active: str) -> None:
    """Say so when MODEL_PATH holds another model than the active version that serves:
    a pipeline dropped into MODEL_PATH must never be assumed live without a word."""
    sha = file_sha256(path)
    if sha is not None and sha != active:
        log.warning(
            "serving the store's active version %s; MODEL_PATH %s holds %s, which is not "
            "served: upload and activate it, or restart with BOOT_MODEL=model_path",
            active,
            path,
            sha,
        )


# ---- response models: what the admin API answers ------------------------------------------


class VersionRecord(ModelSummary):
    """A stored version, as the store records it."""

    sha256: Sha256
    uploaded_at: Timestamp
    source: Literal["bootstrap", "upload"] | SkipJsonSchema[None] = None
    """Absent from versions stored before uploads were told apart."""


class ListedVersion(VersionRecord):
    """A stored version, and whether it is the one served."""

    active: bool


class VersionList(BaseModel):
    """The stored versions, newest upload first; the active one, and the rollback target."""

    versions: list[ListedVersion]
    active: Sha256 | None
    previous: Sha256 | None


class FeaturesDiff(BaseModel):
    """Columns a version adds, removes, or reads with another type or nullability, against
    the served one."""

    added: list[str]
    removed: list[str]
    changed: list[str]


class UploadedVersion(VersionRecord):
    """Stored (not activated), with its feature changes."""

    features_diff: FeaturesDiff


class Activation(BaseModel):
    """Activated: every worker serves it (their pids in `workers`)."""

    active: VersionRecord
    previous: Sha256 | None
    workers: list[int]


def features_diff(old: list[Feature], new: list[Feature]) -> FeaturesDiff:
    """Columns a candidate adds, removes, or reads with another type or nullability."""
    before = {f.name: f for f in old}
    after = {f.name: f for f in new}
    return FeaturesDiff(
        added=sorted(after.keys() - before.keys()),
        removed=sorted(before.keys() - after.keys()),
        changed=sorted(
            name
            for name in before.keys() & after.keys()
            if (before[name].type, before[name].nullable)
            != (after[name].type, after[name].nullable)
        ),
    )


class Control:
    """The admin operations, over one store, for one app."""

    def __init__(self, settings: Settings, store: Store, runtime: Runtime, metrics: Metrics):
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.metrics = metrics
        self.reload_via_master: Callable[[], int] | None = None
        """Set by gunicorn's post_fork hook: signals the master and returns its pid."""
        self.master: int | None = None
        """The gunicorn master's pid (post_fork): it keys this replica's own files."""

    # ---- upload --------------------------------------------------------------------------

    def upload(
        self, stream: IO[bytes], signature: str | None, schema_json: bytes | None = None
    ) -> UploadedVersion:
        """Stream an artifact to disk, verify it, check it in isolation, then store it."""
        fd, path = self.store.new_upload_file()
        schema_path = path.with_suffix(".schema.json")
        try:
            sha256, expected = self._receive(stream, fd)
            if self.settings.key is not None:
                signing.check(expected or "", signature, what="the uploaded artifact")
            if schema_json is not None:
                with storage_errors("receive the schema"):
                    schema_path.write_bytes(schema_json)
            metadata = self.check_candidate(path, sha256)
            if metadata.get("sha256") != sha256:
                raise Conflict("the artifact changed while it was checked")
            record = {**predictor.version_record(metadata), "source": "upload"}
            stored = self.store.add(sha256, path, record, signature=signature, schema=schema_path)
        finally:
            path.unlink(missing_ok=True)
            schema_path.unlink(missing_ok=True)
        features = VersionRecord.model_validate(stored).features
        diff = features_diff(self.runtime.model.metadata().features, features)
        return UploadedVersion.model_validate({**stored, "features_diff": diff})

    def check_candidate(self, path: Path, sha256: str) -> dict[str, Any]:
        """An artifact's metadata from the isolated check (``candidate.check``), counted by
        outcome and remembered for this replica (``verdicts``); raises CandidateRejected
        (or a signature error) saying why."""
        try:
            metadata = candidate.check(
                path,
                timeout=self.settings.candidate_timeout_s,
                memory_mb=self.settings.candidate_memory_mb,
                fast_path=self.settings.fast_path,
            )
            judge_skew(metadata["versions"]["packed"]["sklearn"], self.settings)
        except ServiceError:
            self._remember(sha256, accepted=False)
            raise
        self._remember(sha256, accepted=True)
        return metadata

    def verdicts(self) -> dict[str, bool]:
        """This replica's checks so far, sha256 -> accepted (empty outside gunicorn)."""
        if self.master is None:
            return {}
        try:
            return dict(json.loads(replica_file(self.master, CHECKED).read_text()))
        except (OSError, ValueError):
            return {}

    def _remember(self, sha256: str, *, accepted: bool) -> None:
        self.metrics.candidate_checks.labels("accepted" if accepted else "rejected").inc()
        if self.master is not None:
            verdicts = {**self.verdicts(), sha256: accepted}
            write_atomic(replica_file(self.master, CHECKED), json.dumps(verdicts).encode())

    def _receive(self, stream: IO[bytes], fd: int) -> tuple[str, str | None]:
        """Copy the body to ``fd`` within the size limit; its sha256 and HMAC. A full or
        read-only disk stops the copy, not the reading: the rest of the body is read and
        dropped, for an answer sent before the body was read closes the connection on
        unread bytes, and nginx (still sending them) then sees a reset instead of the 507."""
        try:
            return self._copy(stream, fd)
        except StoreUnavailable:
            discard(stream, self.settings.max_upload_bytes)
            raise

    def _copy(self, stream: IO[bytes], fd: int) -> tuple[str, str | None]:
        digest = hashlib.sha256()
        signer = signing.Signer(self.settings.key) if self.settings.key else None
        size = 0
        with storage_errors("receive the upload"), os.fdopen(fd, "wb") as handle:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > self.settings.max_upload_bytes:
                    raise PayloadTooLarge(
                        f"the artifact exceeds MAX_UPLOAD_BYTES={self.settings.max_upload_bytes}",
                        details={"max_upload_bytes": self.settings.max_upload_bytes},
                    )
                digest.update(chunk)
                if signer is not None:
                    signer.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if size == 0:
            raise BadRequest("the body is empty: send the artifact's bytes")
        return digest.hexdigest(), signer.hexdigest() if signer else None

    # ---- activation ----------------------------------------------------------------------

    def activate(self, sha256: str) -> Activation:
        """Make a stored version the served one, in every worker, before returning.

        Other replicas sharing the store follow within ``STORE_POLL_S``; this replica's own
        followers wait on its follow lock meanwhile, so it moves once.
        """
        self.store.require(sha256)
        with self._exclusive(), self._replica():
            previous = self.store.active()
            self.store.activate(sha256)
            try:
                workers = self._swap(sha256)
            except ServiceError:
                if previous is not None:
                    self.store.activate(previous)
                raise
        active = VersionRecord.model_validate(self.store.record(sha256))
        return Activation(active=active, previous=previous, workers=workers)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One activation at a time, across every worker process."""
        with (self.store.root / ".activate.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _replica(self) -> contextlib.AbstractContextManager[bool]:
        """This replica's follow lock under gunicorn; in-process there is no replica."""
        if self.master is None:
            return contextlib.nullcontext(True)
        return replica_lock(self.master, wait=True)

    def _swap(self, sha256: str) -> list[int]:
        if self.reload_via_master is None:
            try:
                self.runtime.swap(self.load_version(sha256))
            except ServiceError as exc:
                self.metrics.reload(False)
                raise ReloadFailed(f"version {sha256} failed to load: {exc.message}") from exc
            self.metrics.reload(True)
            return [os.getpid()]
        return self.swap_workers(sha256, self.reload_via_master)

    def load_version(self, sha256: str) -> predictor.Model:
        """A stored version, loaded as this server serves it."""
        return predictor.load(
            self.store.path(sha256), key=self.settings.key, fast_path=self.settings.fast_path
        )

    def swap_workers(self, sha256: str, reload_via_master: Callable[[], int]) -> list[int]:
        """HUP the master, wait for its reload verdict, then for the old workers to leave."""
        assert self.master is not None, "set with reload_via_master by post_fork"
        master = self.master
        old = set(children(master)) - {os.getpid()}
        signalled = time.monotonic()
        self.reload_master(sha256, reload_via_master, master)
        wait_for(lambda: not (set(children(master)) & old) or None, 60, "old workers to retire")
        if old:  # their kept-alive connections may still get a request for a moment
            time.sleep(max(0.0, signalled + RETIRE_LINGER - time.monotonic()))
        return sorted(set(children(master)) - {os.getpid()})

    def reload_master(self, sha256: str, reload_via_master: Callable[[], int], master: int) -> None:
        """HUP the master and wait for its verdict: ReloadFailed unless it loaded ``sha256``."""
        seq = read_status(master).get("seq", 0)
        reload_via_master()
        status = wait_for(lambda: _newer(read_status(master), seq), 60, "master reload")
        if not status.get("ok") or status.get("sha256") != sha256:
            raise ReloadFailed(
                f"the server could not load version {sha256}: {status.get('error')}",
                details={"sha256": sha256},
            )

    # ---- listing and deleting --------------------------------------------------------------

    def versions(self) -> VersionList:
        return VersionList.model_validate(
            {
                "versions": self.store.versions(),
                "active": self.store.active(),
                "previous": self.store.previous(),
            }
        )

    def delete(self, sha256: str) -> None:
        self.store.delete(sha256)


# ---- the master's side of a swap (called from gunicorn's on_reload hook) --------------------


def reload_in_master(control: Control) -> None:
    """Load the active version into the preloaded app and record the outcome for the waiter."""
    sha = control.store.active()
    status: dict[str, Any] = {"seq": read_status(os.getpid()).get("seq", 0) + 1}
    try:
        if sha is None:
            raise ReloadFailed("no active version in the store")
        # Always from disk, even for the version already served: a HUP also proves the
        # active artifact is still intact (and says why when it is not).
        control.runtime.swap(control.load_version(sha))
        status.update(ok=True, sha256=sha)
    except ServiceError as exc:
        log.error("reload of %s failed, keeping %s: %s", sha, control.runtime.model.sha256, exc)
        status.update(ok=False, sha256=sha, error=exc.message)
    control.metrics.reload(status["ok"])
    status["at"] = now()
    write_atomic(replica_file(os.getpid(), STATUS), json.dumps(status).encode())


def replica_file(master: int, name: str) -> Path:
    """A file of one replica's own: its master's reload status, its follow lock."""
    return Path(tempfile.gettempdir()) / f"model-serving-{master}.{name}"


DRAINING = "draining"


def forget_reloads(master: int) -> None:
    """A new master starts with no reload, no drain and no checks (``follower``): in a
    container, every master may be pid 1."""
    for name in (STATUS, DRAINING, CHECKED):
        replica_file(master, name).unlink(missing_ok=True)


def start_draining(master: int) -> None:
    """Mark the replica as stopping: its workers' ``/readyz`` answers 503 from now on."""
    replica_file(master, DRAINING).touch()


def drain_mark(master: int) -> Callable[[], bool]:
    """Whether the master marked the replica as draining (a stat per readiness probe)."""
    mark = replica_file(master, DRAINING)
    return mark.exists


def read_status(master: int) -> dict[str, Any]:
    """The outcome of the master's last reload: seq, ok, sha256 (and error), at."""
    try:
        return json.loads(replica_file(master, STATUS).read_text())
    except (OSError, ValueError):
        return {}


@contextmanager
def replica_lock(master: int, *, wait: bool) -> Iterator[bool]:
    """One replica's swap at a time: a local activation and the followers of its workers
    take it; yields whether it was taken. A worker that dies holding it releases it."""
    with replica_file(master, "follow.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _newer(status: dict[str, Any], seq: int) -> dict[str, Any] | None:
    return status if status.get("seq", 0) > seq else None


def children(pid: int) -> list[int]:
    """A process's children (gunicorn's workers, when ``pid`` is the master)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_for(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.05)
    raise ReloadFailed(f"timed out after {timeout:g} s waiting for {what}")


def hup_master(master: int) -> Callable[[], int]:
    """The reload trigger post_fork installs: HUP to gunicorn's master."""

    def trigger() -> int:
        os.kill(master, signal.SIGHUP)
        return master

    return trigger
