"""The order in which backend flags become refusals, and refusals Zulip's errors (§1.6).

With one backend at most one flag is set per attempt, so the HTTP tests cannot
see the order; with email and LDAP backends both running, several can be. The
mapping is therefore pinned here directly.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyhouse.api.errors import (
    AuthenticationFailedError,
    InvalidSubdomainError,
    JsonableError,
    PasswordAuthDisabledError,
    PasswordResetRequiredError,
    RealmDeactivatedError,
    UserDeactivatedError,
    error_for_refusal,
)
from keyhouse.auth.refusals import refusal_for_flags, shown_to_client


def api_key_fetch_failure(
    flags: dict[str, Any], *, hide_account_state: bool = False
) -> JsonableError:
    """What fetch_api_key answers for these flags: the pipeline's two steps, then the table."""
    refusal = shown_to_client(refusal_for_flags(flags), hide_account_state=hide_account_state)
    return error_for_refusal(refusal)


# Zulip's order, first match wins.
ORDER: list[tuple[str, type[JsonableError], int, str]] = [
    ("inactive_user", UserDeactivatedError, 401, "USER_DEACTIVATED"),
    ("inactive_realm", RealmDeactivatedError, 401, "REALM_DEACTIVATED"),
    ("password_auth_disabled", PasswordAuthDisabledError, 401, "PASSWORD_AUTH_DISABLED"),
    ("password_reset_needed", PasswordResetRequiredError, 401, "PASSWORD_RESET_REQUIRED"),
    ("invalid_subdomain", InvalidSubdomainError, 404, "NONEXISTENT_SUBDOMAIN"),
]
GENERIC_ONLY_FLAGS = {"email_auth_disabled": True, "no_matching_ldap_user": True}


@pytest.mark.parametrize("position", range(len(ORDER)), ids=[flag for flag, *_ in ORDER])
def test_first_flag_in_zulip_order_wins(position: int) -> None:
    """Every flag from ``position`` on is set (plus generic ones); the first decides."""
    flags: dict[str, Any] = {flag: True for flag, *_ in ORDER[position:]} | GENERIC_ONLY_FLAGS
    _, cls, status, code = ORDER[position]
    error = api_key_fetch_failure(flags)
    assert type(error) is cls
    assert (error.http_status_code, error.body()["code"]) == (status, code)


@pytest.mark.parametrize(
    "flags", [{}, GENERIC_ONLY_FLAGS, {"inactive_user": False}], ids=["none", "generic", "false"]
)
def test_anything_else_is_generic_failure(flags: dict[str, Any]) -> None:
    """email_auth_disabled, no_matching_ldap_user and false flags all say the same thing."""
    error = api_key_fetch_failure(flags)
    assert type(error) is AuthenticationFailedError
    assert error.http_status_code == 401
    assert error.body() == {
        "result": "error",
        "msg": "Your username or password is incorrect",
        "code": "AUTHENTICATION_FAILED",
    }
