"""The SSO routes, as Zulip's: start at `/accounts/login/social/...`, end at `/complete/<backend>/`.

Start validates ``mobile_flow_otp`` / ``desktop_flow_otp`` exactly as the login
page does and hands them to the method, which keeps them server-side with the
OAuth state (never in the session: Zulip's issue 13560). The end runs the IdP's
identity through the one sign-in pipeline (limits, account checks, audit, the
new-login email) and finishes as a password sign-in would: the mobile flow's bare
302 to ``zulip://``, the desktop flow's token page, or a web session. Every
failure lands on the login page with a message, and leaves an audit entry.
When the IdP vouched for several addresses (GitHub), the end is first a page to
choose one; its answer comes back to the same end as a further step of the flow.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from keyhouse.api.errors import JsonableError
from keyhouse.api.responses import json_error
from keyhouse.auth.backends import common_get_active_user
from keyhouse.auth.pipeline import Attempt, sign_in
from keyhouse.auth.refusals import (
    SSO_FLAG_ORDER,
    EmailNotVerified,
    IdPFailed,
    SignInRefused,
)
from keyhouse.realms.models import Realm
from keyhouse.sso import flow_store
from keyhouse.sso.registry import EmailChoice, ExternalIdentity, IdPFailure, method_for
from keyhouse.users.actions import UserActionError, create_user
from keyhouse.users.models import User
from keyhouse.web.app_flows import finish_sign_in
from keyhouse.web.decorators import realm_deactivated, realm_page
from keyhouse.web.login import LoginPage, safe_next
from keyhouse.web.otp import OTPError, validate_otp_params
from keyhouse.web.refusal_messages import page_message

logger = logging.getLogger("keyhouse.web.sso")

RELAYED = ("mobile_flow_otp", "desktop_flow_otp", "next", "is_signup")
_WRONG_REALM = IdPFailure("This sign-in link is not for this organization.", "SSO_WRONG_REALM")


@never_cache
@realm_page
def login_social(
    request: HttpRequest, realm: Realm, backend: str, idp: str | None = None
) -> HttpResponse:
    return _start(request, realm, backend, idp, is_signup=False)


@never_cache
@realm_page
def signup_social(
    request: HttpRequest, realm: Realm, backend: str, idp: str | None = None
) -> HttpResponse:
    return _start(request, realm, backend, idp, is_signup=True)


def _start(
    request: HttpRequest, realm: Realm, backend: str, idp: str | None, *, is_signup: bool
) -> HttpResponse:
    mobile_flow_otp = request.GET.get("mobile_flow_otp")
    desktop_flow_otp = request.GET.get("desktop_flow_otp")
    try:
        validate_otp_params(mobile_flow_otp, desktop_flow_otp)
    except OTPError as exc:
        return json_error(JsonableError(str(exc)))  # as the login page answers
    if realm.deactivated:
        return realm_deactivated(request, realm)
    method = method_for(backend)
    if method is None or not method.enabled(realm):
        return _refused(request, realm, IdPFailed("This sign-in method is not enabled here."))
    relay = {
        "mobile_flow_otp": mobile_flow_otp or "",
        "desktop_flow_otp": desktop_flow_otp or "",
        "next": safe_next(request),
        "is_signup": "1" if is_signup else "",
    }
    try:
        return method.begin(request, realm, idp, relay)
    except IdPFailure as failure:
        return _failed(request, realm, failure)


# The OAuth state (single use, bound to the browser by its cookie) is this route's
# CSRF defence, as in social_django; an IdP's POST-back carries no CSRF token.
@csrf_exempt
@never_cache
@realm_page
def social_complete(request: HttpRequest, realm: Realm, backend: str) -> HttpResponse:
    method = method_for(backend)
    if method is None:
        return HttpResponse(status=404)
    try:
        identity, relay = method.complete(request)
    except IdPFailure as failure:
        return _failed(request, realm, failure)
    except EmailChoice as choice:
        if choice.subdomain != realm.subdomain:
            return _failed(request, realm, _WRONG_REALM)
        return _choose_email(request, realm, choice)
    if relay.get("subdomain") != realm.subdomain:
        # The state was issued for another organization's host: never cross realms.
        return _failed(request, realm, _WRONG_REALM)
    if not method.enabled(realm):
        return _failed(
            request,
            realm,
            IdPFailure(
                "This sign-in method is not enabled here.", "SSO_DISABLED", identity.audit_method
            ),
        )
    return _sign_in(request, realm, identity, relay)


def _choose_email(request: HttpRequest, realm: Realm, choice: EmailChoice) -> HttpResponse:
    """Zulip's social_auth_select_email page: one button per verified address.

    Each posts the address with the step's state back to ``/complete/<backend>/``;
    the binding cookie is renewed so that the step has its full lifetime.
    """
    response = render(
        request,
        "keyhouse/sso_choose_email.html",
        {
            "realm": realm,
            "choice": choice,
            "action": reverse("social_complete", args=(choice.backend,)),
        },
    )
    binding = request.COOKIES.get(flow_store.BINDING_COOKIE, "")
    flow_store.set_binding_cookie(request, response, choice.backend, binding)
    return response


def _sign_in(
    request: HttpRequest, realm: Realm, identity: ExternalIdentity, relay: dict[str, str]
) -> HttpResponse:
    mobile_flow_otp = relay.get("mobile_flow_otp") or None
    desktop_flow_otp = relay.get("desktop_flow_otp") or None

    def verify(flags: dict[str, object]) -> User | None:
        if not identity.email_verified or not identity.email:
            raise EmailNotVerified()
        user = common_get_active_user(identity.email, realm, flags)
        if user is None and not flags and identity.auto_signup:
            return _create(realm, identity)
        if user is None and not flags:
            flags["no_account"] = True
        return user

    attempt = Attempt(
        request=request,
        realm=realm,
        username=identity.email,
        method=identity.audit_method,
        verify=verify,
        needs_password_auth=False,
        flag_order=SSO_FLAG_ORDER,
        # The IdP proved who this is: hiding the account's state from them hides nothing.
        hide_account_state=False,
        new_login_email=not (mobile_flow_otp or desktop_flow_otp),  # their finishes announce it
    )
    try:
        user = sign_in(attempt)
    except SignInRefused as refusal:
        return _refused(request, realm, refusal)
    return finish_sign_in(
        request,
        user,
        mobile_flow_otp=mobile_flow_otp,
        desktop_flow_otp=desktop_flow_otp,
        next_url=relay.get("next") or "",
        backend=_session_backend(),
    )


def _create(realm: Realm, identity: ExternalIdentity) -> User | None:
    """auto_signup: a new account without a password (it signs in through the IdP)."""
    full_name = identity.full_name or identity.email.split("@", 1)[0]
    try:
        return create_user(realm, identity.email, full_name[:100])
    except UserActionError:  # a concurrent sign-in created it first
        return User.objects.get_by_delivery_email(identity.email, realm)


def _session_backend() -> str:
    from django.conf import settings

    return settings.AUTHENTICATION_BACKENDS[0]


def _failed(request: HttpRequest, realm: Realm, failure: IdPFailure) -> HttpResponse:
    """An IdP-side failure: audited through the pipeline, then the login page says why."""
    refusal = IdPFailed(failure.reason, failure.code)

    def verify(flags: dict[str, object]) -> User | None:
        raise refusal

    attempt = Attempt(
        request=request,
        realm=realm,
        username="",
        method=failure.audit_method,
        verify=verify,
        limited=False,  # no username to count against; per-IP limits would need one
        needs_password_auth=False,
        hide_account_state=False,
    )
    try:
        sign_in(attempt)
    except SignInRefused as refused:
        return _refused(request, realm, refused)
    raise AssertionError("unreachable: verify always refuses")


def _refused(request: HttpRequest, realm: Realm, refusal: SignInRefused) -> HttpResponse:
    message, status = page_message(refusal)
    page = LoginPage(request, realm)
    page.mobile_flow_otp = page.desktop_flow_otp = None  # a failed flow is over
    return page.refuse(message, status=status)
