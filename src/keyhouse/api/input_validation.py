"""Refuse malformed /api/ requests before any view, backend or database sees them.

Django is lenient where a login server must not be. It decodes invalid UTF-8 in
the query string or a form body as U+FFFD (or as Latin-1), so a password with a
stray byte silently becomes a different password. It raises from inside the view
on a multipart body without a boundary or a form body naming another charset,
which the error middleware can only call a 500. And it decodes the query string
with whatever codec the Content-Type's ``charset`` names: ``hex`` or ``rot13``
crash the request's constructor, before any middleware runs.

Here each of those becomes a Zulip-format 4xx. Because this runs before the view,
a refused request has done no work: no authentication, no audit entry, no write.
keyhouse reads every parameter as UTF-8, whatever charset a Content-Type names:
Zulip's API is UTF-8 only, and browsers send forms as UTF-8.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.utils.http import parse_header_parameters

from keyhouse.api.errors import (
    InvalidUTF8Error,
    JsonableError,
    MalformedRequestError,
    PayloadTooLargeError,
)
from keyhouse.api.middleware import wants_json_errors
from keyhouse.api.responses import json_error

FORM_URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
# What Django's multipart parser puts where it met bytes that are not UTF-8.
REPLACEMENT = "\ufffd"
REPLACEMENT_UTF8 = REPLACEMENT.encode()


class KeyhouseWSGIRequest(WSGIRequest):
    """Django's WSGI request, but one whose construction no header can make fail.

    Django's constructor parses the Content-Type and, when it names a charset,
    decodes the query string with it: a codec that is not a text encoding
    (``charset=hex``) raises LookupError, and an RFC 2231 parameter with an
    unknown charset (``a*=x''y``) raises ValueError. Both escape before any
    middleware, as a bare HTML 500 from the WSGI server. keyhouse ignores the
    charset (everything is UTF-8) and marks an unparseable Content-Type for
    :class:`InputValidationMiddleware` to refuse.
    """

    malformed_content_type: bool = False
    _valid_host: str | None = None

    def get_host(self) -> str:
        """Django's, worked out once per request.

        Several layers ask (the common middleware, the realm, the new-login email's
        links), and each of Django's calls parses and checks the host against
        ``ALLOWED_HOSTS`` again; the headers and those settings cannot change within
        a request. Only a valid host is kept: an invalid one raises DisallowedHost
        on every call, as Django's does.
        """
        if self._valid_host is None:
            self._valid_host = super().get_host()
        return self._valid_host

    def _set_content_type_params(self, meta: dict[str, Any]) -> None:
        try:
            self.content_type, self.content_params = parse_header_parameters(
                meta.get("CONTENT_TYPE", "")
            )
        except (ValueError, LookupError):  # UnicodeError is a ValueError
            self.content_type, self.content_params = "", {}
            self.malformed_content_type = True


class KeyhouseWSGIHandler(WSGIHandler):
    """The WSGI application ``keyhouse.wsgi`` serves: Django's, with the safer request."""

    request_class = KeyhouseWSGIRequest


def wsgi_bytes(value: str) -> bytes:
    """The raw bytes behind a WSGI environ string (PEP 3333: Latin-1 decoded)."""
    try:
        return value.encode("iso-8859-1")
    except UnicodeEncodeError:  # not from a WSGI server: already text; lone surrogates fail
        return value.encode("utf-8", "surrogatepass")


def is_utf8_form_data(data: bytes) -> bool:
    """Whether URL-encoded data is UTF-8 both as sent and once percent-decoded.

    Both are needed: ``\\xff`` is invalid as sent, ``%ff`` only once decoded, and
    ``\\xc3%a9`` decodes to a valid "é" although Django, which decodes the raw
    bytes first, would read it as Latin-1 "Ã" followed by U+FFFD.
    """
    try:
        data.decode("utf-8")
        unquote_to_bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def has_replaced_bytes(form: QueryDict, body: bytes) -> bool:
    """Whether the multipart parser replaced non-UTF-8 bytes with U+FFFD.

    Django gives no other sign. A body that itself contains the UTF-8 encoding of
    U+FFFD is given the benefit of the doubt: the character may be genuine.
    """
    if REPLACEMENT_UTF8 in body:
        return False
    return any(
        REPLACEMENT in name or any(REPLACEMENT in value for value in values)
        for name, values in form.lists()
    )


def body_error(request: HttpRequest, body: bytes) -> JsonableError | None:
    """Parse a POST body the way views will read it, and judge the result.

    Only POST bodies: Django parses no other method's body into ``request.POST``,
    so nothing else in a body is ever read.
    """
    if request.content_type == FORM_URLENCODED:
        if not is_utf8_form_data(body):
            return InvalidUTF8Error()
        request.POST  # noqa: B018 - parse now, so that a bad body fails here, not in the view
    elif request.content_type == MULTIPART:
        try:
            form = request.POST
        except MultiPartParserError:
            return MalformedRequestError("Malformed multipart/form-data body")
        if has_replaced_bytes(form, body):
            return InvalidUTF8Error()
    return None


def input_error(request: HttpRequest) -> JsonableError | None:
    """The error a malformed request deserves, or None when it may go on to the view."""
    if getattr(request, "malformed_content_type", False):
        return MalformedRequestError("Malformed Content-Type header")
    if request.encoding is not None:
        # Only under handlers that honour the charset (Django's test client); see
        # KeyhouseWSGIRequest. Decode as UTF-8, as the production request does.
        request.encoding = None  # type: ignore[assignment]  # the stubs forget None
    if not is_utf8_form_data(wsgi_bytes(request.META.get("QUERY_STRING", ""))):
        return InvalidUTF8Error()
    try:
        # Every body is read within DATA_UPLOAD_MAX_MEMORY_SIZE, multipart included:
        # a login needs a few hundred bytes, and a parsed upload would go to disk.
        body = request.body
    except RequestDataTooBig:
        return PayloadTooLargeError()
    except ValueError:  # a Content-Length that is not a number
        return MalformedRequestError("Malformed Content-Length header")
    if request.method != "POST":
        return None
    try:
        return body_error(request, body)
    except RequestDataTooBig:
        return PayloadTooLargeError()
    except SuspiciousOperation:  # too many fields or files
        return JsonableError("Bad request")


# The gateway's check reads no body and no parameter of its own: the request it is
# asked about is the upstream's to judge (a proxy sends its headers only, and the
# original's Content-Type along with them).
NOT_VALIDATED = ("/auth/verify",)


class InputValidationMiddleware:
    """Just inside ZulipJsonErrorMiddleware: malformed /api/ requests never reach a view.

    Returns the error response itself: an exception raised in middleware, unlike
    one raised in a view, would not reach the error middleware's process_exception.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if wants_json_errors(request) and not request.path.startswith(NOT_VALIDATED):
            error = input_error(request)
            if error is not None:
                return json_error(error)
        return self.get_response(request)
