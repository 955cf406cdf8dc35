"""HTTP Basic ``email:api_key`` authentication for /api/v1 endpoints (reference §5).

Every credential error becomes 401 ``UNAUTHORIZED`` with the specific message and
``WWW-Authenticate: Basic realm="zulip"``, as Zulip's authenticated_rest_api_view
does; only a non-Basic scheme is a 400.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from keyhouse.api.account_checks import validate_account_and_subdomain
from keyhouse.api.errors import JsonableError, UnauthorizedError
from keyhouse.auth.ratelimit import hit
from keyhouse.users import api_key_cache
from keyhouse.users.api_keys import has_api_key_format
from keyhouse.users.models import User


def get_basic_credentials(request: HttpRequest) -> tuple[str, str]:
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is None:
        # Zulip's rest_dispatch: no credentials at all on an /api/ path.
        raise UnauthorizedError()
    try:
        auth_type, credentials = header.split()
        if auth_type.lower() != "basic":
            raise JsonableError("This endpoint requires HTTP basic authentication.")
        role, api_key = base64.b64decode(credentials).decode().split(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise UnauthorizedError("Invalid authorization header for basic auth") from None
    return role, api_key


def user_for_api_key(email: str, api_key: str) -> User | None:
    """The user with this email (any realm) whose key equals ``api_key``.

    With Redis, from the shared API-key cache when it holds the answer
    (users/api_key_cache.py); otherwise, and on every miss, from the database.
    """
    if "\x00" in email:
        return None
    return api_key_cache.get_user(email, api_key, _user_for_api_key_from_db)


def _user_for_api_key_from_db(email: str, api_key: str) -> User | None:
    """Looked up by email, then the key compared in constant time.

    So response timing says nothing about which keys exist. An email with NUL,
    which no user can have, is not looked up: PostgreSQL refuses NUL in a query
    with an error (a 500), and Zulip, which looks up by key, never queries the
    email at all.
    """
    match = None
    for candidate in User.objects.all_with_email(email):
        if hmac.compare_digest(candidate.api_key.encode(), api_key.encode()):
            match = candidate
    return match


def validate_api_key(
    request: HttpRequest, email: str, api_key: str, subdomain: str | None = None
) -> User:
    """Zulip's validate_api_key + validate_account_and_subdomain; raises with Zulip's messages.

    ``subdomain`` is the realm the request is for, when that is not its own host's
    (the gateway's verify names the host of the request it checks).
    """
    email, api_key = email.strip(), api_key.strip()
    if not has_api_key_format(api_key):
        raise UnauthorizedError("Malformed API key")
    user = user_for_api_key(email, api_key)
    if user is None:
        raise UnauthorizedError("Invalid API key")
    try:
        validate_account_and_subdomain(request, user, subdomain)
    except JsonableError as exc:  # Zulip's authenticated_rest_api_view wraps them all
        raise UnauthorizedError(exc.msg) from None
    return user


def authenticate_api_key(request: HttpRequest, subdomain: str | None = None) -> User:
    """Basic ``email:api_key``, the account checks, the per-user API rate limit.

    What every API-key request goes through, in this order: ``users/me`` and the
    other API views (``api_key_required``), and the gateway's ``/auth/verify``,
    which passes the ``subdomain`` of the request it checks.
    """
    email, api_key = get_basic_credentials(request)
    user = validate_api_key(request, email, api_key, subdomain)
    if settings.RATE_LIMITING:
        hit(request, "api_by_user", str(user.id))
    return user


def api_key_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate with Basic ``email:api_key`` and pass the user to the view."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = authenticate_api_key(request)
        request.user = user
        return view(request, user, *args, **kwargs)

    return wrapper
