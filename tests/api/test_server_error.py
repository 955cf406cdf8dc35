"""An outage raised by a middleware (no view's process_exception sees it) is a 503, not a 500.

A database that fails while ``SessionMiddleware`` saves a session, or while the
user of a page is loaded, raises outside any view; Django then answers with
``handler500``. The middleware below stands for them: it raises what the
database layer raises, at the place those middlewares run.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.db.errors import DatabaseUnavailable

FAILURES: dict[str, Exception] = {
    "unavailable": DatabaseUnavailable(5),
    "operational": OperationalError("connection to server failed: Connection refused"),
    "interface": InterfaceError("connection already closed"),
    "bug": ValueError("a plain bug"),
}


class FailingMiddleware:
    """Raises ``FAILURES[X-Fail]`` where the session and auth middlewares run."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        failure = request.headers.get("X-Fail")
        if failure:
            raise FAILURES[failure]
        return self.get_response(request)


@pytest.fixture
def client(settings: Settings) -> Client:
    at = settings.MIDDLEWARE.index("keyhouse.web.page_middleware.PageSessionMiddleware")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[: at + 1],
        "tests.api.test_server_error.FailingMiddleware",
        *settings.MIDDLEWARE[at + 1 :],
    ]
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("failure", ["unavailable", "operational", "interface"])
@pytest.mark.parametrize("path", ["/api/v1/server_settings", "/json/fetch_api_key"])
def test_an_outage_in_a_middleware_is_zulips_503(client: Client, path: str, failure: str) -> None:
    response = client.post(path, HTTP_X_FAIL=failure)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"
    assert int(response["Retry-After"]) >= 1


@pytest.mark.parametrize("failure", ["unavailable", "operational"])
def test_an_outage_in_a_middleware_on_a_page_is_the_unavailable_page(
    client: Client, failure: str
) -> None:
    response = client.get("/login/", HTTP_X_FAIL=failure)
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert b"Temporarily unavailable" in response.content
    assert int(response["Retry-After"]) >= 1


def test_a_bug_in_a_middleware_is_still_a_500(client: Client) -> None:
    api = client.get("/api/v1/server_settings", HTTP_X_FAIL="bug")
    assert api.status_code == 500
    assert api.json()["result"] == "error"
    page = client.get("/login/", HTTP_X_FAIL="bug")
    assert page.status_code == 500
    assert b"Traceback" not in page.content
