"""Prometheus metrics: what they count, the middleware that records them, /metrics.

Several gunicorn workers serve one port, and a scrape reaches only one of them,
so under ``keyhouse serve`` every worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, set up
before the fork by ops/serve.py) and /metrics adds them up. Without that
variable (tests, ``runserver``) the process's own registry is served.

Labels are bounded: the route is the URL pattern (ops/routes.py), the method one
of a fixed set, the status a class (``2xx``…), the ``code`` a Zulip error code.

auth/ must not import ops/, so rate-limit refusals, login outcomes and the
hashing queue reach these metrics through keyhouse.auth.signals.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import orjson
from django.conf import settings
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from keyhouse.api.errors import AccessDeniedError
from keyhouse.api.responses import json_error
from keyhouse.auth.client_ip import client_ip, is_trusted_proxy
from keyhouse.auth.hashing_gate import get_gate
from keyhouse.auth.signals import hashing_queue_changed, login_attempted, rate_limited
from keyhouse.ops.routes import method_label, route_label

logger = logging.getLogger("keyhouse.ops.metrics")

REQUESTS = Counter(
    "keyhouse_http_requests",
    "HTTP requests by URL pattern, method, status class and Zulip error code.",
    ["route", "method", "status", "code"],
)
LATENCY = Histogram(
    "keyhouse_http_request_duration_seconds",
    "Time from the first middleware to the response, by URL pattern and method.",
    ["route", "method"],
    # A login costs one Argon2 verification (~30 ms at the defaults) plus queueing.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RATE_LIMIT_HITS = Counter(
    "keyhouse_rate_limit_hits",
    "Hits refused by a rate limit, by rule domain.",
    ["domain"],
)
LOGIN_ATTEMPTS = Counter(
    "keyhouse_login_attempts",
    "Login attempts that reached authentication, by method, outcome and reason.",
    ["method", "outcome", "reason"],
)
HASHING_QUEUE = Gauge(
    "keyhouse_hashing_queue_length",
    "Password verifications waiting for a hashing slot (summed over live workers).",
    multiprocess_mode="livesum",
)


class HashingBudgetCollector(Collector):
    """The hashing slots and how many are free, read from the budget at scrape time.

    Under ``keyhouse serve`` the budget is one the workers share
    (keyhouse/hashing_slots.py), so whichever worker answers the scrape reads the
    whole server's figures; there is nothing to add up across workers.
    """

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "keyhouse_hashing_slots",
                "Password verifications the server may run at once (all workers together).",
            ),
            GaugeMetricFamily(
                "keyhouse_hashing_slots_free",
                "Hashing slots free now (all workers together).",
            ),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without describe(), registering would call collect() at import time.
        return iter(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        budget = get_gate().budget
        slots, free = self._families()
        slots.add_metric([], budget.size)
        free.add_metric([], budget.free())
        return iter((slots, free))


HASHING_BUDGET = HashingBudgetCollector()
REGISTRY.register(HASHING_BUDGET)

# Zulip codes are upper-case identifiers; anything else is not one of ours.
_ZULIP_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_MAX_ERROR_BODY = 4096


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def zulip_code(response: HttpResponse) -> str:
    """The ``code`` of a Zulip JSON error body, else "" (cheap: small error bodies only)."""
    if response.status_code < 400 or getattr(response, "streaming", False):
        return ""
    if not response.get("Content-Type", "").startswith("application/json"):
        return ""
    content = response.content
    if len(content) > _MAX_ERROR_BODY:
        return ""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return ""
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) and _ZULIP_CODE.fullmatch(code) else ""


# ``labels()`` checks and joins its values and takes the metric's lock on every call;
# the children it returns are kept by the metric anyway, so keep a direct handle.
# The labels are bounded (see above), so these caches are too.
@lru_cache(maxsize=4096)
def _requests(route: str, method: str, status: str, code: str) -> Any:
    return REQUESTS.labels(route, method, status, code)


@lru_cache(maxsize=1024)
def _latency(route: str, method: str) -> Any:
    return LATENCY.labels(route, method)


class MetricsMiddleware:
    """Count and time every request; near the top, so it sees the final response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        try:
            route, method = route_label(request), method_label(request)
            status = response.status_code
            _requests(route, method, status_class(status), zulip_code(response)).inc()
            _latency(route, method).observe(elapsed)
        except Exception:  # a metrics failure (a full disk under mmap) must not fail a request
            logger.exception("Could not record request metrics")
        return response


@receiver(rate_limited, dispatch_uid="keyhouse.ops.metrics.rate_limited")
def _count_rate_limit_hit(sender: Any, domain: str, **kwargs: Any) -> None:
    RATE_LIMIT_HITS.labels(domain).inc()


@receiver(login_attempted, dispatch_uid="keyhouse.ops.metrics.login_attempted")
def _count_login_attempt(
    sender: Any, outcome: str, reason: str, method: str = "password", **kwargs: Any
) -> None:
    LOGIN_ATTEMPTS.labels(method, outcome, reason).inc()


@receiver(hashing_queue_changed, dispatch_uid="keyhouse.ops.metrics.hashing_queue")
def _track_hashing_queue(sender: Any, delta: int, **kwargs: Any) -> None:
    HASHING_QUEUE.inc(delta)


# --- /metrics -------------------------------------------------------------------

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(s.strip(), strict=False) for s in spec if s.strip())


def metrics_allowed(request: HttpRequest) -> bool:
    """Is the client in METRICS_ALLOWED_IPS?

    A request that came through a proxy we do not trust is refused whatever its
    peer address: behind nginx on the same host, every internet client would
    otherwise look like loopback.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    if "HTTP_X_FORWARDED_FOR" in request.META and not is_trusted_proxy(remote):
        return False
    try:
        ip = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.METRICS_ALLOWED_IPS)))


def registry() -> CollectorRegistry:
    """Every worker's values when in multiprocess mode, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    aggregated = CollectorRegistry()
    multiprocess.MultiProcessCollector(aggregated)
    aggregated.register(HASHING_BUDGET)
    return aggregated


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return json_error(AccessDeniedError())
    response = HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
