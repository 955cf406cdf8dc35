"""Zulip-format JSON for every error under /api/ and /json/: never HTML, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse

from keyhouse.api.errors import (
    AccessDeniedError,
    DirectoryUnavailableError,
    InternalServerError,
    JsonableError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerOverloadedError,
)
from keyhouse.api.responses import json_error
from keyhouse.auth.exceptions import DirectoryUnavailable
from keyhouse.auth.hashing_gate import HashingOverloaded
from keyhouse.auth.ratelimit import RateLimited
from keyhouse.auth.ratelimit.limiter import rate_limit_headers

logger = logging.getLogger("keyhouse.api")

JSON_PREFIXES = ("/api/", "/json/")


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
        if isinstance(exc, JsonableError):
            return json_error(exc)
        if isinstance(exc, RateLimited):
            return json_error(RateLimitedError(exc.secs_to_freedom))
        if isinstance(exc, HashingOverloaded):
            return json_error(ServerOverloadedError(exc.retry_after))
        if isinstance(exc, DirectoryUnavailable):
            return json_error(DirectoryUnavailableError())
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
        logger.error("Internal server error on %s %s", request.method, request.path, exc_info=exc)
        return json_error(InternalServerError())

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
