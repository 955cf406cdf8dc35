"""KeyhouseWSGIRequest.get_host: Django's answer, worked out once per request.

The host is asked for by several layers of one request; Django validates it
against ALLOWED_HOSTS on every call. keyhouse keeps a valid answer and lets an
invalid one raise every time, as Django does.
"""

from __future__ import annotations

from io import BytesIO

import pytest
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from pytest_django.fixtures import Settings

from keyhouse.api.input_validation import KeyhouseWSGIRequest


def request_for(host: str) -> KeyhouseWSGIRequest:
    return KeyhouseWSGIRequest(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/api/v1/server_settings",
            "HTTP_HOST": host,
            "SERVER_NAME": "server",
            "SERVER_PORT": "80",
            "wsgi.input": BytesIO(b""),
            "wsgi.url_scheme": "http",
        }
    )


def test_a_valid_host_is_validated_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    calls: list[str] = []
    django_get_host = HttpRequest.get_host

    def counted(self: HttpRequest) -> str:
        calls.append("get_host")
        return django_get_host(self)

    monkeypatch.setattr(HttpRequest, "get_host", counted)
    request = request_for("chat.example.com")
    assert [request.get_host() for _ in range(3)] == ["chat.example.com"] * 3
    assert calls == ["get_host"]
    assert request_for("chat.example.com").get_host() == "chat.example.com"  # per request
    assert calls == ["get_host"] * 2


def test_an_invalid_host_raises_on_every_call(settings: Settings) -> None:
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    request = request_for("evil.example.net")
    for _ in range(2):
        with pytest.raises(DisallowedHost):
            request.get_host()
