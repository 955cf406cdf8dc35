"""POST /json/fetch_api_key: the signed-in browser asks for its key again (reference §1.9).

Used by the web and desktop apps' "show API key" dialogs: the session is the
login, the password is re-entered as proof (when the realm has passwords), and
the answer carries no ``user_id``, as in Zulip.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from keyhouse.api.errors import JsonableError
from keyhouse.api.params import get_param, zulip_endpoint
from keyhouse.api.session_auth import session_user_required
from keyhouse.auth.reauth import reauthenticate
from keyhouse.realms.resolve import realm_for_request
from keyhouse.users.models import User


@zulip_endpoint(["POST"], rest=True)  # Zulip: rest_path("json/fetch_api_key", POST=…)
@session_user_required
def json_fetch_api_key(request: HttpRequest, user: User) -> dict[str, Any]:
    realm = realm_for_request(request)
    if realm is None:
        raise JsonableError("Invalid subdomain")
    # Zulip's default: no password is an empty one, which never matches.
    has_password = "password" in request.POST or "password" in request.GET
    password = get_param(request, "password") if has_password else ""
    reauthenticate(request, realm, user, password)  # refusals: api/errors.py's table
    return {"api_key": user.api_key, "email": user.delivery_email}
