"""A request id on every log line and response.

The id lets an operator find every log line of the request a user reports (the
client sees it in the ``X-Request-ID`` response header), and follow a request
through a proxy that sets the header. An incoming id is kept only if it is
short and made of safe characters, so a client cannot inject text into logs.

This module is imported by the LOGGING config (the filter) before the apps are
ready: it must not import models.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
_META_KEY = "HTTP_X_REQUEST_ID"
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
NO_REQUEST = "-"

request_id_var: ContextVar[str | None] = ContextVar("keyhouse_request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def valid_request_id(value: str) -> bool:
    return _VALID_ID.fullmatch(value) is not None


class RequestIdFilter(logging.Filter):
    """Give every record a ``request_id`` ("-" outside a request) for the formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or NO_REQUEST
        return True


class RequestIdMiddleware:
    """Outermost: the id is set before any other middleware can log."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get(_META_KEY, "")
        # 128 random bits in hex, as uuid4().hex but without building a UUID object.
        request_id = incoming if valid_request_id(incoming) else os.urandom(16).hex()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
            response[HEADER] = request_id
            return response
        finally:
            request_id_var.reset(token)
