"""Zulip's request-parameter rules: POST first, then the query string.

Every parameter a view reads is noted; on success the names the client sent but
no code read come back sorted in ``ignored_parameters_unsupported`` (Zulip 7.0,
feature level 167). ``client`` always counts as read (Zulip's parse_client).

A value a view reads must also be unambiguous and storable: sent once, free of
NUL, and at most ``MAX_PARAM_CHARS`` long. Parameters nobody reads are not
checked; they only ever come back as names in ``ignored_parameters_unsupported``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, Concatenate, ParamSpec

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from keyhouse.api.errors import (
    JsonableError,
    MethodNotAllowedError,
    ParameterNulError,
    ParameterTooLongError,
    RepeatedParameterError,
    RequestVariableMissingError,
)
from keyhouse.api.responses import json_success
from keyhouse.request_notes import RequestNotes


def get_param(request: HttpRequest, name: str) -> str:
    """The parameter's value (POST wins over GET), or Zulip's REQUEST_VARIABLE_MISSING.

    Refused with a 400 before the view can use it: a value sent twice in the same
    place (which one did the client mean?), one over ``MAX_PARAM_CHARS`` (nothing
    legitimate is that long, and it would be hashed or looked up), one with NUL
    (PostgreSQL cannot store it, so a lookup or audit entry would fail with a 500).
    """
    processed = RequestNotes.get_notes(request).processed_params
    for source in (request.POST, request.GET):
        if name in source:
            processed.add(name)
            values = source.getlist(name)
            if len(values) > 1:
                raise RepeatedParameterError(name)
            value = values[0]
            limit: int = settings.MAX_PARAM_CHARS
            if len(value) > limit:
                raise ParameterTooLongError(name, limit)
            if "\x00" in value:
                raise ParameterNulError(name)
            return value
    raise RequestVariableMissingError(name)


def get_optional_param(request: HttpRequest, name: str, default: str) -> str:
    """``get_param``, or ``default`` when the client did not send it (Zulip's REQ(default=…))."""
    try:
        return get_param(request, name)
    except RequestVariableMissingError:
        return default


def get_json_bool(request: HttpRequest, name: str, default: bool) -> bool:
    """Zulip's ``REQ(json_validator=check_bool)``: the value is JSON, and must be a boolean."""
    try:
        raw = get_param(request, name)
    except RequestVariableMissingError:
        return default
    try:
        value = orjson.loads(raw)  # Zulip parses with orjson: no NaN, no Infinity
    except orjson.JSONDecodeError:
        raise JsonableError(f'Argument "{name}" is not valid JSON.') from None
    if not isinstance(value, bool):
        raise JsonableError(f"{name} is not a boolean")
    return value


def _ignored_parameters(request: HttpRequest) -> list[str]:
    processed = RequestNotes.get_notes(request).processed_params
    return sorted({*request.POST, *request.GET} - processed)


ViewResult = dict[str, Any] | HttpResponse
P = ParamSpec("P")


def zulip_endpoint(
    methods: Iterable[str], *, report_ignored: bool = True, rest: bool = False
) -> Callable[
    [Callable[Concatenate[HttpRequest, P], ViewResult]],
    Callable[Concatenate[HttpRequest, P], HttpResponse],
]:
    """Method check (Zulip's 405 body), CSRF exemption and success-body building.

    The view returns the data dict of a success, or a ready response. ``rest``
    marks a route Zulip serves through ``rest_dispatch`` (``rest_path``): there a
    GET route also lists HEAD, and OPTIONS answers 204 with ``Allow`` before any
    authentication. Other routes (Zulip's plain ``path`` with ``require_post`` /
    ``require_safe``) answer OPTIONS with the 405 like any other method.
    """
    allowed = list(methods)
    if rest and "GET" in allowed and "HEAD" not in allowed:
        allowed.append("HEAD")  # rest_dispatch's setdefault("HEAD", GET), listed last

    def decorator(
        view: Callable[Concatenate[HttpRequest, P], ViewResult],
    ) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            method = request.method
            if rest and method == "OPTIONS":
                return HttpResponse(status=204, headers={"Allow": ", ".join(sorted(allowed))})
            if method == "HEAD" and "GET" in allowed:
                method = "GET"  # Django strips HEAD bodies; the view runs as for GET
            if method not in allowed:
                raise MethodNotAllowedError(allowed)
            RequestNotes.get_notes(request).processed_params = {"client"}
            result = view(request, *args, **kwargs)
            if isinstance(result, HttpResponse):
                return result
            if report_ignored:
                ignored = _ignored_parameters(request)
                if ignored:
                    result["ignored_parameters_unsupported"] = ignored
            return json_success(result)

        return wrapper

    return decorator
