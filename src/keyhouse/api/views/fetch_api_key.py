"""POST /api/v1/fetch_api_key: username + password in, API key out (reference §1)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest

from keyhouse.api.errors import InvalidSubdomainError, JsonableError
from keyhouse.api.failures import api_key_fetch_failure
from keyhouse.api.params import get_param, zulip_endpoint
from keyhouse.auth.audit import Outcome, outcome_for_exception, record_login_attempt
from keyhouse.auth.authenticate import authenticate_password
from keyhouse.auth.hashing_gate import get_gate
from keyhouse.auth.login_notifications import email_on_new_login
from keyhouse.realms.methods import ldap_auth_enabled
from keyhouse.realms.resolve import realm_for_request
from keyhouse.users.models import User


def validate_login_email(username: str) -> None:
    try:
        validate_email(username)
    except ValidationError:
        raise JsonableError("Enter a valid email address.") from None


@zulip_endpoint(["POST"])
def fetch_api_key(request: HttpRequest) -> dict[str, Any]:
    username = get_param(request, "username")
    password = get_param(request, "password")
    get_gate().check_capacity()  # under a flood, refuse before any database work
    realm = realm_for_request(request)
    if realm is None:
        raise InvalidSubdomainError()
    if not ldap_auth_enabled(realm):
        validate_login_email(username)

    # From here on the request is a login attempt: exactly one audit entry each.
    def audit(outcome: str, reason: str, user: User | None = None) -> None:
        record_login_attempt(
            request, realm=realm, username=username, user=user, outcome=outcome, reason=reason
        )

    try:
        user, return_data = authenticate_password(request, realm, username, password)
    except Exception as exc:  # rate limited, hashing overloaded, or a bug: record, re-raise
        audit(*outcome_for_exception(exc))
        raise
    if user is None:
        # The operator sees the true reason even when the client is told less.
        audit(Outcome.FAILURE, api_key_fetch_failure(return_data, hide_account_state=False).code)
        raise api_key_fetch_failure(return_data)
    audit(Outcome.SUCCESS, "", user)
    email_on_new_login(request, user)  # web sign-in: Zulip's new-login email (§1.8)
    return {"api_key": user.api_key, "email": user.delivery_email, "user_id": user.id}
