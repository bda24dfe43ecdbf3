"""Signatures: HMAC over the raw bytes, checked before any byte is unpickled."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import SignatureInvalid, SignatureMissing
from service.model import predictor, signing
from tests import artifacts

KEY = b"k" * 32


def test_sign_is_hmac_sha256_hex() -> None:
    signature = signing.sign(b"abc", KEY)
    assert len(signature) == 64
    assert signature == signing.sign(b"abc", KEY)
    assert signature != signing.sign(b"abd", KEY)
    assert signature != signing.sign(b"abc", b"other")


@pytest.mark.parametrize(
    ("signature", "error"),
    [
        (None, SignatureMissing),
        ("", SignatureMissing),
        ("zz", SignatureInvalid),
        ("0" * 64, SignatureInvalid),
    ],
)
def test_check_refuses_missing_and_wrong(signature: str | None, error: type) -> None:
    with pytest.raises(error):
        signing.check(signing.sign(b"abc", KEY), signature, what="x")


def test_check_accepts_upper_case_and_whitespace() -> None:
    signing.check(signing.sign(b"abc", KEY), " " + signing.sign(b"abc", KEY).upper(), what="x")


def test_unsigned_or_altered_artifacts_never_unpickle(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(artifacts.marker_pickle(marker))
    with pytest.raises(SignatureMissing):
        predictor.load(path, key=KEY)
    signing.write_signature(path, KEY)
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(SignatureInvalid):
        predictor.load(path, key=KEY)
    assert not marker.exists()


def test_a_signed_artifact_loads(tmp_path: Path, model_path: Path) -> None:
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(model_path.read_bytes())
    signing.write_signature(path, KEY)
    assert predictor.load(path, key=KEY).sha256 == predictor.load(model_path).sha256


def test_a_key_file_reads_the_same_on_every_route(tmp_path: Path) -> None:
    """`echo key > file` adds a newline that is not part of the key, wherever it is read."""
    from click.testing import CliRunner

    from service.cli.commands import cli
    from service.settings import Settings

    key_file = tmp_path / "key"
    key_file.write_text("the-key\n")
    artifact = tmp_path / "a.pkl"
    artifact.write_bytes(b"bytes")
    assert signing.load_key(key_file) == b"the-key"
    assert Settings.from_env({"MODEL_SIGNING_KEY_FILE": str(key_file)}).key == b"the-key"
    result = CliRunner().invoke(cli, ["sign", str(artifact), "--key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    assert signing.signature_path(artifact).read_text().strip() == signing.sign(
        b"bytes", b"the-key"
    )


def test_an_unsigned_file_is_refused_with_the_command_that_signs_it(tmp_path: Path) -> None:
    artifact = tmp_path / "a.pkl"
    artifact.write_bytes(b"bytes")
    with pytest.raises(SignatureMissing) as missing:
        signing.verify_file(b"bytes", artifact, KEY)
    assert missing.value.message.endswith(
        f"sign it: python -m service sign {artifact} --key-file <your key file>"
    )
