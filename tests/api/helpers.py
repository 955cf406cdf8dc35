"""Assertions shared by the API tests: Zulip's wire format, checked the same way everywhere."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse

WWW_AUTHENTICATE = 'Basic realm="zulip"'


def json_body(response: HttpResponse, status: int) -> dict[str, Any]:
    """The parsed body, after checking status, JSON content type and orjson's newline.

    Zulip serializes with OPT_APPEND_NEWLINE; line-oriented clients and tests that
    compare raw bytes rely on it.
    """
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"] == "application/json"
    assert response.content.endswith(b"\n"), response.content
    body = json.loads(response.content)
    assert isinstance(body, dict)
    return body


def assert_unauthorized(response: HttpResponse, msg: str) -> dict[str, Any]:
    """Zulip's Basic-auth failure: 401 UNAUTHORIZED, the message, and the challenge header."""
    body = json_body(response, 401)
    assert body == {"result": "error", "msg": msg, "code": "UNAUTHORIZED"}
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE
    return body
