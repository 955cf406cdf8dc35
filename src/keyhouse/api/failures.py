"""Backend ``return_data`` flags → Zulip's error, in Zulip's order (reference §1.6)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from keyhouse.api.errors import (
    AuthenticationFailedError,
    InvalidSubdomainError,
    JsonableError,
    PasswordAuthDisabledError,
    PasswordResetRequiredError,
    RealmDeactivatedError,
    UserDeactivatedError,
)


def api_key_fetch_failure(
    return_data: dict[str, Any], *, hide_account_state: bool | None = None
) -> JsonableError:
    """The error fetch_api_key answers when no backend returned a user.

    With ``HIDE_ACCOUNT_STATE`` on, a deactivated account and an account in another
    realm answer like a wrong password (OWASP ASVS 6.3.8); Zulip reveals both.
    The audit trail asks with ``hide_account_state=False`` for the true reason.
    """
    if hide_account_state is None:
        hide_account_state = settings.HIDE_ACCOUNT_STATE
    if hide_account_state and (
        return_data.get("inactive_user") or return_data.get("invalid_subdomain")
    ):
        return AuthenticationFailedError()
    if return_data.get("inactive_user"):
        return UserDeactivatedError()
    if return_data.get("inactive_realm"):
        return RealmDeactivatedError()
    if return_data.get("password_auth_disabled"):
        return PasswordAuthDisabledError()
    if return_data.get("password_reset_needed"):
        return PasswordResetRequiredError()
    if return_data.get("invalid_subdomain"):
        return InvalidSubdomainError()
    return AuthenticationFailedError()
