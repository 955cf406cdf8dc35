"""What every browser page of a realm needs first: the realm, and maybe a signed-in user.

Pages on a host that names no realm answer one clear 404 page instead of a form
that could never work; pages for signed-in users send everyone else to the login
page and back.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from keyhouse.auth import second_factor
from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import realm_for_request
from keyhouse.users.models import User

RealmView = Callable[..., HttpResponse]

# A form page: shown by GET (and HEAD, which browsers and link checkers send),
# submitted by POST. Any other method, OPTIONS included, is Django's 405 with
# ``Allow``: a page has nothing to say to a CORS preflight (docs/compatibility.md).
PAGE_METHODS = ["GET", "HEAD", "POST"]


def realm_not_found(request: HttpRequest) -> HttpResponse:
    return render(
        request, "keyhouse/realm_not_found.html", {"host": request.get_host()}, status=404
    )


def realm_deactivated(request: HttpRequest, realm: Realm) -> HttpResponse:
    return render(request, "keyhouse/realm_deactivated.html", {"realm": realm})


def realm_page(view: RealmView) -> Callable[..., HttpResponse]:
    """Resolve the host's realm and pass it on; unknown host → the 404 page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        realm = realm_for_request(request)
        if realm is None:
            return realm_not_found(request)
        return view(request, realm, *args, **kwargs)

    return wrapper


def session_user(request: HttpRequest, realm: Realm) -> User | None:
    """The signed-in user, if the session belongs to this realm's account.

    A session for another realm's account (possible when operators share the
    session cookie across subdomains) does not count here, as in Zulip; nor does
    one of an account with a second factor that no device verified (Zulip's
    ``zulip_otp_required_if_logged_in``): its owner signs in again, with the code.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.realm_id != realm.id:
        return None
    if not second_factor.session_verified(request, user):
        return None
    return user


def login_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """To the login page, and back here afterwards if "here" can be reached by a GET."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseRedirect(reverse("login"))
    return HttpResponseRedirect(
        f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}"
    )


def signed_in_page(view: RealmView) -> Callable[..., HttpResponse]:
    """Pass realm and user on; send visitors without a session here to the login page."""

    @realm_page
    @wraps(view)
    def wrapper(request: HttpRequest, realm: Realm, *args: Any, **kwargs: Any) -> HttpResponse:
        if realm.deactivated:
            return realm_deactivated(request, realm)
        user = session_user(request, realm)
        if user is None:
            return login_redirect(request)
        return view(request, realm, user, *args, **kwargs)

    return wrapper
