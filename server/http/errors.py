"""HTTP-level errors and the mapping of every exception to Conductor's error body.

Rules: a handler signals a client mistake by raising a `core.errors.PodiumError` subclass;
its class-level `http_status` picks the status and the body is Conductor's
`{"status", "message", "instance", "retryable"[, "validationErrors"]}`. Errors that only
the HTTP layer can detect (no such route, wrong method, oversized request) are subclasses
here. Any other exception is a bug: the client gets a 500 with a generic message and a
reference, and the traceback is logged once with the same reference. Handlers should
never let bad input reach that path.
"""

from __future__ import annotations

import logging
import socket
import uuid

from core.codec import encode
from core.errors import BadRequest, DefinitionError, NotFound, PodiumError
from core.models import ErrorResponse, ValidationErrorItem
from server.http.response import Response

log = logging.getLogger("podium.http")

#: What Conductor puts in `instance`: the answering server's host name.
HOSTNAME = socket.gethostname()


class HttpError(PodiumError):
    """An error detected by the HTTP layer itself; may carry extra response headers."""

    def __init__(self, message: str, *, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or []


class RouteNotFound(NotFound):
    """No route template matches the request path."""


class MethodNotAllowed(HttpError):
    """The path exists, but not for this method; answers with an `Allow` header."""

    http_status = 405

    def __init__(self, method: str, path: str, allowed: list[str]) -> None:
        super().__init__(
            f"Method {method} is not supported on {path}; use one of: {', '.join(allowed)}",
            headers=[("allow", ", ".join(allowed))],
        )
        self.allowed = allowed


class MalformedRequest(HttpError):
    """The bytes on the wire are not a valid HTTP/1.1 request."""

    http_status = 400


class RequestTimeout(HttpError):
    """The client started a request but did not finish sending it in time."""

    http_status = 408


class ExpectationFailed(HttpError):
    """An `Expect` header other than `100-continue` (RFC 9110 answers 417)."""

    http_status = 417

    def __init__(self, expect: str) -> None:
        super().__init__(f"Unsupported Expect: {expect!r}; only 100-continue is supported")


class PayloadTooLarge(HttpError):
    """The request body is bigger than the configured limit."""

    http_status = 413


class HeaderFieldsTooLarge(HttpError):
    """The request line plus headers are bigger than the configured limit."""

    http_status = 431


class QueryParameterError(BadRequest):
    """A query parameter is present but cannot be read as the type the endpoint needs."""


def error_body(exc: PodiumError, *, instance: str = HOSTNAME) -> ErrorResponse:
    """Conductor's error JSON for a Podium error.

    Args:
        exc: the error a handler (or the HTTP layer) raised.
        instance: the value of `instance` (Conductor sends the server's host name).

    Returns:
        The ErrorResponse model, with `validationErrors` for a DefinitionError.
    """
    body = ErrorResponse(
        status=exc.http_status,
        message=exc.message,
        instance=instance,
        retryable=exc.retryable,
    )
    if isinstance(exc, DefinitionError):
        body.validation_errors = [
            ValidationErrorItem(path=e.path, message=e.message, invalid_value=e.invalid_value)
            for e in exc.errors
        ]
    return body


def error_response(exc: Exception, *, instance: str = HOSTNAME) -> Response:
    """The response for any exception a handler raised.

    Args:
        exc: the exception; a PodiumError maps to its own status, anything else to 500.
        instance: the value of `instance` in the body.

    Returns:
        A JSON response in Conductor's error shape. Unknown exceptions are logged with
        their traceback and a reference that the 500 body repeats.
    """
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        # A handler's own nursery wraps what it raises (trio's strict exception groups);
        # a lone PodiumError inside still deserves its own status.
        exc = exc.exceptions[0]
    if isinstance(exc, PodiumError):
        headers = exc.headers if isinstance(exc, HttpError) else None
        return Response(
            exc.http_status,
            encode(error_body(exc, instance=instance)),
            content_type=Response.JSON,
            headers=headers,
        )
    reference = uuid.uuid4().hex[:12]
    log.error(
        "unhandled %s in request handler (ref %s)", type(exc).__name__, reference, exc_info=exc
    )
    body = ErrorResponse(
        status=500,
        message=f"Internal server error (ref {reference}); the server log has the details.",
        instance=instance,
        retryable=False,
    )
    return Response(500, encode(body), content_type=Response.JSON)
