"""The API's documentation, served: the OpenAPI document (``service.http.openapi``
generates it) and Swagger UI, a page for people.

The page is Swagger UI from the assets bundled in the ``flask-swagger-ui`` wheel (a
Swagger UI 5 build, which renders OpenAPI 3.1), served by this blueprint: no CDN.
"""

from __future__ import annotations

import importlib.resources
from functools import cache

from flask import Blueprint, Response, current_app, url_for
from werkzeug.exceptions import NotFound

from service.http.openapi import OpenAPIDocument, Reply, document, operation, parameter

bp = Blueprint("openapi", __name__)
"""Named ``openapi``: its endpoints name the operations (``openapi.spec``...) in the document."""

SWAGGER_UI = ("flask_swagger_ui", "dist")
"""Where the flask-swagger-ui wheel keeps its Swagger UI build."""
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "initializer.js": "text/javascript",
}
"""The page's files and their media types; any other name is a 404, so no path reaches disk."""
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
"""Swagger UI needs its own scripts, styles and the document; nothing from elsewhere."""


@bp.get("/openapi.json", endpoint="spec")
@operation(
    "documentation",
    "This document (OpenAPI 3.1), generated from the served app and model",
    {200: OpenAPIDocument},
)
def spec_route() -> OpenAPIDocument:
    return document(current_app)


@bp.get("/docs", endpoint="docs")
@operation(
    "documentation",
    "This document for people (Swagger UI)",
    {200: Reply("An HTML page.", media=("text/html",))},
)
def docs_route() -> Response:
    asset = {name: url_for("openapi.docs_asset", name=name) for name in ASSETS}
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>model-serving API</title>
<link rel="stylesheet" href="{asset["swagger-ui.css"]}">
<link rel="icon" type="image/png" sizes="32x32" href="{asset["favicon-32x32.png"]}">
<link rel="icon" type="image/png" sizes="16x16" href="{asset["favicon-16x16.png"]}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{asset["swagger-ui-bundle.js"]}"></script>
<script src="{asset["initializer.js"]}"></script>
</body>
</html>
"""
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response


@bp.get("/docs/<name>", endpoint="docs_asset")
@operation(
    "documentation",
    "A script, style sheet or icon of the documentation page",
    {
        200: Reply("The asset.", media=tuple(sorted(set(ASSETS.values())))),
        404: "No such asset.",
    },
    parameters=(parameter("path", "name", {"enum": sorted(ASSETS)}),),
)
def docs_asset_route(name: str) -> Response:
    mimetype = ASSETS.get(name)
    if mimetype is None:
        raise NotFound(f"no documentation asset {name!r}")
    body = initializer() if name == "initializer.js" else swagger_ui_file(name)
    return Response(body, mimetype=mimetype)


def initializer() -> bytes:
    """Swagger UI's start-up, as a file: the page's policy allows no inline script."""
    spec_url = url_for("openapi.spec")
    return (
        "window.onload = function () {\n"
        "  window.ui = SwaggerUIBundle({\n"
        f'    url: "{spec_url}", dom_id: "#swagger-ui", deepLinking: true,\n'
        '    validatorUrl: null, layout: "BaseLayout",\n'
        "    presets: [SwaggerUIBundle.presets.apis],\n"
        "  });\n"
        "};\n"
    ).encode()


@cache
def swagger_ui_file(name: str) -> bytes:
    """A file of the bundled Swagger UI build, read once per process."""
    package, folder = SWAGGER_UI
    return importlib.resources.files(package).joinpath(folder, name).read_bytes()
