"""The application factory: load and check the model once, then wire the HTTP layer.

Under gunicorn's ``preload_app`` this runs in the master before it forks, so
every worker inherits the loaded pipeline copy-on-write. It opens no sockets
and starts no threads (that is for ``post_fork``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from flask import Flask, Response, g, request
from flask.json.provider import JSONProvider
from prometheus_flask_exporter import PrometheusMetrics
from werkzeug.exceptions import HTTPException

from service.control import controller
from service.control.store import Store
from service.errors import ServiceError
from service.http import admin_routes, logs, openapi, routes
from service.serving.metrics import LATENCY_BUCKETS, Metrics
from service.serving.runtime import Runtime
from service.settings import Settings

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
"""Request ids we echo and log; anything else is replaced, so headers cannot inject log lines."""


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson: faster rendering of long prediction lists."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        return Response(
            orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), mimetype="application/json"
        )


class ServiceFlask(Flask):
    """Flask, answering ``OPTIONS`` with ``204 No Content`` and its ``Allow`` header rather
    than an empty ``200``, which a client could mistake for an answer."""

    def make_default_options_response(self) -> Response:
        response = super().make_default_options_response()
        response.status_code = 204
        return response


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; raises a ``ModelError`` naming the problem if the model cannot serve."""
    settings = settings or Settings.from_env()
    app = ServiceFlask(__name__, static_folder=None)  # no static files: no /static route
    app.json = OrjsonProvider(app)
    # `//model//predict` is a 404, not a redirect built from the client's Host header.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    logger = logs.configure(settings.log_level)
    if settings.key is None:
        logger.warning("no signing key: artifacts are NOT verified before unpickling")
    store = Store(settings.store_root)
    loaded = controller.boot_model(settings, store)
    metrics = Metrics()
    register_http_metrics(app, metrics)
    runtime = Runtime(loaded, settings, metrics)
    app.extensions["runtime"] = runtime
    app.extensions["control"] = controller.Control(settings, store, runtime, metrics)
    logger.info(
        "model loaded",
        extra={"sha256": loaded.sha256, "path": str(loaded.path), "schema": loaded.schema.source},
    )
    register_request_id(app)
    register_model_gauges(app)
    register_error_handlers(app, metrics)
    app.register_blueprint(routes.bp)
    app.register_blueprint(admin_routes.bp)
    app.register_blueprint(openapi.bp)
    return app


def register_http_metrics(app: Flask, metrics: Metrics) -> None:
    """Request counts and latencies by Flask endpoint, never by raw path, so 404 scans
    cannot explode the series count; they share the model metrics' registry."""
    PrometheusMetrics(
        app,
        registry=metrics.registry,
        group_by="endpoint",
        buckets=LATENCY_BUCKETS,
        default_labels=None,
    )


def register_model_gauges(app: Flask) -> None:
    """Each worker publishes its model gauges on its first request after a fork or a swap
    (prometheus_client gives a forked child fresh, empty files)."""

    @app.before_request
    def publish() -> None:
        app.extensions["runtime"].publish()


def register_request_id(app: Flask) -> None:
    """Use nginx's ``X-Request-ID`` (or make one), log it, and return it to the client."""

    @app.before_request
    def assign() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def echo(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response


def error_response(status: int, code: str, message: str, details: dict[str, Any]) -> Response:
    """The one error shape: ``{"error": {"code", "message", "details", "request_id"}}``."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": g.get("request_id"),
        }
    }
    response = Response(orjson.dumps(body), status=status, mimetype="application/json")
    return response


def register_error_handlers(app: Flask, metrics: Metrics) -> None:
    logger = logs.configure(app.extensions["runtime"].settings.log_level)

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> Response:
        if request.endpoint == "api.predict" and exc.status_code < 500:
            metrics.validation_failures.labels(exc.code).inc()
        response = error_response(exc.status_code, exc.code, exc.message, exc.details)
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        details: dict[str, Any] = {}
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            details["allowed_methods"] = sorted(allowed)
        response = error_response(exc.code or 500, code, exc.description or code, details)
        if allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            500,
            "internal_error",
            "the server failed to handle this request; quote the request id when reporting it",
            {},
        )
