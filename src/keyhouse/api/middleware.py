"""Zulip-format JSON for every error under /api/ and /json/: never HTML, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse

from keyhouse.api.errors import (
    AccessDeniedError,
    InternalServerError,
    JsonableError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    error_for_refusal,
)
from keyhouse.api.responses import json_error
from keyhouse.auth.ratelimit.limiter import rate_limit_headers
from keyhouse.auth.refusals import SignInRefused
from keyhouse.outages import DependencyUnavailable
from keyhouse.redact import redact_path

logger = logging.getLogger("keyhouse.api")

# /auth/verify: the gateway's forward-auth check answers API clients (docs/gateway.md).
JSON_PREFIXES = ("/api/", "/json/", "/auth/verify")


def wants_json_errors(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES)


class ZulipJsonErrorMiddleware:
    """Outermost of the API stack: domain exceptions → Zulip bodies; HTML errors → JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and wants_json_errors(request)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            response = json_error(self._error_for_status(response.status_code))
        for name, value in rate_limit_headers(request).items():
            response[name] = value
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        return error_response(request, exc)

    @staticmethod
    def outage(exc: Exception) -> DependencyUnavailable | None:
        """The database or Redis failed under this request: a 503, not a 500."""
        if isinstance(exc, DependencyUnavailable):
            return exc
        if isinstance(exc, (OperationalError, InterfaceError)):
            # Connection refused or lost, server shutting down, SQLite busy past its
            # timeout: a dependency's state, never the client's input.
            logger.warning("Database unavailable: %s: %s", type(exc).__name__, exc)
            return DependencyUnavailable("database", 2)
        return None

    @staticmethod
    def _error_for_status(status: int) -> JsonableError:
        if status == 404:
            return NotFoundError()
        if status == 413:
            return PayloadTooLargeError()
        if status >= 500:
            return InternalServerError()
        error = JsonableError("Bad request")
        error.http_status_code = status  # type: ignore[misc]
        return error


def error_response(request: HttpRequest, exc: Exception) -> HttpResponse | None:
    """The one mapping of an exception to its answer; None: not ours (a page's 500).

    The middleware applies it to every view; a view that must reshape its refusals
    (the gateway's verify, for nginx) calls it itself, so the mapping stays here.
    """
    if isinstance(exc, JsonableError):
        return json_error(exc)
    if isinstance(exc, SignInRefused):
        return json_error(error_for_refusal(exc))
    outage = ZulipJsonErrorMiddleware.outage(exc)
    if outage is not None:
        if wants_json_errors(request):
            return json_error(ServiceUnavailableError(outage.retry_after))
        return unavailable_page(outage.retry_after)
    if not wants_json_errors(request):
        return None
    if isinstance(exc, Http404):
        return json_error(NotFoundError())
    if isinstance(exc, PermissionDenied):
        return json_error(AccessDeniedError())
    if isinstance(exc, RequestDataTooBig):
        return json_error(PayloadTooLargeError())
    if isinstance(exc, SuspiciousOperation):
        return json_error(JsonableError("Bad request"))
    path = redact_path(request.path)
    logger.error("Internal server error on %s %s", request.method, path, exc_info=exc)
    return json_error(InternalServerError())


def unavailable_page(retry_after: int) -> HttpResponse:
    """Outside the API: a small page that says to come back, never Django's 500 page."""
    response = HttpResponse(
        "<!doctype html><title>Temporarily unavailable</title>"
        "<h1>Temporarily unavailable</h1><p>The server cannot reach a service it needs. "
        "Please try again in a moment.</p>\n",
        status=503,
        content_type="text/html; charset=utf-8",
    )
    response["Retry-After"] = str(retry_after)
    return response
