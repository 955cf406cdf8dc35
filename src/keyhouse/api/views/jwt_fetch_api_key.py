"""POST /api/v1/jwt/fetch_api_key: a JSON Web Token in, API key out (docs/jwt.md).

Zulip's ``jwt_fetch_api_key`` (feature level 160): parameters ``include_profile``
(JSON boolean, default false) then ``token`` (default ""), read in that order;
then the realm, then everything in ``auth.jwt_tokens`` and the sign-in pipeline.
The answer is ``{api_key, email}`` (no ``user_id``, unlike fetch_api_key), plus
``user`` as ``users/me`` describes the user when ``include_profile`` is true.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from keyhouse.api.errors import InvalidSubdomainError
from keyhouse.api.params import get_json_bool, get_optional_param, zulip_endpoint
from keyhouse.api.views.users import user_row
from keyhouse.auth.jwt_tokens import jwt_attempt
from keyhouse.auth.pipeline import sign_in
from keyhouse.realms.resolve import realm_for_request


@zulip_endpoint(["POST"])
def jwt_fetch_api_key(request: HttpRequest) -> dict[str, Any]:
    include_profile = get_json_bool(request, "include_profile", default=False)
    token = get_optional_param(request, "token", "")
    realm = realm_for_request(request)
    if realm is None:
        raise InvalidSubdomainError()
    user = sign_in(jwt_attempt(request, realm, token, new_login_email=True))
    result: dict[str, Any] = {"api_key": user.api_key, "email": user.delivery_email}
    if include_profile:
        result["user"] = user_row(user)
    return result
