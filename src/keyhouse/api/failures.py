"""Backend ``return_data`` flags → Zulip's error, in Zulip's order (reference §1.6)."""

from __future__ import annotations

from typing import Any

from keyhouse.api.errors import (
    AuthenticationFailedError,
    InvalidSubdomainError,
    JsonableError,
    PasswordAuthDisabledError,
    PasswordResetRequiredError,
    RealmDeactivatedError,
    UserDeactivatedError,
)


def api_key_fetch_failure(return_data: dict[str, Any]) -> JsonableError:
    """The error fetch_api_key answers when no backend returned a user."""
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
