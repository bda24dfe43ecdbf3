"""The app's JSON: response models rendered through orjson exactly as pydantic would
render them, without its copy of long prediction lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from flask import Flask
from pydantic import BaseModel

from service.errors import REQUEST_ID_PATTERN, ErrorBody
from service.http.app import to_json


def bodies(app: Flask) -> dict[str, BaseModel]:
    """One of each kind of body: validated, unvalidated, nested, with nulls and unset fields."""
    runtime = app.extensions["runtime"]
    model = runtime.model
    labels = np.array(["approved", "declined"])
    with_proba = model.render(labels, np.array([[0.9, 0.1], [0.2, 0.8]]))
    return {
        "metadata": model.metadata(),
        "usage": runtime.usage("http://api.test/"),
        "versions": app.extensions["control"].versions(),
        "prediction": model.render(labels, None),
        "probabilities": with_proba,
        "error": ErrorBody.of("not_found", "no such resource", {}, None),
    }


@pytest.mark.parametrize(
    "kind", ["metadata", "usage", "versions", "prediction", "probabilities", "error"]
)
def test_response_models_render_as_pydantic_serialises_them(app: Flask, kind: str) -> None:
    body = bodies(app)[kind]
    assert orjson.loads(to_json(body)) == body.model_dump(mode="json", exclude_unset=True)


def test_unset_fields_are_left_out_and_set_nulls_kept(app: Flask) -> None:
    rendered = {kind: orjson.loads(to_json(body)) for kind, body in bodies(app).items()}
    assert list(rendered["prediction"]) == ["predictions", "model", "rows"]
    assert list(rendered["probabilities"]) == [
        "predictions",
        "probabilities",
        "classes",
        "model",
        "rows",
    ]
    assert rendered["error"]["error"]["request_id"] is None


def test_anything_else_is_still_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        to_json({"value": object()})


def test_nginx_keeps_the_request_ids_the_app_keeps() -> None:
    """A client's X-Request-ID survives nginx exactly when the app would keep it too."""
    maps = (Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "maps.conf").read_text()
    assert f'"~{REQUEST_ID_PATTERN}" $http_x_request_id;' in maps
