"""Zulip's development-only login endpoints (reference §2): API keys without a password.

They exist only with ``DEV_MODE`` on; otherwise they answer as on a production
Zulip server, where the routes do not exist: keyhouse's JSON 404. The check runs
before anything else, the method check included, so a production server's
answer never depends on how the endpoint is called.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.views.decorators.csrf import csrf_exempt

from keyhouse.api.errors import InvalidSubdomainError, JsonableError, NotFoundError
from keyhouse.api.params import get_param, zulip_endpoint
from keyhouse.api.views.fetch_api_key import validate_login_email
from keyhouse.auth.pipeline import Attempt, sign_in
from keyhouse.auth.refusals import DEV_FLAG_ORDER
from keyhouse.realms.methods import dev_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import base_url, realm_for_request, realm_url, subdomain_for_host
from keyhouse.users.models import User

DEV_BACKEND = "keyhouse.auth.backends.DevAuthBackend"
# Zulip routes dev_list_users with no method restriction.
ANY_METHOD = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


P = ParamSpec("P")


def development_only(
    view: Callable[Concatenate[HttpRequest, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """Outside DEV_MODE the route does not exist: the JSON 404 of any unknown /api/ path."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not settings.DEV_MODE:
            raise NotFoundError()
        return view(request, *args, **kwargs)

    return wrapper


def check_dev_auth_backend() -> None:
    """Zulip's check_dev_auth_backend, minus the production case (handled above)."""
    if DEV_BACKEND not in settings.AUTHENTICATION_BACKENDS:
        raise JsonableError("DevAuthBackend not enabled.")


@development_only
@zulip_endpoint(["POST"])
def dev_fetch_api_key(request: HttpRequest) -> dict[str, Any]:
    """§2.1: the named user's key, and a Django session as Zulip's do_login gives."""
    username = get_param(request, "username")
    check_dev_auth_backend()
    validate_login_email(username)
    realm = realm_for_request(request)
    if realm is None:
        raise InvalidSubdomainError()
    user = sign_in(
        Attempt(
            request=request,
            realm=realm,
            username=username,
            method="dev",
            credentials={"dev_auth_username": username},
            limited=False,  # Zulip's dev login has no login limits (and no password)
            needs_password_auth=False,
            flag_order=DEV_FLAG_ORDER,
            hide_account_state=False,
        )
    )
    login(request, user)
    return {"api_key": user.api_key, "email": user.delivery_email, "user_id": user.id}


def realm_url_for(request: HttpRequest, realm: Realm) -> str:
    """Where a client reaches ``realm``, as seen from this request.

    The request's own realm is wherever the client already is (scheme, host and
    port, which the canonical realm_url lacks); other realms get their canonical
    URL, with this request's port when the external host names none.
    """
    host = request.get_host()
    if subdomain_for_host(host) == realm.subdomain:
        return base_url(request)
    url = realm_url(realm, scheme=request.scheme or "http")
    _, port = split_domain_port(host)
    if port and ":" not in settings.EXTERNAL_HOST:
        url = f"{url}:{port}"
    return url


@development_only
@zulip_endpoint(ANY_METHOD, report_ignored=False)
def dev_list_users(request: HttpRequest) -> dict[str, Any]:
    """§2.2: the accounts a dev login can pick, admins apart, with where each lives.

    Zulip lists every active human on the server; keyhouse lists those of live
    realms that enable "dev", the only ones dev_fetch_api_key would let in.
    """
    check_dev_auth_backend()
    users = (
        User.objects.select_related("realm")
        .filter(is_active=True, is_bot=False, realm__deactivated=False)
        .order_by("delivery_email", "id")
    )
    admins: list[dict[str, str]] = []
    others: list[dict[str, str]] = []
    urls: dict[int, str] = {}
    for user in users:
        if not dev_auth_enabled(user.realm):
            continue
        if user.realm_id not in urls:
            urls[user.realm_id] = realm_url_for(request, user.realm)
        entry = {"email": user.delivery_email, "realm_url": urls[user.realm_id]}
        (admins if user.is_realm_admin else others).append(entry)
    return {"direct_admins": admins, "direct_users": others}
