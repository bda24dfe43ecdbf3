"""Every setting the service reads, in one frozen dataclass built from the environment.

Names are the environment variables the README documents (``MODEL_PATH``,
``MAX_ROWS``...). A bad value stops the boot with a message naming the
variable, rather than surfacing later as a confusing request failure.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UNKNOWN_COLUMN_POLICIES = ("reject", "ignore")
BOOT_MODELS = ("active", "model_path")
VERSION_SKEW_POLICIES = ("refuse", "warn")
MODEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingsError(ValueError):
    """A setting is missing or out of range; the message names the variable."""


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a boolean (true/false), got {raw!r}")


@dataclass(frozen=True)
class Settings:
    """Service configuration; tests build one directly, production uses :meth:`from_env`."""

    model_path: Path = field(default=Path("binary/pipeline.pkl"), metadata={"env": "MODEL_PATH"})
    """The cloudpickled pipeline; its schema is read from ``<stem>.schema.json`` beside it."""

    model_name: str = field(default="", metadata={"env": "MODEL_NAME"})
    """The model's name in the Open Inference Protocol's paths (``/v2/models/<name>``);
    unset: MODEL_PATH's stem (``pipeline``). KServe passes the InferenceService's."""

    store_dir: Path | None = field(default=None, metadata={"env": "STORE_DIR"})
    """The versioned model store (``store/``, ``ACTIVE``); unset: the folder of MODEL_PATH.
    ``make run`` keeps its store in ``.run/store`` so it never writes beside your model."""

    store_poll_s: float = field(default=5.0, metadata={"env": "STORE_POLL_S"})
    """How often each worker looks at the store's ``ACTIVE`` pointer, so an activation
    through another replica sharing the store reaches this one (``control.follower``).
    Polling, because inotify does not see a network filesystem's writes. 0: never."""

    shutdown_drain_s: float = field(default=0.0, metadata={"env": "SHUTDOWN_DRAIN_S"})
    """Told to stop (TERM to gunicorn's master), the replica first fails ``/readyz`` and
    keeps serving this long, so a load balancer probing it takes it out before it stops
    taking requests; then the graceful stop. A second TERM stops at once. 0: no drain
    (one replica, or an orchestrator that removes the replica first)."""

    boot_model: str = field(default="active", metadata={"env": "BOOT_MODEL"})
    """Which model start-up serves. ``active``: the store's active version, so activations
    survive restarts (MODEL_PATH only seeds an empty store). ``model_path``: MODEL_PATH,
    which becomes the active version (``make run MODEL=...`` sets this)."""

    max_rows: int = field(default=10_000, metadata={"env": "MAX_ROWS"})
    """Most rows one prediction request may carry (413 above)."""

    max_body_bytes: int = field(default=10 * 1024 * 1024, metadata={"env": "MAX_BODY_BYTES"})
    """Largest request body in bytes (413 above); nginx's client_max_body_size matches it."""

    unknown_columns: str = field(default="reject", metadata={"env": "UNKNOWN_COLUMNS"})
    """``reject``: columns the model does not know are a 422; ``ignore``: they are dropped."""

    log_level: str = field(default="INFO", metadata={"env": "LOG_LEVEL"})
    """Level of the service's JSON logs."""

    download_accel_prefix: str = field(default="", metadata={"env": "DOWNLOAD_ACCEL_PREFIX"})
    """When set (nginx does, e.g. ``/_artifacts/``), downloads answer with ``X-Accel-Redirect``
    to this internal location so nginx streams the file instead of a worker."""

    batching: bool = field(default=True, metadata={"env": "BATCHING"})
    """Score concurrent requests of a worker together (serving.batching); off: one by one."""

    batch_max_rows: int = field(default=2048, metadata={"env": "BATCH_MAX_ROWS"})
    """Most rows one batched pipeline call takes; a larger request still runs, alone."""

    max_queued_rows: int = field(default=4096, metadata={"env": "MAX_QUEUED_ROWS"})
    """Rows a worker lets wait for the model; a request that would queue past it gets 503
    ``overloaded`` at once (a request larger than this still runs when nothing waits). Two
    full batches (BATCH_MAX_ROWS): what waits is scored within two pipeline calls, so a
    full worker adds two calls' latency, not a queue's. 0: no bound."""

    batch_max_wait_ms: float = field(default=0.0, metadata={"env": "BATCH_MAX_WAIT_MS"})
    """How long a batch may wait to fill before it runs. 0: never wait, batch only what
    queued while the previous call ran (no added latency when idle)."""

    fast_path: bool = field(default=True, metadata={"env": "FAST_PATH"})
    """Serve by the compiled plan (``service.model.plan``: the pipeline's arithmetic on numpy,
    verified against the pipeline at every load) when the model compiles and matches; else,
    and when off, by ``pipeline.predict``. ``GET /model`` says which path serves and why."""

    predict_timeout_s: float = field(default=25.0, metadata={"env": "PREDICT_TIMEOUT_S"})
    """Deadline of one pipeline call: past it the request gets 504 and the worker is replaced.
    Below nginx's proxy_read_timeout (35 s), so the client gets the service's answer. 0: none."""

    signing_key: str = field(
        default="", repr=False, metadata={"env": "MODEL_SIGNING_KEY", "file_env": True}
    )
    """HMAC key that artifacts must be signed with (or ``MODEL_SIGNING_KEY_FILE``)."""

    allow_unsigned: bool = field(default=False, metadata={"env": "ALLOW_UNSIGNED_MODELS"})
    """Without a signing key the service refuses to start unless this says so explicitly."""

    admin_token: str = field(
        default="", repr=False, metadata={"env": "ADMIN_TOKEN", "file_env": True}
    )
    """Bearer token of the admin API (or ``ADMIN_TOKEN_FILE``); empty: admin API disabled."""

    download_requires_token: bool = field(
        default=False, metadata={"env": "DOWNLOAD_REQUIRES_TOKEN"}
    )
    """Protect ``GET /model/download`` with the admin token too."""

    version_skew: str = field(default="refuse", metadata={"env": "VERSION_SKEW"})
    """A model pickled by another scikit-learn: ``refuse`` another minor version (boot,
    upload; a patch release only warns), or ``warn`` and serve (``service.model.skew``)."""

    lock_sha256: str = field(default="", metadata={"env": "LOCK_SHA256"})
    """The sha256 of the lock this environment was installed from (requirements/runtime.txt):
    the image sets it, as does deploy/stack.py; shown in ``GET /model``'s running versions."""

    max_upload_bytes: int = field(default=512 * 1024 * 1024, metadata={"env": "MAX_UPLOAD_BYTES"})
    """Largest artifact the admin API accepts."""

    candidate_timeout_s: float = field(default=60.0, metadata={"env": "CANDIDATE_TIMEOUT_S"})
    """Time limit of the isolated check of an uploaded artifact."""

    candidate_memory_mb: int = field(default=4096, metadata={"env": "CANDIDATE_MEMORY_MB"})
    """Address-space limit of that check, so a pickle that eats memory fails alone."""

    def __post_init__(self) -> None:
        if self.max_rows < 1:
            raise SettingsError(f"MAX_ROWS must be at least 1, got {self.max_rows}")
        if self.max_body_bytes < 1024:
            raise SettingsError(f"MAX_BODY_BYTES must be at least 1024, got {self.max_body_bytes}")
        if self.unknown_columns not in UNKNOWN_COLUMN_POLICIES:
            raise SettingsError(
                f"UNKNOWN_COLUMNS must be one of {UNKNOWN_COLUMN_POLICIES}, "
                f"got {self.unknown_columns!r}"
            )
        if self.version_skew not in VERSION_SKEW_POLICIES:
            raise SettingsError(
                f"VERSION_SKEW must be one of {VERSION_SKEW_POLICIES}, got {self.version_skew!r}"
            )
        if self.boot_model not in BOOT_MODELS:
            raise SettingsError(f"BOOT_MODEL must be one of {BOOT_MODELS}, got {self.boot_model!r}")
        if self.shutdown_drain_s < 0:
            raise SettingsError(
                f"SHUTDOWN_DRAIN_S must be 0 (no drain) or more, got {self.shutdown_drain_s}"
            )
        if self.store_poll_s < 0:
            raise SettingsError(f"STORE_POLL_S must be 0 (off) or more, got {self.store_poll_s}")
        if self.batch_max_rows < 1:
            raise SettingsError(f"BATCH_MAX_ROWS must be at least 1, got {self.batch_max_rows}")
        if self.max_queued_rows < 0:
            raise SettingsError(
                f"MAX_QUEUED_ROWS must be 0 (no bound) or more, got {self.max_queued_rows}"
            )
        if not 0 <= self.batch_max_wait_ms <= 1000:
            raise SettingsError(
                f"BATCH_MAX_WAIT_MS must be between 0 and 1000, got {self.batch_max_wait_ms}"
            )
        if not self.signing_key and not self.allow_unsigned:
            raise SettingsError(
                "no MODEL_SIGNING_KEY (or MODEL_SIGNING_KEY_FILE) is set: artifacts could not be "
                "verified before unpickling. Set one, or set ALLOW_UNSIGNED_MODELS=true to "
                "accept unsigned artifacts knowingly"
            )
        if not MODEL_NAME.match(self.served_name):
            raise SettingsError(
                f"MODEL_NAME must be 1-128 of A-Z a-z 0-9 . _ - (it is a URL path segment), "
                f"got {self.served_name!r}"
            )
        object.__setattr__(self, "log_level", self.log_level.upper())  # gunicorn's is lower case
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {LOG_LEVELS}, got {self.log_level!r}")

    @property
    def key(self) -> bytes | None:
        """The signing key as bytes, or None when artifacts are not verified."""
        return self.signing_key.encode() if self.signing_key else None

    @property
    def served_name(self) -> str:
        """MODEL_NAME, or MODEL_PATH's stem."""
        return self.model_name or self.model_path.stem

    @property
    def store_root(self) -> Path:
        """STORE_DIR, or else beside the bootstrap artifact."""
        return self.store_dir if self.store_dir is not None else self.model_path.parent

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every field from its environment variable, keeping defaults for absent ones."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            raw = _raw(environ, name, from_file=f.metadata.get("file_env", False))
            if raw is None:
                continue
            coerce = _coercer(f.type)
            try:
                values[f.name] = coerce(raw)
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from exc
        return cls(**values)


def _raw(environ: Mapping[str, str], name: str, *, from_file: bool) -> str | None:
    """The variable's value; for secrets, ``NAME_FILE`` names a file holding it instead."""
    if from_file and environ.get(f"{name}_FILE"):
        path = Path(environ[f"{name}_FILE"])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise SettingsError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from exc
    return environ.get(name)


def _coercer(annotation: object) -> Callable[[str], Any]:
    """Pick the parser for a field from its annotation (a string under postponed evaluation)."""
    parsers: dict[str, Callable[[str], Any]] = {
        "Path": Path,
        "Path | None": lambda raw: Path(raw) if raw.strip() else None,
        "int": int,
        "float": float,
        "bool": _bool,
        "str": str.strip,
    }
    return parsers[str(annotation)]
