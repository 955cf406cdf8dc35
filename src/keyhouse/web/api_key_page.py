"""The API-key page (``/account/api-key/``): see the key, download a zuliprc, regenerate.

A session alone never shows the key: the user re-enters the password first (the
same check as Zulip's ``json_fetch_api_key``, through the login rate limits), and
that proof counts for a few minutes of this session only. Everything that changes
or hands out the key is a POST with a CSRF token; the key is never in a URL.
"""

from __future__ import annotations

import time

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from keyhouse.auth import second_factor
from keyhouse.auth.reauth import reauthenticate, reauthentication_needs_password
from keyhouse.auth.refusals import SignInRefused
from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import base_url
from keyhouse.users.actions import regenerate_api_key
from keyhouse.users.models import User
from keyhouse.web.decorators import PAGE_METHODS, signed_in_page
from keyhouse.web.refusal_messages import page_message

# How long one password re-entry unlocks the key in this session.
REAUTH_SECONDS = 5 * 60
REAUTH_SESSION_KEY = "keyhouse_reauthenticated_at"
REAUTH_EXPIRED = "For your security, enter your password again first."


def mark_reauthenticated(request: HttpRequest) -> None:
    request.session[REAUTH_SESSION_KEY] = time.time()


def recently_reauthenticated(request: HttpRequest) -> bool:
    at = request.session.get(REAUTH_SESSION_KEY)
    return isinstance(at, int | float) and 0 <= time.time() - at <= REAUTH_SECONDS


def zuliprc_text(request: HttpRequest, user: User) -> str:
    """The file zulip-terminal and the ``zulip`` library read (section [api])."""
    return f"[api]\nemail={user.delivery_email}\nkey={user.api_key}\nsite={base_url(request)}\n"


def _render(
    request: HttpRequest, realm: Realm, user: User, error: str = "", status: int = 200
) -> HttpResponse:
    unlocked = recently_reauthenticated(request)
    context = {
        "realm": realm,
        "user": user,
        "unlocked": unlocked,
        "api_key": user.api_key if unlocked else "",
        "needs_password": reauthentication_needs_password(realm),
        "error": error,
        "site": base_url(request),
        "reauth_minutes": REAUTH_SECONDS // 60,
        # Two-factor sign-in's settings page, where this account could use it.
        "two_factor_on": second_factor.active() and reauthentication_needs_password(realm),
        "two_factor_enrolled": second_factor.has_totp_device(user),
    }
    return render(request, "keyhouse/api_key.html", context, status=status)


@sensitive_post_parameters("password")
@never_cache
@require_http_methods(PAGE_METHODS)  # before the sign-in check: a wrong method is a 405 for all
@csrf_protect
@signed_in_page
def api_key_page(request: HttpRequest, realm: Realm, user: User) -> HttpResponse:
    """GET shows the page (with the key while unlocked); POST re-enters the password."""
    if request.method in ("GET", "HEAD"):
        return _render(request, realm, user)
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    password = request.POST.get("password") or ""
    try:
        reauthenticate(request, realm, user, password)
    except SignInRefused as refusal:
        message, status = page_message(refusal)
        return _render(request, realm, user, message, status)
    mark_reauthenticated(request)
    # Post/Redirect/Get: reloading the page must not resubmit the password.
    return HttpResponseRedirect(reverse("api_key"))


@never_cache
@require_POST
@csrf_protect
@signed_in_page
def download_zuliprc(request: HttpRequest, realm: Realm, user: User) -> HttpResponse:
    if not recently_reauthenticated(request):
        messages.error(request, REAUTH_EXPIRED)
        return HttpResponseRedirect(reverse("api_key"))
    response = HttpResponse(zuliprc_text(request, user), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="zuliprc"'
    return response


@never_cache
@require_POST
@csrf_protect
@signed_in_page
def regenerate_key(request: HttpRequest, realm: Realm, user: User) -> HttpResponse:
    if not recently_reauthenticated(request):
        messages.error(request, REAUTH_EXPIRED)
        return HttpResponseRedirect(reverse("api_key"))
    regenerate_api_key(user)
    messages.success(
        request, "Your API key has been regenerated. The old key no longer works anywhere."
    )
    return HttpResponseRedirect(reverse("api_key"))
