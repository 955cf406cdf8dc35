"""``/auth/verify``: may this request through? The forward-auth check (docs/gateway.md).

A proxy sends every request it guards here first (headers only, any method)
and goes on to its upstream only on a 2xx, copying this answer's identity
headers onto the request. Credentials are checked exactly as on
``users/me``: HTTP Basic ``email:api_key`` through ``authenticate_api_key``
(same account checks, same per-user API rate limit, same Redis cache, so a
cached answer costs no database query); or, where the realm allows it
(``keyhouse realm set --gateway-sessions on``), the keyhouse web session the
browser signed in with. Then ``GATEWAY_RULES`` say whether this user may reach
this host and path.

Answers: 200 with the identity headers; Zulip's JSON errors otherwise (401 with
``WWW-Authenticate: Basic realm="zulip"``, 403 for a rule, 429 and 503 with
``Retry-After``), except that a browser without credentials is sent to the
login page of the realm, and back afterwards. Caddy and Traefik hand any
non-2xx answer to the client as it is. nginx's ``auth_request`` cannot (it
turns every status but 401 and 403 into a 500, and drops bodies), so when
nginx's headers say it is nginx asking, every refusal is a 401 carrying the
real status in ``X-Keyhouse-Status`` and the body in ``X-Keyhouse-Error``,
which the nginx recipe turns back into the real answer.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from keyhouse.api.account_checks import validate_account_and_subdomain
from keyhouse.api.basic_auth import authenticate_api_key
from keyhouse.api.errors import AccessDeniedError, CsrfFailedError, UnauthorizedError
from keyhouse.api.middleware import error_response
from keyhouse.api.responses import json_response, json_success
from keyhouse.auth import second_factor
from keyhouse.auth.ratelimit import hit
from keyhouse.gateway.forwarded import OriginalRequest, original_request, speaks_nginx
from keyhouse.gateway.identity import identity_headers, role_name
from keyhouse.gateway_rules import Rule, compiled, first_match
from keyhouse.realms.resolve import get_realm
from keyhouse.users.models import User

logger = logging.getLogger("keyhouse.gateway")

# Methods a browser's cross-site form or image can send with the cookie attached
# and that change nothing (RFC 9110 safe methods): no origin check for them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@csrf_exempt
def verify(request: HttpRequest) -> HttpResponse:
    nginx = speaks_nginx(request)
    try:
        response = _check(request, original_request(request))
    except Exception as exc:  # noqa: BLE001 - mapped by the one table, or re-raised
        error = error_response(request, exc)
        if error is None:
            raise
        response = error
    return for_nginx(response) if nginx else response


def _check(request: HttpRequest, original: OriginalRequest) -> HttpResponse:
    user = _authenticated_user(request, original)
    if user is None:
        redirect = _login_redirect(request, original)
        if redirect is not None:
            return redirect
        raise UnauthorizedError()
    rules = _rules()  # none: no host or path to work out (the common case, the fast one)
    rule = first_match(rules, original.hostname, original.path, original.method) if rules else None
    if rule is not None and not rule.admits(user.realm.subdomain, role_name(user), user.is_bot):
        logger.info("gateway rule %d refused user %s", rule.index, user.id)
        raise AccessDeniedError()
    response = json_success({"user_id": user.id})
    for name, value in identity_headers(user).items():
        response[name] = value
    return response


def _rules() -> tuple[Rule, ...]:
    """GATEWAY_RULES, parsed once (checked at start-up already, config_keys.py)."""
    return compiled(settings.GATEWAY_RULES)


def _authenticated_user(request: HttpRequest, original: OriginalRequest) -> User | None:
    """The user the credentials name, None if there are none; refusals raise."""
    if "HTTP_AUTHORIZATION" in request.META:
        return authenticate_api_key(request, original.subdomain)
    user = _session_user(request, original)
    if user is None:
        return None
    # As session_user_required does for /json/: the account checks unwrapped,
    # a check that the request comes from the site, the per-user limit.
    validate_account_and_subdomain(request, user, original.subdomain)
    _check_origin(request, original)
    if settings.RATE_LIMITING:
        hit(request, "api_by_user", str(user.id))
    return user


def _session_user(request: HttpRequest, original: OriginalRequest) -> User | None:
    """The browser's signed-in user, if it is of the host's realm and the realm takes sessions.

    A session of another realm's account does not count, as on keyhouse's pages
    (web/decorators.py): it is as if the browser were not signed in; nor does one
    of an account with two-factor sign-in that no device verified (the password
    alone must not open what the code guards; auth/second_factor.py).
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not isinstance(user, User):
        return None
    realm = user.realm
    if realm.subdomain != original.subdomain or not realm.gateway_sessions:
        return None
    if not second_factor.session_verified(request, user):
        return None
    return user


def _check_origin(request: HttpRequest, original: OriginalRequest) -> None:
    """A cookie rides along on other sites' forms too: unsafe methods must come from here.

    The upstream cannot check a CSRF token keyhouse issued, so a state-changing
    request authenticated by the session must show the browser's own proof of
    origin: ``Origin`` equal to the guarded site's, or, when a browser sends
    none, ``Sec-Fetch-Site: same-origin``. (Django's session cookie is also
    SameSite=Lax, which keeps it off most cross-site posts to begin with.)
    """
    if original.method in SAFE_METHODS:
        return
    origin = request.META.get("HTTP_ORIGIN")
    if origin is not None:
        if origin.lower() == original.origin:
            return
    elif request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin":
        return
    raise CsrfFailedError("Origin checking failed - the request does not come from this site.")


def _is_realm_host(host: str) -> bool:
    """The external host, or a subdomain of it: the only places a redirect may go."""
    external = settings.EXTERNAL_HOST
    if not external:
        return True  # every host is the root realm (design.md)
    return re.fullmatch(rf"(?:[a-z0-9-]+\.)*{re.escape(external)}(?::\d+)?", host) is not None


def _local_uri(uri: str) -> bool:
    return uri.startswith("/") and not uri.startswith(("//", "/\\"))


def _login_redirect(request: HttpRequest, original: OriginalRequest) -> HttpResponse | None:
    """A browser without credentials: to the realm's login page, and back afterwards.

    Only for a realm that takes sessions (signing in could not help otherwise),
    only to a host of keyhouse's realms, and ``next`` only a path on that same
    host, which the login page accepts (web/login.py, ``safe_next``): never an
    open redirect.
    """
    if "text/html" not in request.headers.get("Accept", ""):
        return None
    if not _is_realm_host(original.host):
        return None
    realm = get_realm(original.subdomain)
    if realm is None or realm.deactivated or not realm.gateway_sessions:
        return None
    login = f"{original.origin}{reverse('login')}"
    if original.method in ("GET", "HEAD") and _local_uri(original.uri):
        login += "?" + urlencode({"next": original.uri})
    return HttpResponseRedirect(login)


def for_nginx(response: HttpResponse) -> HttpResponse:
    """A refusal nginx's auth_request can carry: 401, the real status and body in headers.

    The body goes as compact ASCII JSON (a header holds no newline, and no byte
    a proxy must guess the charset of); the nginx recipe answers it with the
    newline Zulip's bodies end with, so the client gets the very bytes.
    """
    if response.status_code < 300:
        return response
    status = response.status_code
    if not response.get("Content-Type", "").startswith("application/json"):
        # The login redirect: nginx answers it from X-Keyhouse-Status and Location;
        # the 401 itself says what it is (a non-JSON 401 would become a bare one).
        location = response.get("Location")
        response = json_response(UnauthorizedError().body(), status=401)
        if location:
            response["Location"] = location
    else:
        body = response.content.rstrip(b"\n")
        if not body.isascii():
            body = json.dumps(json.loads(body), separators=(",", ":")).encode()
        response["X-Keyhouse-Error"] = body.decode("ascii")
        response.status_code = 401
    response["X-Keyhouse-Status"] = str(status)
    return response
