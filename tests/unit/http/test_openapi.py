"""The OpenAPI document: complete, valid OpenAPI 3.1, and true to the code it describes.

Completeness is checked against Flask's ``url_map`` (a new route without documentation
fails here), validity with openapi-spec-validator, and truth by comparing the documented
schemas with what the service really accepts and answers.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import OpenAPIV31SpecValidator
from werkzeug.routing import Rule

from service.errors import ErrorBody, ServiceError
from service.http import openapi
from service.http.app import create_app
from service.model import payload, signing
from service.model.predictor import OUTPUTS
from service.model.schema import Column, Schema
from service.settings import Settings
from tests.unit.conftest import ADMIN_TOKEN, SIGNING_KEY

ROW = {"age": 30, "income": 42000.0, "debt_ratio": 0.2, "region": "north", "employment": "salaried"}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def validator(document: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for one component schema, its ``$ref``s resolved inside the document."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for item in document["paths"].values()
        for operation in item.values()
    }


# ---- complete and valid -----------------------------------------------------------------------


def test_every_registered_view_declares_its_operation(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        assert openapi.declaration_of(app, rule).responses, rule.endpoint


def test_every_route_and_method_is_an_operation(app: Flask, document: dict[str, Any]) -> None:
    for rule in app.url_map.iter_rules():
        item = document["paths"][openapi.openapi_path(rule)]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in item, f"{method} {rule.rule}"
            parameters = item[method.lower()].get("parameters", [])
            assert rule.arguments <= {p["name"] for p in parameters if p["in"] == "path"}


def test_a_route_without_documentation_breaks_the_document(app: Flask) -> None:
    app.add_url_rule("/undocumented", "undocumented", lambda: "")
    with pytest.raises(openapi.UndocumentedRoute, match="undocumented"):
        openapi.document(app)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(document).validate()


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_path_templates_follow_flask_rules() -> None:
    assert openapi.openapi_path(Rule("/models/<sha256>")) == "/models/{sha256}"
    assert openapi.openapi_path(Rule("/files/<path:name>/x")) == "/files/{name}/x"


# ---- errors and security -----------------------------------------------------------------------


def test_every_operation_documents_its_failures(document: dict[str, Any]) -> None:
    for operation_id, operation in operations(document).items():
        responses = operation["responses"]
        assert {"500", "503"} <= set(responses), operation_id
        for status, response in responses.items():
            assert "X-Request-ID" in response["headers"], (operation_id, status)
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema in error_shapes(operation_id, status), (operation_id, status)


PROTOCOL_ERRORS = {"v2.": "V2Error", "mlflow.": "MLflowError"}


def error_shapes(operation_id: str, status: str) -> list[dict[str, Any]]:
    """Ours; on a protocol's route, the protocol's or ours (nginx's pages, which any route
    can meet, are ours)."""
    ours = {"$ref": f"#/components/schemas/Error{status}"}
    for prefix, name in PROTOCOL_ERRORS.items():
        if operation_id.startswith(prefix):
            return [{"anyOf": [{"$ref": f"#/components/schemas/{name}"}, ours]}]
    return [ours]


def test_prediction_failures_are_documented(document: dict[str, Any]) -> None:
    responses = operations(document)["api.predict.post"]["responses"]
    assert {"400", "413", "415", "422", "500", "503"} <= set(responses)
    assert {"404", "405"} <= {
        name.removeprefix("Error") for name in document["components"]["schemas"]
    }
    assert "Allow" in document["components"]["responses"]["MethodNotAllowed"]["headers"]


def test_admin_operations_need_the_bearer_token(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["adminToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    admin = {k: v for k, v in operations(document).items() if k.startswith("admin.")}
    assert len(admin) == 4
    for operation_id, operation in admin.items():
        assert operation["security"] == [{"adminToken": []}]
        assert {"401", "403"} <= set(operation["responses"]), operation_id
    assert {"404", "409", "507"} <= set(admin["admin.delete.delete"]["responses"])
    assert {"422", "507"} <= set(admin["admin.upload.post"]["responses"])
    assert "security" not in operations(document)["api.download"]


def test_error_codes_come_from_the_exception_tree() -> None:
    assert "schema_violation" in openapi.error_codes(422)
    assert "signature_invalid" in openapi.error_codes(422)
    assert {"version_not_found", "not_found"} <= set(openapi.error_codes(404))
    assert {"too_many_rows", "request_entity_too_large"} <= set(openapi.error_codes(413))
    assert "method_not_allowed" in openapi.error_codes(405)
    assert "store_unavailable" in openapi.error_codes(507)


ROOT = Path(__file__).resolve().parents[3]
NGINX_PAGE = re.compile(r"return (\d{3}) '(\{.*\})';")
"""An nginx error page: ``return <status> '<JSON body>';`` (deploy/nginx/errors.conf)."""
NGINX_MAP = re.compile(r"^map \S+ \$(\w+) \{\n(.*?)^\}", re.M | re.S)
NGINX_MAP_ENTRY = re.compile(r'^\s*("[^"]*"|\S+)\s+"?(.*?)"?;$', re.M)


def nginx_maps() -> dict[str, dict[str, str]]:
    """maps.conf's maps: variable name -> {source value: value}."""
    text = (ROOT / "deploy" / "nginx" / "maps.conf").read_text()
    return {name: dict(NGINX_MAP_ENTRY.findall(body)) for name, body in NGINX_MAP.findall(text)}


def nginx_pages() -> list[tuple[int, str]]:
    """Each JSON page nginx answers itself, with its variables given sample values; a page
    built from maps (``$unavailable_code``) once per case the maps share."""
    text = (ROOT / "deploy" / "nginx" / "errors.conf").read_text()
    samples = {"$req_id": "0123456789abcdef", "${MAX_BODY_BYTES}": str(Settings.max_body_bytes)}
    maps = nginx_maps()
    pages = []
    for status, body in NGINX_PAGE.findall(text):
        for variable, value in samples.items():
            body = body.replace(variable, value)
        used = [name for name in maps if f"${name}" in body]
        cases = set().union(*(maps[name] for name in used)) if used else {""}
        for case in sorted(cases):
            page = body
            for name in used:
                page = page.replace(f"${name}", maps[name][case])
            pages.append((int(status), page))
    return pages


def test_nginx_error_pages_are_the_error_shape_with_the_codes_documented() -> None:
    """nginx's pages are hand-written JSON: each must parse as the one error shape, and
    carry the code the document lists for its status (the codes are read from here)."""
    found: dict[int, set[str]] = {}
    for status, body in nginx_pages():
        error = ErrorBody.model_validate_json(body).error
        assert error.code in openapi.error_codes(status), (status, error.code)
        found.setdefault(status, set()).add(error.code)
    assert found == {status: set(codes) for status, codes in openapi.NGINX_CODES.items()}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/nowhere", {}, 404),
        ("put", "/healthz", {}, 405),
        ("post", "/model/predict", {"data": "x", "content_type": "text/plain"}, 415),
        ("post", "/model/predict", {"data": "{", "content_type": "application/json"}, 400),
        ("post", "/model/predict", {"json": {"data": {"age": [1]}}}, 422),
        ("post", "/model/predict", {"json": {"data": [ROW] * 51}}, 413),
        ("get", "/admin/models", {}, 401),
        ("get", "/admin/models", {"headers": {"Authorization": "Bearer nope"}}, 403),
    ],
)
def test_real_errors_match_their_documented_schema(
    client: FlaskClient, document: dict[str, Any], method: str, path: str, kwargs: Any, status: int
) -> None:
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    validator(document, f"Error{status}").validate(response.get_json())


# ---- the prediction request and response, from the loaded model --------------------------------


def test_the_request_schema_is_the_served_model(document: dict[str, Any]) -> None:
    request = document["components"]["schemas"]["PredictionRequest"]
    columns, records = request["properties"]["data"]["oneOf"]
    assert columns["required"] == list(ROW)
    assert columns["properties"]["age"]["items"]["type"] == "integer"
    assert columns["properties"]["income"]["items"]["type"] == "number"
    assert columns["properties"]["employment"]["items"]["enum"] == [
        "salaried",
        "self-employed",
        "unemployed",
    ]
    assert "enum" not in columns["properties"]["region"]["items"]  # unknown ones are ignored
    assert records["minItems"] == 1 and records["maxItems"] == 50
    assert records["items"]["required"] == list(ROW)
    assert request["properties"]["output"]["enum"] == ["predict", "proba", "both"]
    assert request["additionalProperties"] is False
    example = operations(document)["api.predict.post"]["requestBody"]["content"]
    validator(document, "PredictionRequest").validate(example["application/json"]["example"])


@pytest.mark.parametrize("output", ["predict", "both"])
def test_real_predictions_match_the_response_schema(
    client: FlaskClient, document: dict[str, Any], output: str
) -> None:
    response = client.post("/model/predict", json={"data": [ROW, ROW], "output": output})
    assert response.status_code == 200
    validator(document, "Prediction").validate(response.get_json())


def test_a_wrong_prediction_response_is_caught(document: dict[str, Any]) -> None:
    wrong = {"predictions": ["maybe"], "model": {"sha256": "0" * 64}, "rows": 1}
    assert not validator(document, "Prediction").is_valid(wrong)


def response_validator(
    document: dict[str, Any], operation_id: str, status: int
) -> jsonschema.Draft202012Validator:
    """A validator for the JSON body an operation documents for ``status``."""
    content = operations(document)[operation_id]["responses"][str(status)]["content"]
    return jsonschema.Draft202012Validator(
        {**content["application/json"]["schema"], "components": document["components"]}
    )


@pytest.mark.parametrize(
    ("operation_id", "path"),
    [
        ("api.health", "/healthz"),
        ("api.ready", "/readyz"),
        ("api.usage", "/usage"),
        ("api.model", "/model"),
        ("openapi.spec", "/openapi.json"),
        ("admin.list_versions", "/admin/models"),
    ],
)
def test_every_json_body_read_matches_its_documented_schema(
    client: FlaskClient, document: dict[str, Any], operation_id: str, path: str
) -> None:
    response = client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert (response.status_code, response.mimetype) == (200, "application/json")
    response_validator(document, operation_id, 200).validate(response.get_json())


def test_admin_answers_match_their_documented_schemas(
    client: FlaskClient, document: dict[str, Any], regressor_path: Path
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    data = regressor_path.read_bytes()
    signature = signing.sign(data, SIGNING_KEY.encode())
    uploaded = client.post(
        "/admin/models",
        data=data,
        headers={
            **admin,
            "Content-Type": "application/octet-stream",
            "X-Model-Signature": signature,
        },
    )
    response_validator(document, "admin.upload.post", 201).validate(uploaded.get_json())
    first = client.get("/model").get_json()["sha256"]
    sha256 = uploaded.get_json()["sha256"]
    activated = client.post(f"/admin/models/{sha256}/activate", headers=admin)
    response_validator(document, "admin.activate.post", 200).validate(activated.get_json())
    deleted = client.delete(f"/admin/models/{first}", headers=admin)
    response_validator(document, "admin.delete.delete", 200).validate(deleted.get_json())
    assert deleted.get_json() == {"deleted": first}


def test_a_regressor_documents_numbers_and_no_probabilities(
    regressor_path: Path, tmp_path: Path
) -> None:
    target = tmp_path / "pipeline.pkl"
    target.write_bytes(regressor_path.read_bytes())
    app = create_app(Settings(model_path=target, allow_unsigned=True, max_rows=7))
    client = app.test_client()
    document = client.get("/openapi.json").get_json()
    request = document["components"]["schemas"]["PredictionRequest"]
    assert request["properties"]["output"]["enum"] == ["predict"]
    columns = request["properties"]["data"]["oneOf"][0]
    assert columns["required"] == ["size", "rooms", "city"]
    assert "enum" not in columns["properties"]["city"]["items"]  # handle_unknown="ignore"
    response = document["components"]["schemas"]["Prediction"]
    assert "probabilities" not in response["properties"]
    body = {"data": [{"size": 50.0, "rooms": 2.0, "city": "nice"}]}
    validator(document, "Prediction").validate(client.post("/model/predict", json=body).get_json())


def test_download_security_follows_the_settings(settings: Settings) -> None:
    guarded = create_app(dataclasses.replace(settings, download_requires_token=True))
    document = guarded.test_client().get("/openapi.json").get_json()
    download = operations(document)["api.download"]
    assert download["security"] == [{"adminToken": []}]
    assert {"401", "403"} <= set(download["responses"])


# ---- the request schema agrees with the validation it documents --------------------------------

COLUMNS = (
    Column("n", kind="number"),
    Column("i", kind="integer", nullable=True),
    Column("b", kind="boolean"),
    Column("c", kind="string", categories=("x", "y")),
    Column("o", kind="string", categories=("p",), unknown_categories=True),
)
GOOD = {"n": 1.5, "i": 2, "b": True, "c": "x", "o": "p"}


def columns_of(*rows: dict[str, Any]) -> dict[str, list[Any]]:
    return {name: [row.get(name) for row in rows] for name in GOOD}


def without(name: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != name}


BODIES: list[tuple[str, Any]] = [
    ("columns", {"data": columns_of(GOOD, GOOD)}),
    ("records", {"data": [GOOD, GOOD]}),
    ("proba", {"data": [GOOD], "output": "proba"}),
    ("bad output", {"data": [GOOD], "output": "all"}),
    ("unknown field", {"data": [GOOD], "extra": 1}),
    ("no data", {"output": "predict"}),
    ("data not a layout", {"data": "rows"}),
    ("no rows", {"data": []}),
    ("no columns", {"data": {}}),
    ("empty columns", {"data": {name: [] for name in GOOD}}),
    ("too many rows", {"data": [GOOD] * 4}),
    ("record not an object", {"data": [GOOD, 3]}),
    ("column not an array", {"data": {**columns_of(GOOD), "n": 1.5}}),
    ("missing column", {"data": {k: v for k, v in columns_of(GOOD).items() if k != "n"}}),
    ("unknown column", {"data": {**columns_of(GOOD), "z": [1]}}),
    ("unknown key in a record", {"data": [{**GOOD, "z": 1}]}),
    ("null where nullable", {"data": [{**GOOD, "i": None}]}),
    ("nullable key left out of one record", {"data": [GOOD, without("i")]}),
    ("nullable key in no record", {"data": [without("i")]}),
    ("required key left out", {"data": [GOOD, without("n")]}),
    ("null where not nullable", {"data": [{**GOOD, "n": None}]}),
    ("integer as number", {"data": [{**GOOD, "n": 3}]}),
    ("integral float as integer", {"data": [{**GOOD, "i": 2.0}]}),
    ("fraction as integer", {"data": [{**GOOD, "i": 2.5}]}),
    ("boolean as number", {"data": [{**GOOD, "n": True}]}),
    ("number as boolean", {"data": [{**GOOD, "b": 1}]}),
    ("string as number", {"data": [{**GOOD, "n": "1.5"}]}),
    ("known category", {"data": [{**GOOD, "c": "y"}]}),
    ("unknown category, rejected", {"data": [{**GOOD, "c": "z"}]}),
    ("unknown category, ignored", {"data": [{**GOOD, "o": "q"}]}),
    ("number as category", {"data": [{**GOOD, "c": 1}]}),
]


def accepted(body: Any, schema: Schema, settings: Settings) -> bool:
    """Whether the service's own request validation takes this body."""
    try:
        payload.parse(
            orjson.dumps(body), schema, max_rows=settings.max_rows, unknown=settings.unknown_columns
        )
    except ServiceError:
        return False
    return True


@pytest.mark.parametrize("unknown", ["reject", "ignore"])
@pytest.mark.parametrize(("case", "body"), BODIES, ids=[case for case, _ in BODIES])
def test_request_schema_accepts_exactly_what_validation_accepts(
    tmp_path: Path, unknown: str, case: str, body: Any
) -> None:
    settings = Settings(
        model_path=tmp_path / "pipeline.pkl",
        max_rows=3,
        unknown_columns=unknown,
        allow_unsigned=True,
    )
    schema = Schema(columns=COLUMNS, example=GOOD, source="test")
    request = openapi.prediction_request(COLUMNS, list(OUTPUTS), settings)
    documented = jsonschema.Draft202012Validator(request).is_valid(body)
    assert documented == accepted(body, schema, settings)


def test_closed_numeric_categories_are_refused_like_the_document_says(tmp_path: Path) -> None:
    columns = (Column("k", kind="number", categories=(1.0, 2.0)),)
    settings = Settings(model_path=tmp_path / "p.pkl", allow_unsigned=True)
    request = openapi.prediction_request(columns, ["predict"], settings)
    body = {"data": {"k": [3.0]}}
    assert not jsonschema.Draft202012Validator(request).is_valid(body)
    schema = Schema(columns=columns, example={"k": 1.0}, source="test")
    assert not accepted(body, schema, settings)
