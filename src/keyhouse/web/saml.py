"""SAML's browser routes: SP metadata, the start of a sign-in, the ACS (docs/sso.md, "SAML").

    /saml/metadata.xml                 what the IdP's administrator registers
    /accounts/login/social/saml/<idp>  start: AuthnRequest to the IdP (Zulip's URL)
    /complete/saml/                    POST SAMLResponse → sign-in; GET SAMLRequest → logout
                                       (IdP-initiated); GET SAMLResponse → the IdP's answer
                                       to our LogoutRequest (SP-initiated logout)

The ACS is a thin adapter: sso/saml/sp.py verifies, auth.pipeline.sign_in decides
(audit method ``saml:<idp>``), and the finish is the password flows' (session,
mobile ``zulip://`` redirect, desktop token). Every refusal is a page with a
message and an audit entry, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as django_login
from django.contrib.auth import logout as django_logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe
from onelogin.saml2.errors import OneLogin_Saml2_Error

from keyhouse.api.errors import JsonableError
from keyhouse.api.responses import json_error
from keyhouse.auth.backends import common_get_active_user
from keyhouse.auth.pipeline import Attempt, sign_in
from keyhouse.auth.refusals import (
    SSO_FLAG_ORDER,
    SignInRefused,
    SSOInvalidResponse,
    SSOMethodDisabled,
    SSORefused,
)
from keyhouse.realms.methods import method_enabled
from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import get_realm, get_subdomain, realm_for_request, realm_url
from keyhouse.sso.saml import sp
from keyhouse.sso.saml.config import IdP, get_idp
from keyhouse.sso.saml.errors import SAMLConfigError
from keyhouse.users.actions import UserActionError, create_user, regenerate_api_key
from keyhouse.users.models import User
from keyhouse.users.sessions import end_user_sessions
from keyhouse.web.app_flows import finish_desktop_flow, finish_mobile_flow
from keyhouse.web.decorators import realm_deactivated, realm_not_found, realm_page
from keyhouse.web.login import default_landing, safe_next
from keyhouse.web.login_tokens import issue_login_token
from keyhouse.web.otp import OTPError, validate_otp_params
from keyhouse.web.refusal_messages import page_message

logger = logging.getLogger("keyhouse.web.saml")

RELAYED_PARAMS = ("next", "mobile_flow_otp", "desktop_flow_otp")
# What a web session signed in through SAML remembers, for SP-initiated logout.
SESSION_IDP = "saml_idp"
SESSION_INDEX = "saml_session_index"
SESSION_NAME_ID = "saml_name_id"
SESSION_NAME_ID_FORMAT = "saml_name_id_format"


def refused_page(request: HttpRequest, realm: Realm, refusal: SignInRefused) -> HttpResponse:
    message, status = page_message(refusal)
    return render(
        request, "keyhouse/sso_refused.html", {"realm": realm, "error": message}, status=status
    )


@never_cache
@require_safe
def saml_metadata(request: HttpRequest) -> HttpResponse:
    """The SP metadata (entity ID, ACS and SLO URLs, certificate) for this host."""
    if not settings.SOCIAL_AUTH_SAML_SP_ENTITY_ID:
        return HttpResponse(
            "SAML is not configured on this server.\n", status=404, content_type="text/plain"
        )
    return HttpResponse(sp.metadata_xml(request), content_type="application/samlmetadata+xml")


def _idp_for(realm: Realm, name: str) -> IdP | None:
    idp = get_idp(name)
    if idp is None or not method_enabled("saml", realm) or not idp.serves(realm.subdomain):
        return None
    return idp


@never_cache
@require_safe
@realm_page
def saml_login(request: HttpRequest, realm: Realm, idp_name: str) -> HttpResponse:
    """SP-initiated start; the OTPs are checked as the login page checks them."""
    mobile = request.GET.get("mobile_flow_otp")
    desktop = request.GET.get("desktop_flow_otp")
    try:
        validate_otp_params(mobile, desktop)
    except OTPError as exc:
        return json_error(JsonableError(str(exc)))
    if realm.deactivated:
        return realm_deactivated(request, realm)
    idp = _idp_for(realm, idp_name)
    if idp is None:
        return refused_page(request, realm, SSOMethodDisabled())
    params = {"next": safe_next(request), "mobile_flow_otp": mobile, "desktop_flow_otp": desktop}
    kept = {k: v for k, v in params.items() if v}
    return HttpResponseRedirect(sp.start_login(request, idp, realm.subdomain, kept))


@csrf_exempt  # the IdP's cross-site POST: its signature, not a cookie, is the proof
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def saml_acs(request: HttpRequest) -> HttpResponse:
    host_realm = realm_for_request(request)
    if host_realm is None:
        return realm_not_found(request)
    if request.method == "POST" and "SAMLResponse" in request.POST:
        return _complete_sign_in(request, host_realm)
    if request.method == "GET" and "SAMLRequest" in request.GET:
        return _logout_from_idp(request, host_realm)
    if request.method == "GET" and "SAMLResponse" in request.GET:
        return _logout_answered(request, host_realm)
    return refused_page(request, host_realm, SSOInvalidResponse("no SAML message"))


def _complete_sign_in(request: HttpRequest, host_realm: Realm) -> HttpResponse:
    identity: sp.Identity | None = None
    refusal: SSORefused | None = None
    try:
        identity = sp.process_response(request, get_subdomain(request))
    except SSORefused as exc:
        refusal = exc
        logger.info("SAML response refused: %s: %s", exc.code, exc.detail)
    realm = host_realm
    if identity is not None:
        target = get_realm(identity.subdomain)
        if target is None:
            refusal = SSOMethodDisabled(f"no realm {identity.subdomain!r}")
        else:
            realm = target
    elsewhere = realm.pk != host_realm.pk  # IdP-initiated for another realm's host
    otps = identity.params if identity else {}
    app_flow = bool(otps.get("mobile_flow_otp") or otps.get("desktop_flow_otp"))

    def verify(flags: dict[str, Any]) -> User | None:
        if refusal is not None:
            raise refusal
        assert identity is not None
        if not method_enabled("saml", realm):
            raise SSOMethodDisabled(f"saml is not enabled for realm {realm.subdomain!r}")
        user = common_get_active_user(identity.email, realm, flags)
        if user is None and not flags:
            if identity.idp.auto_signup:
                return _sign_up(realm, identity)
            flags["no_account"] = True
        return user

    attempt = Attempt(
        request=request,
        realm=realm,
        username=identity.email if identity else "",
        method=identity.idp.audit_method if identity else _method_of(refusal),
        verify=verify,
        limited=identity is not None,  # a refused message names no account to count
        needs_password_auth=False,
        flag_order=SSO_FLAG_ORDER,
        new_login_email=not app_flow and not elsewhere,
    )
    try:
        user = sign_in(attempt)
    except SignInRefused as exc:
        return refused_page(request, realm, exc)
    assert identity is not None
    if otps.get("mobile_flow_otp"):
        return finish_mobile_flow(request, user, otps["mobile_flow_otp"])
    if otps.get("desktop_flow_otp"):
        return finish_desktop_flow(request, user, otps["desktop_flow_otp"])
    if elsewhere:
        # The session cookie belongs to the realm's host: hand over with a one-time
        # token, as the desktop flow does (Zulip's redirect_and_log_into_subdomain).
        token = issue_login_token(user)
        scheme = "https" if request.is_secure() else "http"
        return HttpResponseRedirect(f"{realm_url(realm, scheme)}/accounts/login/subdomain/{token}")
    django_login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    request.session[SESSION_IDP] = identity.idp.name
    request.session[SESSION_INDEX] = identity.session_index
    request.session[SESSION_NAME_ID] = identity.name_id
    request.session[SESSION_NAME_ID_FORMAT] = identity.name_id_format
    return HttpResponseRedirect(otps.get("next") or default_landing())


def _method_of(refusal: SSORefused | None) -> str:
    idp = getattr(refusal, "idp", "")
    return f"saml:{idp}"[:32] if idp else "saml"


def _sign_up(realm: Realm, identity: sp.Identity) -> User | None:
    """auto_signup: the IdP vouched for the email, so the account is made on first sign-in."""
    try:
        return create_user(realm, identity.email, identity.full_name)
    except UserActionError as exc:  # an invalid email, or a concurrent sign-up won
        logger.info("SAML auto_signup refused: %s", exc)
        return User.objects.get_by_delivery_email(identity.email, realm)


def _logout_from_idp(request: HttpRequest, realm: Realm) -> HttpResponse:
    """IdP-initiated SLO: end the user's sessions, rotate the API key, answer the IdP."""
    try:
        order = sp.process_logout_request(request)
    except SSORefused as exc:
        logger.warning("SAML LogoutRequest refused: %s: %s", exc.code, exc.detail)
        return logout_refused_page(request, realm, answer_to_us=False)
    user = User.objects.get_by_delivery_email(order.email, realm) if order.email else None
    if user is not None and order.idp.serves(realm.subdomain):
        ended = end_user_sessions(user)
        regenerate_api_key(user)  # the apps' keys too, as Zulip's SLO does
        logger.info(
            "SAML logout from %s: user %s, %d session(s) ended", order.idp.name, user.pk, ended
        )
    else:
        logger.info("SAML logout from %s for no user of this realm", order.idp.name)
    return HttpResponseRedirect(order.redirect_to)


def logout_refused_page(request: HttpRequest, realm: Realm, *, answer_to_us: bool) -> HttpResponse:
    """A SAML logout message we could not trust: say so plainly (the log has the reason)."""
    context = {"realm": realm, "answer_to_us": answer_to_us}
    return render(request, "keyhouse/saml_logout_refused.html", context, status=400)


def sp_initiated_logout_url(request: HttpRequest, realm: Realm) -> str | None:
    """Where to send a signing-out browser so its IdP session ends too; None: local logout.

    Zulip's should_do_saml_sp_initiated_logout: a web session that signed in
    through an IdP with ``sp_initiated_logout_enabled``, in a realm that still
    enables SAML. Called before the local session ends (it holds the IdP, NameID
    and SessionIndex); the caller ends it whatever this returns, so a silent IdP
    never leaves the user signed in here.
    """
    user = request.user
    idp_name = request.session.get(SESSION_IDP)
    if not idp_name or not isinstance(user, User) or not method_enabled("saml", realm):
        return None
    try:
        idp = get_idp(idp_name)
        if idp is None or not idp.sp_initiated_logout_enabled:
            return None
        if not idp.slo_url:
            logger.warning("SAML IdP %s: sp_initiated_logout_enabled without slo_url", idp.name)
            return None
        return sp.start_logout(
            request,
            idp,
            name_id=request.session.get(SESSION_NAME_ID) or user.delivery_email,
            name_id_format=request.session.get(SESSION_NAME_ID_FORMAT) or "",
            session_index=request.session.get(SESSION_INDEX) or "",
            subdomain=realm.subdomain,
        )
    except (SAMLConfigError, OneLogin_Saml2_Error) as exc:
        logger.warning("SAML LogoutRequest to %s not sent: %s", idp_name, exc)
        return None


def _logout_answered(request: HttpRequest, host_realm: Realm) -> HttpResponse:
    """The IdP's LogoutResponse to our LogoutRequest: verified, it ends on the login page."""
    try:
        done = sp.process_logout_response(request)
    except SSORefused as exc:
        logger.warning("SAML LogoutResponse refused: %s: %s", exc.code, exc.detail)
        return logout_refused_page(request, host_realm, answer_to_us=True)
    # The session ended before the browser left for the IdP; one made since, in
    # this browser, ends too: the IdP has just said this person signed out.
    django_logout(request)
    messages.info(request, "You have signed out.")
    realm = get_realm(done.subdomain) or host_realm
    if realm.pk == host_realm.pk:
        return HttpResponseRedirect(reverse("login"))
    scheme = "https" if request.is_secure() else "http"
    return HttpResponseRedirect(realm_url(realm, scheme) + reverse("login"))
