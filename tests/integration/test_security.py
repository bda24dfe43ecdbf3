"""What the public listener must never give away, and the headers it always sends (issue 6)."""

from __future__ import annotations

import hashlib
import http.client
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy.stack import Stack
from tests.admin_routes import ADMIN_ROUTE_IDS, ADMIN_ROUTES
from tests.integration.conftest import ADMIN_TOKEN, BODY_LIMIT

VALID = (
    b'{"data":{"age":[41],"income":[52000.0],"debt_ratio":[0.31],'
    b'"region":["east"],"employment":["salaried"]}}'
)
DEEP_OUTPUT = VALID[:-1] + b',"output":' + b"[" * 1000 + b"0" + b"]" * 1000 + b"}"
"""Reached the 500 path (RecursionError while describing the value) before it was fixed."""
JSON = {"Content-Type": "application/json"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
SOFTWARE = ("gunicorn", "werkzeug", "flask", "python", "nginx/", "x-powered-by")
LEAKS = ("Traceback", 'File "', "/work/", "site-packages", ".py:", "<html", "<!doctype")


@dataclass(frozen=True)
class Call:
    """One request to the public listener and the status it must get."""

    id: str
    status: int
    method: str = "GET"
    path: str = "/healthz"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def send(
    port: int, call: Call, headers: dict[str, str] | None = None, ca: Path | None = None
) -> Answer:
    """The request exactly as written (http.client does not normalise paths); over TLS when
    ``ca`` (the certificate to trust) is given."""
    connection = (
        http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        if ca is None
        else http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=20, context=ssl.create_default_context(cafile=ca)
        )
    )
    try:
        connection.request(call.method, call.path, body=call.body, headers=headers or call.headers)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def artifact_sha(stack_model: Path) -> str:
    return hashlib.sha256(stack_model.read_bytes()).hexdigest()


KINDS = [
    Call("200-json", 200),
    Call("200-prediction", 200, "POST", "/model/predict", JSON, VALID),
    Call("download", 200, path="/model/download"),
    Call("download-range", 206, path="/model/download", headers={"Range": "bytes=0-9"}),
    Call("304-not-modified", 304, path="/model/download", headers={"If-None-Match": "SHA"}),
    Call("400-app-malformed", 400, "POST", "/model/predict", JSON, b"{"),
    Call("400-app-deep-output", 400, "POST", "/model/predict", JSON, DEEP_OUTPUT),
    Call("401-admin", 401, path="/admin/models"),
    Call("403-admin-wrong-token", 403, path="/admin/models", headers={"Authorization": "Bearer x"}),
    Call("404-app", 404, path="/nowhere"),
    Call("404-nginx-metrics", 404, path="/metrics"),
    Call("405-app", 405, "PUT", "/model/predict", JSON, VALID),
    Call("413-nginx", 413, "POST", "/model/predict", JSON, b"[" + b"1," * BODY_LIMIT + b"1]"),
    Call("415-app", 415, "POST", "/model/predict", {"Content-Type": "text/plain"}, VALID),
    Call("422-app", 422, "POST", "/model/predict", JSON, VALID.replace(b"[41]", b'["x"]')),
]


@pytest.fixture(scope="module", params=["http", "https"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def answers(transport: str, stack: Stack, stack_model: Path) -> dict[str, Answer]:
    """Every response kind once, over plain HTTP and over TLS (the same locations, the
    same headers, plus HSTS); the tests below read the same answers."""
    sha = artifact_sha(stack_model)
    tls = stack.config.tls
    assert tls is not None, "the shared stack listens with TLS too"
    port, ca = (stack.config.port, None) if transport == "http" else (tls.port, tls.cert)
    result = {}
    for call in KINDS:
        headers = {k: v.replace("SHA", f'"{sha}"') for k, v in call.headers.items()}
        result[call.id] = send(port, call, headers, ca)
    return result


@pytest.mark.parametrize("call", KINDS, ids=lambda c: c.id)
def test_every_response_kind_has_the_security_headers(
    answers: dict[str, Answer], call: Call
) -> None:
    """nosniff, DENY, no-referrer and a closed CSP on success, errors, 304 and downloads."""
    answer = answers[call.id]
    assert answer.status == call.status
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, name


@pytest.mark.parametrize("call", KINDS, ids=lambda c: c.id)
def test_hsts_is_sent_over_tls_only(answers: dict[str, Answer], call: Call, transport: str) -> None:
    """Over TLS on every response kind; never over plain HTTP, where it means nothing."""
    hsts = answers[call.id].headers.get("Strict-Transport-Security")
    assert hsts == ("max-age=31536000" if transport == "https" else None)


@pytest.mark.parametrize("call", KINDS, ids=lambda c: c.id)
def test_no_header_names_the_server_software(answers: dict[str, Answer], call: Call) -> None:
    """`Server: nginx` without a version; nothing says gunicorn, Werkzeug or Python."""
    answer = answers[call.id]
    assert answer.headers.get_all("Server") == ["nginx"]
    text = "\n".join(f"{k}: {v}" for k, v in answer.headers.items()).lower()
    assert not [word for word in SOFTWARE if word in text]
    assert "X-Accel-Redirect" not in answer.headers


@pytest.mark.parametrize("call", [c for c in KINDS if c.status >= 400], ids=lambda c: c.id)
def test_error_bodies_leak_no_trace_path_or_version(
    answers: dict[str, Answer], call: Call, stack: Stack, stack_model: Path
) -> None:
    """An error names the problem; never a traceback, a file, a library or an HTML page."""
    answer = answers[call.id]
    assert answer.headers["Content-Type"] == "application/json"
    text = answer.body.decode()
    assert answer.status < 500
    forbidden = (*LEAKS, *SOFTWARE, str(stack.run_dir), str(stack_model.parent))
    assert [word for word in forbidden if word.lower() in text.lower()] == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/usage", "/model"])
def test_public_documents_name_no_file_path(stack: Stack, stack_model: Path, path: str) -> None:
    """Metadata and usage describe the model, not where the server keeps it."""
    text = send(stack.config.port, Call(path, 200, path=path)).body.decode()
    for fragment in ("/work/", "site-packages", "/tmp/", str(stack.run_dir), str(stack_model)):
        assert fragment not in text


@pytest.mark.parametrize(
    "call",
    [
        Call("unknown-route", 404, path="/nowhere"),
        Call("debugger-resource", 404, path="/?__debugger__=yes&cmd=resource&f=debugger.js"),
        Call("debugger-pin", 200, path="/model?__debugger__=yes&cmd=printpin&s=x"),
        Call("debugger-console", 404, path="/console"),
        Call("former-500-path", 400, "POST", "/model/predict", JSON, DEEP_OUTPUT),
    ],
    ids=lambda c: c.id,
)
def test_flask_debug_is_off(stack: Stack, call: Call) -> None:
    """With debug on, these would answer HTML (the Werkzeug debugger, its console, a trace)."""
    answer = send(stack.config.port, call)
    assert answer.status == call.status  # /model answers its metadata: the query is ignored
    assert answer.headers["Content-Type"] == "application/json"
    text = answer.body.decode().lower()
    assert [word for word in ("debugger", "werkzeug", "traceback", "<html") if word in text] == []


@pytest.mark.parametrize(
    ("method", "path"),
    ADMIN_ROUTES,
    ids=ADMIN_ROUTE_IDS,
)
@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Basic YWRtaW46YWRtaW4=", 401), ("Bearer ", 401), ("Bearer wrong", 403)],
    ids=["no-token", "basic-auth", "empty-bearer", "wrong-token"],
)
def test_admin_api_needs_the_token_on_the_public_listener(
    stack: Stack, method: str, path: str, authorization: str | None, status: int
) -> None:
    """Without the bearer token the admin API refuses before it reads or changes anything."""
    headers = {"Content-Type": "application/octet-stream"}
    if authorization is not None:
        headers["Authorization"] = authorization
    answer = send(stack.config.port, Call(path, status, method, path, headers, b"x"))
    assert answer.status == status
    code = "unauthorized" if status == 401 else "forbidden"
    assert f'"code":"{code}"' in answer.body.decode()
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_admin_api_answers_with_the_token(stack: Stack) -> None:
    """The 401s above are the token check, not an admin API that is simply absent."""
    call = Call("list", 200, path="/admin/models")
    answer = send(stack.config.port, call, {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status == 200
    assert b'"versions"' in answer.body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/metrics/"),
        ("GET", "/Metrics"),
        ("GET", "/./metrics"),
        ("GET", "/model/../metrics"),
        ("GET", "/metrics%2F"),
        ("GET", "/metrics;x"),
        ("HEAD", "/metrics"),
        ("POST", "/metrics"),
    ],
)
def test_metrics_are_not_on_the_public_listener(stack: Stack, method: str, path: str) -> None:
    """Metrics name the model's traffic; only the internal listener serves them."""
    answer = send(stack.config.port, Call(path, 404, method, path))
    assert answer.status == 404
    assert b"model_predicted_rows_total" not in answer.body
    assert b"# HELP" not in answer.body


@pytest.mark.parametrize("path", ["/admin/models", "/model/predict", "/healthz"])
def test_internal_listener_serves_metrics_only(stack: Stack, path: str) -> None:
    """The metrics listener is no back door to the API or the admin API."""
    port = int(stack.metrics_url.rsplit(":", 1)[1].split("/")[0])
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert send(port, Call(path, 404, path=path), headers).status == 404
    assert send(port, Call("metrics", 200, path="/metrics")).status == 200
