"""POST /accounts/login/jwt/: a JSON Web Token signs a browser in (Zulip's remote_user_jwt).

Another application posts ``token`` here (a form, so CSRF-exempt as in Zulip) to
sign its user into keyhouse. The token's answers are Zulip's JSON 400s; the
account's (unknown, deactivated, rate-limited) are the login page's messages.
Beyond Zulip: ``mobile_flow_otp`` / ``desktop_flow_otp`` (validated exactly as
the login page validates them) turn the sign-in into the apps' flows, and the
end is the login page's own (``LoginPage.succeed``): the zulip:// redirect, the
desktop token page, or a session and the API-key page (or ``next``).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters

from keyhouse.api.errors import InvalidSubdomainError, JsonableError, error_for_refusal
from keyhouse.api.responses import json_error
from keyhouse.auth.jwt_tokens import jwt_attempt
from keyhouse.auth.pipeline import sign_in
from keyhouse.auth.refusals import JWTRefused, RealmDeactivated, SignInRefused
from keyhouse.realms.resolve import realm_for_request
from keyhouse.web.decorators import realm_deactivated
from keyhouse.web.login import LoginPage
from keyhouse.web.otp import OTPError, validate_otp_params
from keyhouse.web.refusal_messages import page_message


@sensitive_post_parameters("token")
@csrf_exempt
@never_cache
def jwt_login(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])  # Zulip's require_post
    realm = realm_for_request(request)
    if realm is None:
        return json_error(InvalidSubdomainError())
    page = LoginPage(request, realm)
    try:
        validate_otp_params(page.mobile_flow_otp, page.desktop_flow_otp)
    except OTPError as exc:
        return json_error(JsonableError(str(exc)))  # as the login page answers
    token = request.POST.get("token", request.GET.get("token", ""))
    try:
        attempt = jwt_attempt(request, realm, token, new_login_email=not page.app_flow)
        user = sign_in(attempt)
    except JWTRefused as refusal:
        return json_error(error_for_refusal(refusal))  # Zulip's JsonableErrors
    except RealmDeactivated:
        return realm_deactivated(request, realm)
    except SignInRefused as refusal:
        message, status = page_message(refusal)
        page.mobile_flow_otp = page.desktop_flow_otp = None  # a failed flow is over
        return page.refuse(message, status=status)
    # No backend returned this user; any configured one restores a session the same way.
    return page.succeed(user, backend=settings.AUTHENTICATION_BACKENDS[0])
