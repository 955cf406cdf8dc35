"""Errors outside any view's control still come back as Zulip JSON (reference §7.3).

Clients parse every /api/ reply as JSON; an HTML page (Django's 404, 500 or 400)
makes them show a parse error instead of the message, and a debug page would
leak a traceback. Nothing here may depend on DEBUG.
"""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from tests.api.error_urls import SECRET_IN_EXCEPTION
from tests.api.helpers import json_body

NOT_FOUND = {"result": "error", "msg": "Not Found", "code": "BAD_REQUEST"}
INTERNAL_ERROR = {"result": "error", "msg": "Internal server error"}
BAD_REQUEST = {"result": "error", "msg": "Bad request", "code": "BAD_REQUEST"}


@pytest.fixture
def failing_urls(settings: Settings) -> None:
    """Route the test-only failing views alongside the real ones."""
    settings.ROOT_URLCONF = "tests.api.error_urls"


# --- unknown paths --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nonexistent"),
        ("post", "/api/v1/nonexistent"),
        ("get", "/api/v2/fetch_api_key"),
        ("get", "/api/"),
        ("post", "/api/v1/fetch_api_key/"),  # no APPEND_SLASH redirect either
        ("get", "/api/v1/users/me/alert_words"),
        ("get", "/json/users/me"),
    ],
)
def test_unknown_api_path_is_json_404(client: Client, realm: Realm, method: str, path: str) -> None:
    response = getattr(client, method)(path)
    assert json_body(response, 404) == NOT_FOUND
    assert b"<" not in response.content


# --- unexpected exceptions ------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("path", ["/api/v1/test/explode", "/api/v1/test/explode-endpoint"])
def test_unexpected_exception_is_json_500_without_traceback(
    client: Client, db: None, failing_urls: None, settings: Settings, path: str, debug: bool
) -> None:
    """Zulip's body exactly: no ``code``, no traceback, no exception text — even in DEBUG."""
    settings.DEBUG = debug
    response = client.get(path)
    assert json_body(response, 500) == INTERNAL_ERROR
    for leak in (b"Traceback", b"RuntimeError", b"KeyError", SECRET_IN_EXCEPTION.encode()):
        assert leak not in response.content


def test_unexpected_exception_is_logged_for_operators(
    client: Client, db: None, failing_urls: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The client learns nothing, so the log must carry the traceback."""
    with caplog.at_level(logging.ERROR):
        assert client.get("/api/v1/test/explode").status_code == 500
    records = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert records, "the 500 was not logged with its exception"
    assert isinstance(records[0].exc_info[1], RuntimeError)  # type: ignore[index]


def test_html_500_response_becomes_json(client: Client, db: None, failing_urls: None) -> None:
    """A non-JSON error response produced under /api/ is replaced, not passed through."""
    response = client.get("/api/v1/test/html-500")
    assert json_body(response, 500) == INTERNAL_ERROR
    assert SECRET_IN_EXCEPTION.encode() not in response.content


def test_django_http_exceptions_become_zulip_errors(
    client: Client, db: None, failing_urls: None
) -> None:
    """Http404 and PermissionDenied raised in an /api/ view keep their status, as JSON."""
    assert json_body(client.get("/api/v1/test/not-found"), 404) == NOT_FOUND
    assert json_body(client.get("/api/v1/test/denied"), 403) == {
        "result": "error",
        "msg": "Access denied",
        "code": "BAD_REQUEST",
    }


def test_real_routes_still_served_by_test_urlconf(
    client: Client, realm: Realm, failing_urls: None
) -> None:
    """Guards the fixture: the failing URLconf must not hide the real API."""
    assert client.get("/api/v1/server_settings").status_code == 200


# --- bad request bodies and hosts ------------------------------------------------------


def test_oversized_body_is_413_json(client: Client, realm: Realm, settings: Settings) -> None:
    """Bodies over the limit are refused as JSON before any authentication work."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = "username=hamlet%40example.com&password=" + "x" * limit
    response = client.post(
        "/api/v1/fetch_api_key", body, content_type="application/x-www-form-urlencoded"
    )
    assert json_body(response, 413) == {
        "result": "error",
        "msg": "Request body too large",
        "code": "BAD_REQUEST",
    }


def test_too_many_fields_is_400_json(client: Client, realm: Realm, settings: Settings) -> None:
    """Django's TooManyFieldsSent (a SuspiciousOperation) is a JSON 400, not an HTML page."""
    fields = {f"f{n}": "1" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    body = "&".join(f"{k}={v}" for k, v in fields.items())
    response = client.post(
        "/api/v1/fetch_api_key", body, content_type="application/x-www-form-urlencoded"
    )
    assert json_body(response, 400) == BAD_REQUEST


def test_disallowed_host_is_400_json(client: Client, realm: Realm, settings: Settings) -> None:
    """With ALLOWED_HOSTS narrowed, Django's DisallowedHost page becomes Zulip JSON."""
    settings.ALLOWED_HOSTS = ["example.org"]
    response = client.get("/api/v1/server_settings", HTTP_HOST="evil.example.net")
    assert json_body(response, 400) == BAD_REQUEST
