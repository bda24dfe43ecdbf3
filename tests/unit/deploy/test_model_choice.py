"""Which model `make run` serves, decided from files alone (nothing is unpickled here)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from deploy import model_choice
from deploy.model_choice import ChoiceError, choose
from service.control.store import Store
from service.model import signing

KEY = "make-run-key"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "signing-key").write_text(KEY + "\n")
    return folder


@pytest.fixture
def default_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """binary/pipeline.pkl, moved to a folder of the test's own."""
    binary = tmp_path / "binary"
    binary.mkdir()
    monkeypatch.setattr(model_choice, "DEFAULT_MODEL", binary / "pipeline.pkl")
    return binary / "pipeline.pkl"


def user_pickle(folder: Path, content: bytes = b"a user's pickle") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "mine.pkl"
    path.write_bytes(content)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def activate(run_dir: Path, data: bytes) -> str:
    store = Store(run_dir / "store")
    store.versions_dir.mkdir(parents=True)
    artifact = run_dir / "incoming.pkl"
    artifact.write_bytes(data)
    store.add(sha(data), artifact, {"model_type": "X"})
    store.activate(sha(data))
    return sha(data)


def test_an_unsigned_pickle_is_served_as_a_signed_copy(run_dir: Path, tmp_path: Path) -> None:
    mine = user_pickle(tmp_path / "user")
    mine.with_suffix(".schema.json").write_text("{}")
    before = sorted(p.name for p in mine.parent.iterdir())
    choice = choose(mine, run_dir=run_dir, key_file=run_dir / "signing-key")
    copy = run_dir / "models" / sha(mine.read_bytes())[:12] / "pipeline.pkl"
    assert choice.model_path == copy
    assert choice.boot_model == "model_path"
    assert copy.read_bytes() == mine.read_bytes()
    signing.verify_file(copy.read_bytes(), copy, KEY.encode())
    assert copy.with_suffix(".schema.json").read_text() == "{}"
    assert sorted(p.name for p in mine.parent.iterdir()) == before
    assert "unsigned: signed a copy in" in choice.says
    assert f"schema from {mine.with_suffix('.schema.json')}" in choice.says


def test_a_signed_pickle_is_served_in_place(run_dir: Path, tmp_path: Path) -> None:
    mine = user_pickle(tmp_path / "user")
    signing.write_signature(mine, KEY.encode())
    choice = choose(mine, run_dir=run_dir, key_file=run_dir / "signing-key")
    assert choice.model_path == mine
    assert not (run_dir / "models").exists()
    assert "signed; schema inferred from the pipeline at load" in choice.says


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda path: path.unlink(), "model not found: {path}"),
        (
            lambda path: signing.signature_path(path).write_text("f" * 64),
            "{path}: the signature does not match its bytes under the configured key (altered, "
            "or signed with another key); if you trust it, sign it: "
            "python -m service sign {path} --key-file {key}",
        ),
    ],
    ids=["missing", "wrongly-signed"],
)
def test_a_model_that_cannot_serve_is_one_line(
    run_dir: Path, tmp_path: Path, setup, message: str
) -> None:
    mine = user_pickle(tmp_path / "user")
    setup(mine)
    with pytest.raises(ChoiceError) as refused:
        choose(mine, run_dir=run_dir, key_file=run_dir / "signing-key")
    assert str(refused.value) == message.format(path=mine, key=run_dir / "signing-key")


def test_without_model_the_active_version_keeps_serving_and_a_differing_file_is_said(
    run_dir: Path, default_model: Path
) -> None:
    active = activate(run_dir, b"activated through the admin API")
    default_model.write_bytes(b"dropped into binary/ later")
    choice = choose(None, run_dir=run_dir, key_file=run_dir / "signing-key")
    assert choice.boot_model == "active"
    assert choice.says == (
        f"serving the active version {active[:12]} (kept across restarts); {default_model} "
        f"holds {sha(default_model.read_bytes())[:12]}, which is not served: "
        f"`make run MODEL={default_model}` serves it"
    )


def test_a_model_given_wins_over_the_active_version(run_dir: Path, tmp_path: Path) -> None:
    active = activate(run_dir, b"the active one")
    mine = user_pickle(tmp_path / "user")
    choice = choose(mine, run_dir=run_dir, key_file=run_dir / "signing-key")
    assert choice.boot_model == "model_path"
    assert choice.says.endswith(
        f"; it replaces the active version {active[:12]} "
        "(`python -m service rollback` returns to it)"
    )


def test_the_demo_never_lands_over_files_someone_put_in_binary(
    run_dir: Path, default_model: Path
) -> None:
    schema = default_model.with_suffix(".schema.json")
    schema.write_text("theirs")
    refusal = re.escape("holds pipeline.schema.json but no pipeline.pkl")
    with pytest.raises(ChoiceError, match=refusal):
        choose(None, run_dir=run_dir, key_file=run_dir / "signing-key")
    assert schema.read_text() == "theirs"
    assert not default_model.exists()
