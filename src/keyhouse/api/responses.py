"""Zulip's success and error bodies, serialized as Zulip does (orjson + newline)."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse

from keyhouse.api.errors import JsonableError


def json_response(body: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(
        orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE),
        status=status,
        content_type="application/json",
    )


def json_success(data: dict[str, Any] | None = None) -> HttpResponse:
    return json_response({"result": "success", "msg": "", **(data or {})})


def json_error(error: JsonableError) -> HttpResponse:
    response = json_response(error.body(), status=error.http_status_code)
    for name, value in error.headers().items():
        response[name] = value
    return response
