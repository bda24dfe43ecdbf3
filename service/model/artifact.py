"""Reading a model artifact from disk: bytes, digest, and the guarded unpickle.

Unpickling runs arbitrary code, so this module only ever opens the file an
operator configured; nothing a request sends reaches :func:`unpickle`.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
from sklearn.exceptions import InconsistentVersionWarning

from service.errors import ArtifactNotFound, ArtifactUnreadable
from service.model import compat, signing


@dataclass(frozen=True)
class Artifact:
    """An unpickled artifact with what identifies it; ``packed_sklearn`` is None when unknown."""

    path: Path
    sha256: str
    size: int
    obj: Any
    packed_sklearn: str | None


def read_bytes(path: Path) -> bytes:
    """The artifact's raw bytes, or :class:`ArtifactNotFound` naming the path."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactNotFound(f"model artifact not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ArtifactNotFound(f"model artifact is a directory, not a file: {path}") from exc
    except PermissionError as exc:
        raise ArtifactUnreadable(f"model artifact is not readable: {path}") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unpickle(data: bytes, *, source: Path) -> tuple[Any, str | None]:
    """Unpickle trusted bytes; returns the object and the scikit-learn version it was pickled
    with when that differs from ours (scikit-learn reports it as a warning on load), or the
    versions, comma-separated, when its parts were pickled by several."""
    compat.install()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            obj = cloudpickle.loads(data)
        except ModuleNotFoundError as exc:
            raise ArtifactUnreadable(
                f"cannot unpickle {source}: it needs module {exc.name!r}, which is not installed",
                details={"missing_module": exc.name},
            ) from exc
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise ArtifactUnreadable(f"{source} is not a valid pickle: {exc}") from exc
        except Exception as exc:  # unpickling may run any code; report it, never crash the loader
            raise ArtifactUnreadable(
                f"unpickling {source} failed: {type(exc).__name__}: {exc}"
            ) from exc
    versions = {
        str(w.message.original_sklearn_version)
        for w in caught
        if isinstance(w.message, InconsistentVersionWarning)
    }
    return obj, (", ".join(sorted(versions)) or None)


def load(path: Path, key: bytes | None = None) -> Artifact:
    """Read, digest and unpickle the artifact at ``path``; with a key, only once its
    signature is proven (on the raw bytes, before any of them is unpickled)."""
    data = read_bytes(path)
    if key is not None:
        signing.verify_file(data, path, key)
    obj, packed_sklearn = unpickle(data, source=path)
    return Artifact(
        path=path, sha256=sha256_hex(data), size=len(data), obj=obj, packed_sklearn=packed_sklearn
    )
