"""One entry point for password logins, whatever backends are configured."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate as django_authenticate
from django.http import HttpRequest

from keyhouse.realms.models import Realm
from keyhouse.users.models import User


def authenticate_password(
    request: HttpRequest, realm: Realm, username: str, password: str
) -> tuple[User | None, dict[str, Any]]:
    """Walk the configured backends in order; return the user (or None) and the flags."""
    return_data: dict[str, Any] = {}
    user = django_authenticate(
        request=request,
        username=username,
        password=password,
        realm=realm,
        return_data=return_data,
    )
    return user, return_data
