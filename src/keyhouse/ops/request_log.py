"""One access-log line per request, from keyhouse itself, when logs are JSON.

In plain mode gunicorn writes the access log (ops/access_log.py); in JSON mode
this middleware does, so each line is a JSON object with the request id (set by
ops/request_id.py, the middleware just outside this one) and the route pattern.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from keyhouse.auth.client_ip import client_ip
from keyhouse.ops.routes import method_label, route_label

access_logger = logging.getLogger("keyhouse.access")


class AccessLogMiddleware:
    """Just inside RequestIdMiddleware: it times, and logs, everything else."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        if settings.LOG_FORMAT == "json" and access_logger.isEnabledFor(logging.INFO):
            log_access(request, response, time.perf_counter() - started)
        return response


def log_access(request: HttpRequest, response: HttpResponse, seconds: float) -> None:
    """One line per request, from bounded, secret-free fields only.

    Never the path's query string (fetch_api_key accepts credentials there), a
    header value or a parameter: the route pattern stands for the path.
    """
    method, route, status = method_label(request), route_label(request), response.status_code
    access_logger.info(
        "%s %s %s",
        method,
        route,
        status,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "client_ip": client_ip(request),
        },
    )
