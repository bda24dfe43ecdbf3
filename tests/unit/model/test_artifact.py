"""Reading an artifact: its bytes and digest, the signature before any unpickling, and every
way unpickling fails reported as the service's own error."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import cloudpickle
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from service.errors import (
    ArtifactNotFound,
    ArtifactUnreadable,
    SignatureInvalid,
    SignatureMissing,
)
from service.model import artifact, signing
from tests import artifacts

KEY = b"artifact-test-key"


class OpensAMissingFile:
    """Unpickling this raises an error no pickle library would: FileNotFoundError."""

    def __reduce__(self):
        return (open, ("/nonexistent/unpickling/opens/this",))


class Nested:
    """Unpickles to what ``data`` holds: lets one artifact carry parts pickled apart."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self):
        return (pickle.loads, (self.data,))


def other_sklearn_versions() -> list[str]:
    """Version strings as long as ours, but not ours: pickle bytes can be patched in place."""
    ours = sklearn.__version__
    return [ours[:-1] + digit for digit in "0123" if digit != ours[-1]]


def pickled_by_another_sklearn(obj: object, version: str) -> bytes:
    data = cloudpickle.dumps(obj)
    assert data.count(sklearn.__version__.encode()) == 1
    return data.replace(sklearn.__version__.encode(), version.encode())


def test_read_bytes_returns_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(b"\x80\x05bytes")
    assert artifact.read_bytes(path) == b"\x80\x05bytes"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.pkl"
    with pytest.raises(ArtifactNotFound) as caught:
        artifact.read_bytes(path)
    assert caught.value.message == f"model artifact not found: {path}"
    assert caught.value.code == "artifact_not_found"


def test_a_directory_is_not_an_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="is a directory, not a file"):
        artifact.read_bytes(tmp_path)


def test_an_unreadable_file_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the process may not read (root reads any mode, so the refusal is simulated)."""
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(b"x")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ArtifactUnreadable, match="is not readable"):
        artifact.read_bytes(path)


def test_sha256_hex_is_the_digest_of_the_bytes() -> None:
    assert artifact.sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_unpickle_returns_the_object_and_no_foreign_version() -> None:
    obj, packed = artifact.unpickle(cloudpickle.dumps(StandardScaler()), source=Path("x.pkl"))
    assert isinstance(obj, StandardScaler)
    assert packed is None


def test_unpickle_names_the_scikit_learn_that_pickled_it() -> None:
    """scikit-learn warns about the version on load; the loader keeps it, it does not fail."""
    version = other_sklearn_versions()[0]
    data = pickled_by_another_sklearn(StandardScaler(), version)
    obj, packed = artifact.unpickle(data, source=Path("x.pkl"))
    assert isinstance(obj, StandardScaler)
    assert packed == version


def test_unpickle_names_every_version_when_parts_disagree() -> None:
    first, second = other_sklearn_versions()[:2]
    data = pickle.dumps(
        [
            Nested(pickled_by_another_sklearn(StandardScaler(), first)),
            Nested(pickled_by_another_sklearn(LogisticRegression(), second)),
        ]
    )
    obj, packed = artifact.unpickle(data, source=Path("x.pkl"))
    assert [type(part) for part in obj] == [StandardScaler, LogisticRegression]
    assert packed == ", ".join(sorted((first, second)))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "x.pkl is not a valid pickle"),
        (b"hello, I am a CSV\n1,2,3\n", "x.pkl is not a valid pickle"),
        (cloudpickle.dumps(StandardScaler())[:40], "x.pkl is not a valid pickle"),
        (pickle.dumps(OpensAMissingFile()), "unpickling x.pkl failed: FileNotFoundError"),
    ],
    ids=["empty", "text", "truncated", "raises-anything"],
)
def test_unpickle_failures_are_unreadable_artifacts(data: bytes, fragment: str) -> None:
    with pytest.raises(ArtifactUnreadable) as caught:
        artifact.unpickle(data, source=Path("x.pkl"))
    assert caught.value.message.startswith(fragment)


def test_a_missing_module_is_named_in_details() -> None:
    with pytest.raises(ArtifactUnreadable, match="needs module 'no_such_module_xyz'") as caught:
        artifact.unpickle(b"\x80\x04cno_such_module_xyz\nThing\n.", source=Path("x.pkl"))
    assert caught.value.details == {"missing_module": "no_such_module_xyz"}


def test_load_without_a_key_identifies_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    data = cloudpickle.dumps(StandardScaler())
    path.write_bytes(data)
    loaded = artifact.load(path)
    assert isinstance(loaded.obj, StandardScaler)
    assert (loaded.path, loaded.size) == (path, len(data))
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()
    assert loaded.packed_sklearn is None


def test_load_with_a_key_unpickles_only_signed_bytes(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(artifacts.marker_pickle(marker))
    with pytest.raises(SignatureMissing):
        artifact.load(path, KEY)
    signing.write_signature(path, b"another key")
    with pytest.raises(SignatureInvalid):
        artifact.load(path, KEY)
    assert not marker.exists(), "nothing may be unpickled before the signature is proven"
    signing.write_signature(path, KEY)
    artifact.load(path, KEY)
    assert marker.exists()


def test_load_with_a_key_still_reports_a_missing_file_first(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound):
        artifact.load(tmp_path / "absent.pkl", KEY)
