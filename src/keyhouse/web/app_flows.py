"""Handing a browser sign-in back to Zulip's apps (reference §6.3, §6.5).

Mobile: a 302 to ``zulip://login?…`` with the API key XOR-ed with the app's
one-time pad; the app checks the scheme, host, all four parameters and that the
realm's origin is the one it asked (zulip-flutter), so the realm URL is the URL
the app reached, as server_settings reports it. Desktop: a page with a single-use
token AES-GCM-encrypted for the app, which redeems it at
``/accounts/login/subdomain/<token>`` for a browser session.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login as django_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache

from keyhouse.api.errors import JsonableError
from keyhouse.api.responses import json_error
from keyhouse.auth import second_factor
from keyhouse.auth.login_notifications import email_on_new_login
from keyhouse.realms.resolve import base_url, get_subdomain
from keyhouse.users.api_keys import has_api_key_format
from keyhouse.users.models import User
from keyhouse.web.login_tokens import issue_login_token, redeem_login_token
from keyhouse.web.otp import desktop_encrypt, otp_encrypt_api_key

logger = logging.getLogger("keyhouse.web.app_flows")


def mobile_realm_url(request: HttpRequest) -> str:
    """The realm URL for the app: the URL it reached, unless the operator remaps it."""
    url = base_url(request)
    return settings.REALM_MOBILE_REMAP_URIS.get(url, url)


def mobile_redirect_location(request: HttpRequest, user: User, otp: str) -> str:
    params = {
        "otp_encrypted_api_key": otp_encrypt_api_key(user.api_key, otp),
        "email": user.delivery_email,
        "user_id": user.id,
        "realm": mobile_realm_url(request),
    }
    return "zulip://login?" + urlencode(params)


def finish_mobile_flow(request: HttpRequest, user: User, otp: str) -> HttpResponse:
    """Zulip's finish_mobile_flow: no session is created, but the login is announced."""
    # HttpResponseRedirect refuses schemes other than http(s), ftp.
    response = HttpResponse(status=302)
    response["Location"] = mobile_redirect_location(request, user, otp)
    add_never_cache_headers(response)
    email_on_new_login(request, user)
    return response


def finish_desktop_flow(
    request: HttpRequest, user: User, otp: str, otp_device_id: str = ""
) -> HttpResponse:
    """Zulip's finish_desktop_flow: the app gets a token for a session, not the API key.

    The login email is sent when the token is redeemed (that is the sign-in).
    ``otp_device_id``: the device that took this sign-in's code, so that the
    session bought with the token counts as two-factor verified.
    """
    token = issue_login_token(user, otp_device_id)
    context = {
        "realm": user.realm,
        "desktop_data": desktop_encrypt(token, otp),
        "browser_url": reverse("login"),
    }
    response = render(request, "keyhouse/desktop_redirect.html", context)
    add_never_cache_headers(response)
    return response


@never_cache
def log_into_subdomain(request: HttpRequest, token: str) -> HttpResponse:
    """Redeem a desktop-flow token for a browser session (Zulip's log_into_subdomain)."""
    if not has_api_key_format(token):
        # Not the token itself: whatever was sent might be someone's secret.
        logger.warning("log_into_subdomain: malformed token (%d characters)", len(token))
        return HttpResponse(status=400)
    redeemed = redeem_login_token(token)
    user = redeemed.user if redeemed is not None else None
    if redeemed is None or user is None or not user.is_active or user.realm.deactivated:
        logger.warning("log_into_subdomain: invalid or expired token")
        return render(request, "keyhouse/login_token_invalid.html", status=400)
    if user.realm.subdomain != get_subdomain(request):
        return json_error(JsonableError("Invalid subdomain"))
    # Any configured backend will do: each one restores the session's user the same way.
    django_login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    device = second_factor.device_by_persistent_id(user, redeemed.otp_device)
    if device is not None:
        second_factor.mark_session_verified(request, device)
    email_on_new_login(request, user)
    return HttpResponseRedirect(reverse("api_key"))


def finish_sign_in(
    request: HttpRequest,
    user: User,
    *,
    mobile_flow_otp: str | None,
    desktop_flow_otp: str | None,
    next_url: str,
    backend: str | None = None,
    otp_device: Any = None,
) -> HttpResponse:
    """The end of every browser sign-in: the mobile 302, the desktop token page, or a session.

    Zulip's ``login_or_register_remote_user`` for an existing account; ``next_url``
    must already be checked (``login.safe_next``). A session needs a backend to
    restore the user from: the one that returned it (``user.backend``, set by
    ``authenticate``), else ``backend``, else the first configured, which restores
    every keyhouse user the same way. ``otp_device``: the django-otp device that
    took this sign-in's two-factor code, if one did; the session (or the desktop
    app's, through its token) then counts as verified (auth/second_factor.py).
    """
    device_id = otp_device.persistent_id if otp_device is not None else ""
    if mobile_flow_otp:
        return finish_mobile_flow(request, user, mobile_flow_otp)
    if desktop_flow_otp:
        return finish_desktop_flow(request, user, desktop_flow_otp, otp_device_id=device_id)
    if backend is None and not hasattr(user, "backend"):
        backend = settings.AUTHENTICATION_BACKENDS[0]
    django_login(request, user, backend=backend)
    if otp_device is not None:
        second_factor.mark_session_verified(request, otp_device)
    return HttpResponseRedirect(next_url or reverse("api_key"))
