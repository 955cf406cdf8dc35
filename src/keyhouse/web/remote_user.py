"""Remote-user SSO, as Zulip's ``start_remote_user_sso`` and ``remote_user_sso``.

The web server in front signs the person in (nginx ``auth_basic``, Kerberos,
client certificates…) and names them in ``REMOTE_USER_HEADER``. keyhouse is
behind that proxy, so the header is believed only from ``TRUSTED_PROXIES``
(auth/proxy_header.py): from anyone else it is ignored, as if absent, and
audited, since whoever reaches keyhouse directly could otherwise name any user.

``/accounts/login/start/sso/`` checks the apps' OTPs and hands its query string
on to ``/accounts/login/sso/`` (Zulip: the proxy guards only the latter, so the
start page stays reachable without credentials). That route maps the name to an
email (``SSO_APPEND_DOMAIN``), runs it through the one sign-in pipeline (limits,
account checks, an audit entry with method ``remoteuser``, the new-login email)
and finishes as every browser sign-in does (web/app_flows.py).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from keyhouse.api.errors import JsonableError
from keyhouse.api.responses import json_error
from keyhouse.auth.backends import common_get_active_user
from keyhouse.auth.pipeline import Attempt, sign_in
from keyhouse.auth.proxy_header import ProxyHeader, proxy_header
from keyhouse.auth.refusals import (
    SSO_FLAG_ORDER,
    NoAccount,
    RealmDeactivated,
    RemoteUserUntrusted,
    SignInRefused,
    WrongRealm,
)
from keyhouse.realms.methods import method_enabled
from keyhouse.realms.models import Realm
from keyhouse.sso.remote_user import AUDIT_METHOD, remote_user_to_email
from keyhouse.users.models import User
from keyhouse.web.app_flows import finish_sign_in
from keyhouse.web.decorators import realm_deactivated, realm_page
from keyhouse.web.login import LoginPage, safe_next
from keyhouse.web.otp import OTPError, validate_otp_params
from keyhouse.web.refusal_messages import page_message

logger = logging.getLogger("keyhouse.web.remote_user")

# Zulip's config-error pages (templates/zerver/config_error/remote_user_*.html),
# naming keyhouse's header and settings instead of Apache's REMOTE_USER.
BACKEND_DISABLED = "Authentication via the {header} header is disabled."
HEADER_MISSING = "The {header} header is not set."
INVALID_EMAIL = "Enter a valid email address."


def _param(request: HttpRequest, name: str) -> str | None:
    """Zulip's REQ: the form's value, else the query string's."""
    value = request.POST.get(name)
    return value if value is not None else request.GET.get(name)


def config_error(request: HttpRequest, realm: Realm, message: str) -> HttpResponse:
    """Zulip's ``config_error`` page, as a 403: a client can cause it, so never a 5xx."""
    context = {"realm": realm, "message": message.format(header=settings.REMOTE_USER_HEADER)}
    return render(request, "keyhouse/config_error.html", context, status=403)


@never_cache
@realm_page
def start_remote_user_sso(request: HttpRequest, realm: Realm) -> HttpResponse:
    """Check the OTPs as the login page does, then on to the route the proxy guards."""
    try:
        validate_otp_params(request.GET.get("mobile_flow_otp"), request.GET.get("desktop_flow_otp"))
    except OTPError as exc:
        return json_error(JsonableError(str(exc)))
    url = reverse("remote_user_sso")
    query = request.META.get("QUERY_STRING", "")
    # Zulip's append_url_query_string: the query string as the client sent it.
    return HttpResponseRedirect(f"{url}?{query}" if query else url)


@never_cache
@realm_page
def remote_user_sso(request: HttpRequest, realm: Realm) -> HttpResponse:
    """Zulip's order: method enabled, header present, a valid email, the OTPs, the account."""
    if not method_enabled(AUDIT_METHOD, realm):
        return config_error(request, realm, BACKEND_DISABLED)
    header = proxy_header(request, settings.REMOTE_USER_HEADER)
    if header.forged:
        _audit_forged(request, realm, header)
    if header.value is None:
        if header.trusted:
            logger.warning(
                "remote-user SSO: the trusted proxy %s sent no %s header", header.peer, header.name
            )
        return config_error(request, realm, HEADER_MISSING)
    try:
        email = remote_user_to_email(header.value)
        validate_email(email)
    except (ValueError, ValidationError):
        return json_error(JsonableError(INVALID_EMAIL))
    mobile_flow_otp = _param(request, "mobile_flow_otp")
    desktop_flow_otp = _param(request, "desktop_flow_otp")
    try:
        validate_otp_params(mobile_flow_otp, desktop_flow_otp)
    except OTPError as exc:
        return json_error(JsonableError(str(exc)))
    app_flow = bool(mobile_flow_otp or desktop_flow_otp)
    try:
        user = sign_in(_attempt(request, realm, email, new_login_email=not app_flow))
    except SignInRefused as refusal:
        return _refused(request, realm, email, refusal)
    return finish_sign_in(
        request,
        user,
        mobile_flow_otp=mobile_flow_otp,
        desktop_flow_otp=desktop_flow_otp,
        next_url=safe_next(request),
    )


def _attempt(request: HttpRequest, realm: Realm, email: str, *, new_login_email: bool) -> Attempt:
    def verify(flags: dict[str, object]) -> User | None:
        if realm.deactivated:
            flags["inactive_realm"] = True
            return None
        user = common_get_active_user(email, realm, flags)
        if user is None and not flags:
            flags["no_account"] = True
        return user

    return Attempt(
        request=request,
        realm=realm,
        username=email,
        method=AUDIT_METHOD,
        verify=verify,
        needs_password_auth=False,
        flag_order=SSO_FLAG_ORDER,
        # The proxy proved who this is: hiding the account's state from them hides nothing.
        hide_account_state=False,
        new_login_email=new_login_email,  # the app flows' finishes announce it
    )


def _audit_forged(request: HttpRequest, realm: Realm, header: ProxyHeader) -> None:
    """One audit entry (the peer is its client IP, the claimed name its username) and a warning.

    Not counted against any limit: nothing was verified, and counting it would let
    anyone spend the named user's password budget.
    """
    logger.warning(
        "remote-user SSO: ignored the %s header from %s, which is not in TRUSTED_PROXIES",
        header.name,
        header.peer or "an unknown peer",
    )

    def verify(flags: dict[str, object]) -> User | None:
        raise RemoteUserUntrusted(header.name)

    attempt = Attempt(
        request=request,
        realm=realm,
        username=header.sent or "",
        method=AUDIT_METHOD,
        verify=verify,
        limited=False,
        needs_password_auth=False,
        hide_account_state=False,
    )
    try:
        sign_in(attempt)
    except RemoteUserUntrusted:
        return
    raise AssertionError("unreachable: verify always refuses")


def _refused(
    request: HttpRequest, realm: Realm, email: str, refusal: SignInRefused
) -> HttpResponse:
    """Zulip's pages: no account → "No account found for …"; a deactivated organization's notice."""
    if isinstance(refusal, RealmDeactivated):
        return realm_deactivated(request, realm)
    if isinstance(refusal, NoAccount | WrongRealm):
        return render(request, "keyhouse/account_not_found.html", {"realm": realm, "email": email})
    message, status = page_message(refusal)
    page = LoginPage(request, realm)
    page.mobile_flow_otp = page.desktop_flow_otp = None  # a failed flow is over
    return page.refuse(message, status=status)
