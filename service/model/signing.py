"""Artifact signatures: HMAC-SHA256 over the artifact's raw bytes, checked before unpickling.

A pickle is code. The signature proves an artifact was packed by someone who
holds the operator's key, and it is checked on the bytes alone, so nothing of
an unsigned or altered artifact ever runs. Signatures are lowercase hex, kept
beside the artifact as ``<artifact>.sig`` or sent in ``X-Model-Signature``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from service.errors import SignatureInvalid, SignatureMissing

HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def load_key(path: Path) -> bytes:
    """The HMAC key held in a key file.

    Surrounding whitespace is not part of the key: ``echo key > file`` and editors add a
    trailing newline, and a key read with it signs differently from the server, which
    strips it. Every route (server settings, CLI, training scripts) reads keys here.
    """
    return path.read_text().strip().encode()


def signature_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".sig")


class Signer:
    """HMAC-SHA256 that can be fed in chunks, so uploads are verified while streamed."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def hexdigest(self) -> str:
        return self._mac.hexdigest()


def sign(data: bytes, key: bytes) -> str:
    signer = Signer(key)
    signer.update(data)
    return signer.hexdigest()


def check(expected: str, signature: str | None, *, what: str, fix: str = "") -> None:
    """Raise unless ``signature`` is the expected one (constant-time comparison).

    ``fix`` ends the message with what the reader can do about it."""
    if not signature:
        raise SignatureMissing(
            f"{what} is not signed; a signing key is configured, so only signed artifacts load{fix}"
        )
    given = signature.strip().lower()
    if not HEX_SHA256.match(given) or not hmac.compare_digest(given, expected):
        raise SignatureInvalid(
            f"{what}: the signature does not match its bytes under the configured key "
            f"(altered, or signed with another key){fix}"
        )


def sign_command(artifact: Path, key_file: Path | str = "<your key file>") -> str:
    """The command that signs an artifact on disk with the operator's key."""
    return f"python -m service sign {artifact} --key-file {key_file}"


def verify_file(
    data: bytes, artifact: Path, key: bytes, key_file: Path | str = "<your key file>"
) -> None:
    """Check the ``.sig`` beside an artifact against its bytes; the error's fix names
    ``key_file`` when the caller knows which file holds the key."""
    sig_file = signature_path(artifact)
    signature = sig_file.read_text() if sig_file.exists() else None
    fix = f"; if you trust it, sign it: {sign_command(artifact, key_file)}"
    check(sign(data, key), signature, what=str(artifact), fix=fix)


def write_signature(artifact: Path, key: bytes) -> Path:
    """Sign an artifact on disk; returns the ``.sig`` path."""
    target = signature_path(artifact)
    target.write_text(sign(artifact.read_bytes(), key) + "\n")
    return target
