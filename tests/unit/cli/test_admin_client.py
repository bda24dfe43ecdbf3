"""The admin client against a real HTTP server: the app built by the factory, served on a
loopback port by werkzeug in a thread (no gunicorn, no nginx)."""

from __future__ import annotations

import io
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder

from service.cli.admin_client import AdminClient, ClientError, multipart, token_from_env
from service.http.app import create_app
from service.model import schema, signing
from service.model.predictor import load
from service.settings import Settings
from tests.unit.conftest import ADMIN_TOKEN, SIGNING_KEY


def serve(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app on 127.0.0.1 in a thread; yields its base URL, stops it after."""
    server = make_server("127.0.0.1", 0, app)
    # A short poll interval: shutdown() waits for the loop to notice, 0.5 s by default.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="admin-test-server"
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    yield from serve(create_app(settings))


@pytest.fixture
def client(base_url: str) -> AdminClient:
    return AdminClient(base_url + "/", ADMIN_TOKEN, timeout=60)


@pytest.fixture
def regressor(regressor_path: Path, tmp_path: Path) -> Path:
    """The regressor in a folder of its own, with a schema file beside it."""
    target = tmp_path / "upload" / "pipeline.pkl"
    target.parent.mkdir()
    shutil.copyfile(regressor_path, target)
    inferred = schema.infer(load(target).pipeline)
    target.with_suffix(".schema.json").write_bytes(schema.dumps(inferred))
    return target


def test_serving_names_the_version_or_why_not(client: AdminClient) -> None:
    assert client.serving() == client.versions()["active"]
    gone = AdminClient("http://127.0.0.1:9", ADMIN_TOKEN, timeout=5)
    assert gone.serving().startswith("not ready (cannot reach http://127.0.0.1:9")


def test_versions_lists_the_bootstrap_version(client: AdminClient) -> None:
    listing = client.versions()
    [version] = listing["versions"]
    assert version["source"] == "bootstrap"
    assert (listing["active"], listing["previous"]) == (version["sha256"], None)


def test_upload_with_its_schema_activate_and_roll_back(
    client: AdminClient, base_url: str, regressor: Path
) -> None:
    first = client.versions()["active"]
    signature = signing.sign(regressor.read_bytes(), SIGNING_KEY.encode())
    record = client.upload(regressor, signature)
    assert record["model_type"] == "Ridge"
    assert record["features_diff"]["added"] == ["city", "rooms", "size"]

    activated = client.activate(record["sha256"])
    assert (activated["active"]["sha256"], activated["previous"]) == (record["sha256"], first)
    served = AdminClient(base_url, "").call("GET", "/model")
    assert (served["sha256"], served["schema_source"]) == (record["sha256"], "schema file")

    rolled_back = client.rollback()
    assert (rolled_back["active"]["sha256"], rolled_back["previous"]) == (first, record["sha256"])
    assert client.versions()["active"] == first


def test_an_unsigned_raw_upload_is_refused_with_the_servers_reason(
    client: AdminClient, tmp_path: Path
) -> None:
    bare = tmp_path / "bare.pkl"  # no schema file beside it: sent as the raw body
    bare.write_bytes(b"not even a pickle")
    with pytest.raises(ClientError, match=r"^422 signature_missing: the uploaded artifact"):
        client.upload(bare, None)
    with pytest.raises(ClientError, match=r"^422 signature_invalid: "):
        client.upload(bare, "0" * 64)
    assert len(client.versions()["versions"]) == 1


@pytest.mark.parametrize(
    ("token", "call", "message"),
    [
        ("wrong", lambda c: c.versions(), r"^403 forbidden: "),
        ("", lambda c: c.versions(), r"^401 unauthorized: "),
        (ADMIN_TOKEN, lambda c: c.activate("e" * 64), r"^404 version_not_found: "),
        (ADMIN_TOKEN, lambda c: c.rollback(), r"^no previous version to roll back to$"),
    ],
    ids=["wrong-token", "no-token", "unknown-version", "nothing-to-roll-back"],
)
def test_refusals_are_one_line_client_errors(
    base_url: str, token: str, call: Callable[[AdminClient], Any], message: str
) -> None:
    with pytest.raises(ClientError, match=message):
        call(AdminClient(base_url, token, timeout=10))


def test_an_error_without_the_json_shape_keeps_the_http_status() -> None:
    def bad_gateway(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("502 Bad Gateway", [("Content-Type", "text/html")])
        return [b"<html>nginx says no</html>"]

    for url in serve(bad_gateway):
        with pytest.raises(ClientError, match=r"^502 Bad Gateway$"):
            AdminClient(url, ADMIN_TOKEN, timeout=10).versions()


def test_an_unreachable_server_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ClientError, match=rf"^cannot reach {url}: .*refused"):
        AdminClient(url, ADMIN_TOKEN, timeout=10).versions()


def test_multipart_is_what_a_form_parser_reads(tmp_path: Path) -> None:
    artifact = tmp_path / "pipeline.pkl"
    artifact.write_bytes(b"\x80\x05binary\r\n--not-a-boundary\r\n\x00")
    schema_file = tmp_path / "pipeline.schema.json"
    schema_file.write_text('{"columns": []}')
    body, content_type = multipart({"artifact": artifact, "schema": schema_file})
    builder = EnvironBuilder(
        method="POST", input_stream=io.BytesIO(body), content_type=content_type
    )
    with builder.get_request() as request:  # Flask's own form parser
        files: dict[str, FileStorage] = dict(request.files)
        assert set(files) == {"artifact", "schema"}
        assert files["artifact"].filename == "pipeline.pkl"
        assert files["artifact"].read() == artifact.read_bytes()
        assert files["schema"].read() == schema_file.read_bytes()


def test_the_token_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADMIN_TOKEN_FILE", raising=False)
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    with pytest.raises(ClientError, match="set ADMIN_TOKEN or ADMIN_TOKEN_FILE"):
        token_from_env()
    monkeypatch.setenv("ADMIN_TOKEN", "from-variable")
    assert token_from_env() == "from-variable"
    token_file = tmp_path / "admin-token"
    token_file.write_text("from-file\n")
    monkeypatch.setenv("ADMIN_TOKEN_FILE", str(token_file))
    assert token_from_env() == "from-file", "the file wins, without its newline"


def test_an_unreadable_token_file_names_its_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADMIN_TOKEN_FILE", "missing/admin-token")
    with pytest.raises(ClientError) as caught:
        token_from_env()
    message = str(caught.value)
    assert message.startswith(f"ADMIN_TOKEN_FILE: cannot read {tmp_path}/missing/admin-token: ")
    assert "No such file or directory" in message
    assert caught.value.__cause__ is None
