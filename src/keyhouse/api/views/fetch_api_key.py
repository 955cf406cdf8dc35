"""POST /api/v1/fetch_api_key: username + password in, API key out (reference §1).

An adapter over the sign-in pipeline: input checks here, everything from the
limits to the new-login email in ``auth.pipeline.sign_in``; a refusal reaches
the client through the table in api/errors.py.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest

from keyhouse.api.errors import InvalidSubdomainError, JsonableError
from keyhouse.api.params import get_param, zulip_endpoint
from keyhouse.auth.hashing_gate import get_gate
from keyhouse.auth.pipeline import password_attempt, sign_in
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
    get_gate().check_capacity()  # under a flood, refuse before any database work
    realm = realm_for_request(request)
    if realm is None:
        raise InvalidSubdomainError()
    if not ldap_auth_enabled(realm):
        validate_login_email(username)

    # From here on the request is a login attempt: auth/pipeline.py audits it once.
    attempt = password_attempt(
        request, realm, username, password, new_login_email=True, password_is_final=True
    )
    user = sign_in(attempt)
    return {"api_key": user.api_key, "email": user.delivery_email, "user_id": user.id}
