"""The application factory: load and check the model once, then wire the HTTP layer.

Under gunicorn's ``preload_app`` this runs in the master before it forks, so
every worker inherits the loaded pipeline copy-on-write. It opens no sockets
and starts no threads (that is for ``post_fork``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from flask import Flask, Response, g, has_request_context, request
from flask.json.provider import JSONProvider
from prometheus_flask_exporter import PrometheusMetrics
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException

from service.control import controller
from service.control.store import Store
from service.errors import REQUEST_ID_PATTERN, ErrorBody, ServiceError, code_for
from service.http import (
    admin_routes,
    docs,
    logs,
    mlflow_routes,
    open_inference_routes,
    openapi,
    routes,
)
from service.serving.metrics import LATENCY_BUCKETS, Metrics
from service.serving.runtime import Runtime
from service.settings import Settings

REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
PROTOCOL_ERRORS: dict[str, Callable[[int, str, str], dict[str, Any]]] = {
    open_inference_routes.bp.name: open_inference_routes.error_body,
    mlflow_routes.bp.name: mlflow_routes.error_body,
}
"""The error shape of each protocol's routes, by blueprint; elsewhere, :class:`ErrorBody`."""
INFLIGHT_LIMIT = "X-Inflight-Limit"
"""The cap on predictions in flight that nginx enforces in front (deploy/nginx/proxy.conf)."""
PREDICTIONS = frozenset({"api.predict", "v2.infer", "v2.infer_version", "mlflow.invocations"})
"""The endpoints whose refusals count as validation failures."""


def set_fields(model: Any) -> dict[str, Any]:
    """orjson's fallback for response models: the fields that were set, in declaration order,
    their values as they are. Unlike ``model_dump`` it copies nothing, so a 10,000-row
    prediction reaches orjson untouched; response models use no aliases or serializers."""
    if not isinstance(model, BaseModel):
        raise TypeError(f"{type(model).__name__} is not JSON serializable")
    given = model.model_fields_set
    return {name: getattr(model, name) for name in type(model).model_fields if name in given}


def to_json(obj: Any) -> bytes:
    """JSON bytes of a response body, response models included."""
    return orjson.dumps(obj, default=set_fields, option=orjson.OPT_SERIALIZE_NUMPY)


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson, response models included: faster rendering of long
    prediction lists."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return to_json(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        return Response(
            to_json(self._prepare_response_obj(args, kwargs)), mimetype="application/json"
        )


class ServiceFlask(Flask):
    """Flask whose views may return a response model (alone or with a status), answering
    ``OPTIONS`` with ``204 No Content`` and its ``Allow`` header rather than an empty
    ``200``, which a client could mistake for an answer."""

    def make_response(self, rv: Any) -> Response:
        """A view's return value as a response; a response model renders as JSON."""
        if isinstance(rv, BaseModel):
            rv = self.json.response(rv)
        elif isinstance(rv, tuple) and isinstance(rv[0], BaseModel):
            rv = (self.json.response(rv[0]), *rv[1:])
        return super().make_response(rv)

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
    register_admission(app, metrics)
    register_error_handlers(app, metrics)
    app.register_blueprint(routes.bp)
    app.register_blueprint(admin_routes.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(open_inference_routes.bp)
    app.register_blueprint(mlflow_routes.bp)
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
    document_metrics(app.view_functions["prometheus_metrics"])


document_metrics = openapi.operation(
    "operations",
    "Prometheus metrics of every worker",
    {
        200: openapi.Reply(
            "Prometheus text exposition format.",
            media=("text/plain",),
            headers={
                "X-Request-ID": {
                    "description": "Not on the internal listener: scrapes are not traced.",
                    "required": False,
                    "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
                }
            },
        ),
        404: "On the public listener: metrics are internal.",
    },
    description="Served on the internal metrics listener; the public one answers 404.",
)
"""The documentation of ``/metrics``, whose view prometheus_flask_exporter defines: declared
here, where the route is registered."""


def register_model_gauges(app: Flask) -> None:
    """Each worker publishes its model gauges on its first request after a fork or a swap
    (prometheus_client gives a forked child fresh, empty files)."""

    @app.before_request
    def publish() -> None:
        app.extensions["runtime"].publish()


def register_admission(app: Flask, metrics: Metrics) -> None:
    """A prediction meets its worker's queue bound before any view reads its body: a full
    worker refuses it for the cost of a lookup (503 ``overloaded``, Retry-After). Those
    admitted are counted in flight until answered, beside the cap of the proxy in front
    (its ``X-Inflight-Limit``): the shedding alert compares the two, since what nginx
    refuses never reaches a worker to be counted."""

    @app.before_request
    def admit() -> None:
        if request.endpoint not in PREDICTIONS:
            return
        app.extensions["runtime"].admit()
        g.in_flight = True
        metrics.in_flight.inc()
        limit = request.headers.get(INFLIGHT_LIMIT, "")
        if limit.isdigit():
            metrics.publish_in_flight_limit(int(limit))

    @app.teardown_request
    def release(_: BaseException | None) -> None:
        if g.pop("in_flight", False):
            metrics.in_flight.dec()


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
    """The one error shape, :class:`ErrorBody`, with this request's id; on a protocol's
    routes, that protocol's shape (the id stays in the X-Request-ID header)."""
    shape = PROTOCOL_ERRORS.get(request.blueprint or "") if has_request_context() else None
    if shape is not None:
        rendered = orjson.dumps(shape(status, code, message))
    else:
        rendered = to_json(ErrorBody.of(code, message, details, g.get("request_id")))
    return Response(rendered, status=status, mimetype="application/json")


def register_error_handlers(app: Flask, metrics: Metrics) -> None:
    logger = logs.configure(app.extensions["runtime"].settings.log_level)

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> Response:
        if request.endpoint in PREDICTIONS and exc.status_code < 500:
            metrics.validation_failures.labels(exc.code).inc()
        response = error_response(exc.status_code, exc.code, exc.message, exc.details)
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        if exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = code_for(exc.name or "error")
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
