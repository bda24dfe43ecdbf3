"""nginx's TLS listener (TLS_CERT_FILE, TLS_KEY_FILE): real clients against the shared stack,
which listens with TLS beside plain HTTP; test_security.py runs its header checks over both."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from deploy.processes import free_port
from deploy.stack import TLS, Stack
from tests.integration.conftest import start_stack

LEGACY = "DEFAULT@SECLEVEL=0"
"""Lets OpenSSL 3's client offer TLS 1.0 and 1.1 at all: a refusal is then the server's."""


def tls_of(stack: Stack) -> TLS:
    assert stack.config.tls is not None, "the shared stack listens with TLS too"
    return stack.config.tls


def handshake(stack: Stack, *flags: str) -> subprocess.CompletedProcess[str]:
    tls = tls_of(stack)
    command = ["openssl", "s_client", "-connect", f"127.0.0.1:{tls.port}", "-CAfile"]
    return subprocess.run(
        [*command, str(tls.cert), "-verify_return_error", *flags],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_curl_trusting_the_certificate_gets_readyz(stack: Stack) -> None:
    tls = tls_of(stack)
    answer = subprocess.run(
        ["curl", "-sS", "--cacert", str(tls.cert), f"https://127.0.0.1:{tls.port}/readyz"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert answer.returncode == 0, answer.stderr
    assert '"status":"ready"' in answer.stdout.replace(" ", "")


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_tls_1_2_and_1_3_handshake(stack: Stack, version: str) -> None:
    done = handshake(stack, version)
    assert done.returncode == 0, done.stdout[-500:] + done.stderr[-500:]
    assert "Verify return code: 0 (ok)" in done.stdout


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_tls_1_0_and_1_1_handshakes_fail(stack: Stack, version: str) -> None:
    done = handshake(stack, version, "-cipher", LEGACY)
    assert done.returncode != 0, done.stdout[-500:]
    assert "alert protocol version" in done.stderr, done.stderr[-500:]  # the server refused


def test_a_prediction_over_tls_equals_plain_http(stack: Stack) -> None:
    tls = tls_of(stack)
    body = requests.get(stack.base_url + "/usage", timeout=30).json()["predict"]["example_request"]
    plain = requests.post(stack.base_url + "/model/predict", json=body, timeout=30)
    secure = requests.post(
        f"https://127.0.0.1:{tls.port}/model/predict", json=body, verify=tls.cert, timeout=30
    )
    assert secure.status_code == plain.status_code == 200
    assert secure.json() == plain.json()


@pytest.fixture(scope="module")
def redirecting(
    stack_model: Path, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A stack whose plain listener sends everything but the probes to TLS."""
    tls = tls_of(stack)
    listener = TLS(free_port(), tls.cert, tls.key, redirect=True)
    with start_stack(stack_model, tmp_path_factory.mktemp("redirect"), listener) as running:
        yield running


def test_tls_redirect_sends_plain_http_to_tls_but_for_probes(redirecting: Stack) -> None:
    tls = tls_of(redirecting)
    moved = requests.get(redirecting.base_url + "/usage?x=1", allow_redirects=False, timeout=30)
    assert moved.status_code == 308
    assert moved.headers["Location"] == f"https://127.0.0.1:{tls.port}/usage?x=1"
    for probe in ("/healthz", "/readyz"):
        assert requests.get(redirecting.base_url + probe, timeout=30).status_code == 200
    followed = requests.get(redirecting.base_url + "/usage", verify=tls.cert, timeout=30)
    assert followed.status_code == 200 and followed.url.startswith("https://")
