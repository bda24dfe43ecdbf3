"""The Swagger UI page: its scripts, styles and icons come from this server, and no other
name reaches the disk."""

from __future__ import annotations

from flask.testing import FlaskClient

from service.http import docs


def test_the_docs_page_loads_swagger_ui_from_this_server(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert "http" not in html  # nothing from a CDN
    for name, mimetype in docs.ASSETS.items():
        assert f"/docs/{name}" in html
        asset = client.get(f"/docs/{name}")
        assert (asset.status_code, asset.mimetype) == (200, mimetype), name
        assert asset.data
    assert b"/openapi.json" in client.get("/docs/initializer.js").data


def test_an_unknown_docs_asset_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/docs/../../etc/passwd")
    assert response.status_code == 404
    response = client.get("/docs/secret.js")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
