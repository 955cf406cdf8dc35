"""Test-only URLconf: keyhouse's routes plus views that fail on purpose.

Used through ``settings.ROOT_URLCONF`` in test_errors.py, so that the error
middleware is exercised by a real request without adding a failing route to
the product.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError
from django.urls import include, path

from keyhouse.api.params import zulip_endpoint

# Stands in for anything sensitive an exception might carry (a key, a path, SQL).
SECRET_IN_EXCEPTION = "api_key=Zq8sEcReTsEcReTsEcReTsEcReT12345"


def explode(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(f"unexpected failure with {SECRET_IN_EXCEPTION}")


@zulip_endpoint(["GET", "POST"])
def explode_endpoint(request: HttpRequest) -> dict[str, Any]:
    raise KeyError(SECRET_IN_EXCEPTION)


def not_found(request: HttpRequest) -> HttpResponse:
    raise Http404("no such thing")


def denied(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def html_500(request: HttpRequest) -> HttpResponse:
    return HttpResponseServerError(f"<h1>Server Error</h1><pre>{SECRET_IN_EXCEPTION}</pre>")


urlpatterns = [
    path("api/v1/test/explode", explode),
    path("api/v1/test/explode-endpoint", explode_endpoint),
    path("api/v1/test/html-500", html_500),
    path("api/v1/test/not-found", not_found),
    path("api/v1/test/denied", denied),
    path("", include("keyhouse.urls")),
]
