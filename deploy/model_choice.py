"""Which model ``make run`` serves, decided before anything starts and said in one line.

The rule: a model given on the command line (``make run MODEL=path``, or
``MODEL_PATH=path make run``) is served and becomes the active version;
without one, the version active in ``make run``'s store (``.run/store``) keeps
serving, so activations through the admin API survive restarts; with neither,
``binary/pipeline.pkl`` is served, and the demo model is trained there first
if that file does not exist.

The person running ``make run`` owns ``.run/signing-key``, so an unsigned
pickle of theirs is signed on their behalf, as a copy in ``.run/models/``:
nothing of theirs is written to, and ``binary/`` is only written when the demo
is created in an empty folder. Only the raw bytes are read here (digest,
signature): nothing is unpickled by the launcher.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from service.control.store import ARTIFACT, SCHEMA, Store, write_atomic
from service.errors import ServiceError
from service.model import signing

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "binary" / ARTIFACT


class ChoiceError(RuntimeError):
    """The model cannot be served; the message is one line that says what to do."""


@dataclass(frozen=True)
class Choice:
    model_path: Path
    """What the app gets as MODEL_PATH."""
    boot_model: str
    """What the app gets as BOOT_MODEL: ``model_path`` serves that file, ``active`` the store's."""
    says: str
    """The one line that tells the user which model serves and why."""


def short(sha256: str) -> str:
    return sha256[:12]


def choose(requested: Path | None, *, run_dir: Path, key_file: Path) -> Choice:
    """Decide what to serve; may sign a copy into ``run_dir`` or create the demo model."""
    key = signing.load_key(key_file)
    store = Store(run_dir / "store")
    active = store.active()
    if requested is None and active is not None:
        return _keep_active(active, store.path(active))
    path = requested or DEFAULT_MODEL
    if requested is None and not path.exists():
        _create_demo(path.parent, key_file)
    served, sha256, how = _signed(path, key, key_file, run_dir)
    line = f"serving {path} (sha256 {short(sha256)}, {how}; {_schema_source(path)})"
    if active is not None and active != sha256:
        line += (
            f"; it replaces the active version {short(active)} "
            "(`python -m service rollback` returns to it)"
        )
    return Choice(model_path=served, boot_model="model_path", says=line)


def _keep_active(active: str, stored: Path) -> Choice:
    line = f"serving the active version {short(active)} (kept across restarts)"
    if DEFAULT_MODEL.is_file():
        default_sha = _digest(DEFAULT_MODEL.read_bytes())
        if default_sha != active:
            line += (
                f"; {_shown(DEFAULT_MODEL)} holds {short(default_sha)}, which is not served: "
                f"`make run MODEL={_shown(DEFAULT_MODEL)}` serves it"
            )
    else:
        line += "; `make run MODEL=path/to/pipeline.pkl` serves another model"
    path = DEFAULT_MODEL if DEFAULT_MODEL.is_file() else stored
    return Choice(model_path=path, boot_model="active", says=line)


def _signed(path: Path, key: bytes, key_file: Path, run_dir: Path) -> tuple[Path, str, str]:
    """The artifact to serve, its sha256, and how it is signed: the file itself when its
    ``.sig`` verifies, else a signed copy in ``run_dir/models/<sha256>/``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ChoiceError(f"model not found: {path}") from None
    except IsADirectoryError:
        raise ChoiceError(f"{path} is a folder: give the pickle file inside it") from None
    except PermissionError:
        raise ChoiceError(f"model not readable: {path}") from None
    sha256 = _digest(data)
    if signing.signature_path(path).exists():
        try:
            signing.verify_file(data, path, key, key_file)
        except ServiceError as exc:
            raise ChoiceError(exc.message) from None
        return path, sha256, "signed"
    copy = _sign_copy(path, data, sha256, key, run_dir)
    return copy, sha256, f"unsigned: signed a copy in {_shown(copy.parent)} with {_shown(key_file)}"


def _sign_copy(path: Path, data: bytes, sha256: str, key: bytes, run_dir: Path) -> Path:
    folder = run_dir / "models" / short(sha256)
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / ARTIFACT
    write_atomic(copy, data)
    write_atomic(signing.signature_path(copy), (signing.sign(data, key) + "\n").encode())
    schema = path.with_suffix(".schema.json")
    if schema.is_file():
        write_atomic(folder / SCHEMA, schema.read_bytes())
    else:
        (folder / SCHEMA).unlink(missing_ok=True)
    return copy


def _schema_source(path: Path) -> str:
    schema = path.with_suffix(".schema.json")
    if schema.is_file():
        return f"schema from {_shown(schema)}"
    return "schema inferred from the pipeline at load"


def _create_demo(folder: Path, key_file: Path) -> None:
    """Train the demo into an empty ``binary/``; never over a file someone else put there."""
    present = [p.name for p in (folder / SCHEMA, folder / (ARTIFACT + ".sig")) if p.exists()]
    if present:
        raise ChoiceError(
            f"{_shown(folder)} holds {', '.join(present)} but no {ARTIFACT}: put your pipeline "
            f"there, or run `make run MODEL=path/to/pipeline.pkl`"
        )
    print(f"no model yet: training the demo model into {_shown(folder)}", flush=True)
    subprocess.run(
        [sys.executable, "-m", "service", "demo"]
        + ["--out", str(folder), "--key-file", str(key_file)],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _shown(path: Path) -> str:
    """Paths inside the repository relative to it, as the user typed them."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
