"""One entry point for password logins, whatever backends are configured."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate as django_authenticate
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest

from keyhouse.auth.exceptions import DirectoryUnavailable
from keyhouse.auth.hashing_gate import HashingOverloaded
from keyhouse.auth.login_limits import check_login_limits, login_succeeded, refund_login_limits
from keyhouse.realms.models import Realm
from keyhouse.users.models import User


def authenticate_password(
    request: HttpRequest, realm: Realm, username: str, password: str
) -> tuple[User | None, dict[str, Any]]:
    """Count the attempt against the limits, then walk the configured backends in order.

    Returns the user (or None) and the backends' ``return_data`` flags; raises
    RateLimited when over a limit, before any password is checked, and
    DirectoryUnavailable, HashingOverloaded or a database error (all uncounted)
    when the LDAP server or the database fails or the hashing pool is full.
    """
    counted = check_login_limits(request, realm, username)
    return_data: dict[str, Any] = {}
    try:
        user = django_authenticate(
            request=request,
            username=username,
            password=password,
            realm=realm,
            return_data=return_data,
        )
    except (DirectoryUnavailable, HashingOverloaded, OperationalError, InterfaceError):
        # Not the client's doing: a busy server, a down directory or a database
        # that failed (answered as a 503) must not lock a real user out for half
        # an hour.
        refund_login_limits(request)
        raise
    if user is not None:
        login_succeeded(user, counted)
    return user, return_data
