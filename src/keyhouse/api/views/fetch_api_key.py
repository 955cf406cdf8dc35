"""POST /api/v1/fetch_api_key: username + password in, API key out (reference §1)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest

from keyhouse.api.errors import InvalidSubdomainError, JsonableError
from keyhouse.api.failures import api_key_fetch_failure
from keyhouse.api.params import get_param, zulip_endpoint
from keyhouse.auth.authenticate import authenticate_password
from keyhouse.realms.methods import ldap_auth_enabled
from keyhouse.realms.resolve import realm_for_request


def validate_login_email(username: str) -> None:
    try:
        validate_email(username)
    except ValidationError:
        raise JsonableError("Enter a valid email address.") from None


@zulip_endpoint(["POST"])
def fetch_api_key(request: HttpRequest) -> dict[str, Any]:
    username = get_param(request, "username")
    password = get_param(request, "password")
    realm = realm_for_request(request)
    if realm is None:
        raise InvalidSubdomainError()
    if not ldap_auth_enabled(realm):
        validate_login_email(username)
    user, return_data = authenticate_password(request, realm, username, password)
    if user is None:
        raise api_key_fetch_failure(return_data)
    return {"api_key": user.api_key, "email": user.delivery_email, "user_id": user.id}
