"""The service's one exception tree; ``service.http.app`` maps it to one JSON error shape.

Every error a client or an operator can see is one of these, so the HTTP layer
never has to guess a status code from a library's exception::

    ServiceError                  500 internal_error
    ├── BadRequest                400 bad_request
    │   └── MalformedJSON         400 malformed_json
    ├── UnsupportedMediaType      415 unsupported_media_type
    ├── PayloadTooLarge           413 too_many_rows
    ├── SchemaViolation           422 schema_violation
    ├── OutputNotSupported        422 output_not_supported
    ├── PredictionFailed          422 prediction_failed
    ├── NotReady                  503 not_ready
    │   └── WorkerRestarting      503 worker_restarting (nginx retries it on another worker)
    ├── Overloaded                503 overloaded       (this worker's queue is full; Retry-After)
    ├── PredictionTimeout         504 prediction_timeout
    ├── DeadlineExpired           504 deadline_exceeded (its budget ran out before the model)
    ├── Unauthorized              401 unauthorized     (admin API: no bearer token)
    ├── Forbidden                 403 forbidden        (admin API: wrong token)
    ├── VersionNotFound           404 version_not_found
    ├── Conflict                  409 conflict         (e.g. deleting the active version)
    ├── Untrusted                 422 untrusted_artifact
    │   ├── SignatureMissing      422 signature_missing
    │   └── SignatureInvalid      422 signature_invalid
    ├── VersionSkew               422 version_skew     (pickled by another scikit-learn minor)
    ├── CandidateRejected         422 candidate_rejected (failed the isolated check)
    ├── StoreUnavailable          507 store_unavailable  (disk full, read-only store)
    ├── ReloadFailed              500 reload_failed
    └── ModelError                500 model_error      (raised at load time, before serving)
        ├── ArtifactNotFound      500 artifact_not_found
        ├── ArtifactUnreadable    500 artifact_unreadable
        └── ContractViolation     500 contract_violation

Every layer answers errors in one JSON shape, :class:`ErrorBody`:
``{"error": {"code", "message", "details", "request_id"}}``. The app renders it
(``service.http.app``), so does gunicorn for requests it cannot parse
(``service.http.gunicorn_json``); nginx's own pages (``deploy/nginx/errors.conf``) are
checked against it by a unit test, and the OpenAPI document reads its schema.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

REQUEST_ID_PATTERN = "^[A-Za-z0-9._-]{1,128}$"
"""Request ids the service echoes and logs (nginx's maps.conf keeps the same); anything else
is replaced, so a header cannot inject text into a log line."""


class ServiceError(Exception):
    """Base of every error the service reports; subclasses fix status and code."""

    status_code = 500
    code = "internal_error"
    retry_after_s: int | None = None
    """Seconds a client should wait before it retries (the Retry-After header); None: none."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadRequest(ServiceError):
    status_code = 400
    code = "bad_request"


class MalformedJSON(BadRequest):
    code = "malformed_json"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "too_many_rows"


class SchemaViolation(ServiceError):
    """Input does not match the model's schema; ``details["errors"]`` lists each problem."""

    status_code = 422
    code = "schema_violation"


class OutputNotSupported(ServiceError):
    status_code = 422
    code = "output_not_supported"


class PredictionFailed(ServiceError):
    """The pipeline refused rows that passed validation (e.g. an encoder's unknown category)."""

    status_code = 422
    code = "prediction_failed"


class NotReady(ServiceError):
    status_code = 503
    code = "not_ready"
    retry_after_s = 2


class Overloaded(ServiceError):
    """The worker already holds MAX_QUEUED_ROWS rows waiting for the model: more would only
    wait longer, so the request is refused at once, before its body is read when it can be."""

    status_code = 503
    code = "overloaded"
    retry_after_s = 1


class WorkerRestarting(NotReady):
    """This worker's model thread is stuck on an overdue call; another worker must answer."""

    code = "worker_restarting"


class PredictionTimeout(ServiceError):
    status_code = 504
    code = "prediction_timeout"


class DeadlineExpired(ServiceError):
    """The request's budget (its X-Request-Timeout) ran out while it waited: nobody awaits
    the answer any more, so the model never computes it."""

    status_code = 504
    code = "deadline_exceeded"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class VersionNotFound(ServiceError):
    status_code = 404
    code = "version_not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class Untrusted(ServiceError):
    """The artifact's bytes are not vouched for by the signing key; nothing was unpickled."""

    status_code = 422
    code = "untrusted_artifact"


class SignatureMissing(Untrusted):
    code = "signature_missing"


class SignatureInvalid(Untrusted):
    code = "signature_invalid"


class VersionSkew(ServiceError):
    """The model was pickled with another scikit-learn minor version than the running one,
    and VERSION_SKEW=refuse (the default) refuses it: it could unpickle or predict
    differently (``service.model.skew``)."""

    status_code = 422
    code = "version_skew"


class CandidateRejected(ServiceError):
    """The isolated check of an uploaded artifact failed: crashed, hung, or broke the contract."""

    status_code = 422
    code = "candidate_rejected"


class StoreUnavailable(ServiceError):
    """The model store cannot be written (disk full, read-only); nothing was changed."""

    status_code = 507
    code = "store_unavailable"


class ReloadFailed(ServiceError):
    code = "reload_failed"


class ModelError(ServiceError):
    """The artifact cannot be served; raised while loading, so boot fails with this message."""

    code = "model_error"


class ArtifactNotFound(ModelError):
    code = "artifact_not_found"


class ArtifactUnreadable(ModelError):
    code = "artifact_unreadable"


class ContractViolation(ModelError):
    code = "contract_violation"


def every_error() -> list[type[ServiceError]]:
    """The whole tree, root first: what the OpenAPI contract and the README list."""

    def below(cls: type[ServiceError]) -> list[type[ServiceError]]:
        return [cls, *(sub for child in cls.__subclasses__() for sub in below(child))]

    return below(ServiceError)


def code_for(phrase: str) -> str:
    """The error code for an HTTP reason phrase ("Method Not Allowed" is
    ``method_not_allowed``): how werkzeug's and gunicorn's own errors are named."""
    return phrase.lower().replace(" ", "_")


class ErrorDetail(BaseModel):
    """What went wrong: `code` is stable, `message` is for people."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    code: str
    message: str
    details: dict[str, Any]
    request_id: Annotated[str, Field(pattern=REQUEST_ID_PATTERN)] | None
    """Also in the `X-Request-ID` header and the logs; null only from gunicorn, for a
    request it could not parse (its headers were never read)."""


class ErrorBody(BaseModel):
    """The one error shape, whichever layer answers."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail

    @classmethod
    def of(
        cls, code: str, message: str, details: dict[str, Any], request_id: str | None
    ) -> ErrorBody:
        """One error's body, validated: a malformed request id fails here, not in a client."""
        return cls(
            error=ErrorDetail(code=code, message=message, details=details, request_id=request_id)
        )
