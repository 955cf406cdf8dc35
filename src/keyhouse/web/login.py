"""The login page (``/login/``, ``/accounts/login/``) and logout.

One form serves three journeys: a browser signing in (a Django session), the
mobile app's ``mobile_flow_otp`` (a zulip:// redirect carrying the encrypted API
key, no session) and the desktop app's ``desktop_flow_otp`` (a single-use token
for the app to redeem). Every submitted password goes through the sign-in
pipeline (auth/pipeline.py), so the web form has exactly the API's rate limits,
and leaves exactly one audit entry. Plain HTML forms: no JavaScript needed.

With two-factor sign-in on, an account with a second factor continues with its
code (web/two_factor_login.py) before any of the three journeys finishes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout as django_logout
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from keyhouse.api.errors import JsonableError
from keyhouse.api.responses import json_error
from keyhouse.auth import second_factor
from keyhouse.auth.pipeline import password_attempt, sign_in
from keyhouse.auth.refusals import SignInRefused
from keyhouse.backend_choice import saml_installed
from keyhouse.realms.methods import (
    email_auth_enabled,
    ldap_auth_enabled,
    password_auth_enabled,
    require_email_format_usernames,
)
from keyhouse.realms.models import Realm
from keyhouse.sso.registry import external_method_dicts
from keyhouse.users.models import User
from keyhouse.web import two_factor_login
from keyhouse.web.app_flows import finish_sign_in
from keyhouse.web.decorators import realm_deactivated, realm_page, session_user
from keyhouse.web.otp import OTPError, validate_otp_params
from keyhouse.web.refusal_messages import page_message, rate_limited_message

__all__ = ["login_page", "logout_page", "rate_limited_message"]

AUDIT_METHOD = "web"


def default_landing() -> str:
    return reverse("api_key")


def safe_next(request: HttpRequest) -> str:
    """``next`` if it is a path on this host, else "" (no open redirect)."""
    candidate = request.POST.get("next", request.GET.get("next", "")) or ""
    if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return ""
    if not url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return ""
    return candidate


def _param(request: HttpRequest, name: str) -> str | None:
    """A form field, else the query string's (the page keeps the OTPs in hidden fields)."""
    value = request.POST.get(name)
    return value if value is not None else request.GET.get(name)


def username_field(realm: Realm) -> dict[str, str]:
    """Label and input type: a username is accepted only with LDAP username mapping."""
    if require_email_format_usernames(realm):
        return {"label": "Email", "type": "email", "noun": "email"}
    return {"label": "Email or username", "type": "text", "noun": "username"}


def password_reset_url(realm: Realm) -> str:
    """The reset page's path when this realm has email passwords and the page is routed."""
    if not email_auth_enabled(realm):
        return ""
    try:
        return reverse("password_reset")
    except NoReverseMatch:
        return ""


class LoginPage:
    """One request to the login page; the context the template gets, built up as we go."""

    def __init__(self, request: HttpRequest, realm: Realm) -> None:
        self.request = request
        self.realm = realm
        self.mobile_flow_otp = _param(request, "mobile_flow_otp")
        self.desktop_flow_otp = _param(request, "desktop_flow_otp")
        self.next = safe_next(request)
        self.field = username_field(realm)
        self.username = ""
        self.error = ""

    @property
    def app_flow(self) -> bool:
        return bool(self.mobile_flow_otp or self.desktop_flow_otp)

    def sso_buttons(self) -> list[dict[str, str | None]]:
        """One button per external method; the app flow's OTP and ``next`` travel along."""
        query = urlencode(
            {
                k: v
                for k, v in (
                    ("mobile_flow_otp", self.mobile_flow_otp),
                    ("desktop_flow_otp", self.desktop_flow_otp),
                    ("next", self.next),
                )
                if v
            }
        )
        return [
            {
                "name": m["name"],
                "display_name": m["display_name"],
                "display_icon": m["display_icon"],
                "url": m["login_url"] + (f"?{query}" if query else ""),
            }
            for m in external_method_dicts(self.realm)
        ]

    def render(self, status: int = 200, **extra: Any) -> HttpResponse:
        context = {
            "sso_buttons": self.sso_buttons(),
            "realm": self.realm,
            "field": self.field,
            "username": self.username,
            "error": self.error,
            "next": self.next,
            "mobile_flow_otp": self.mobile_flow_otp,
            "desktop_flow_otp": self.desktop_flow_otp,
            "app_flow": self.app_flow,
            "password_auth_enabled": password_auth_enabled(self.realm),
            "password_reset_url": password_reset_url(self.realm),
            **extra,
        }
        return render(self.request, "keyhouse/login.html", context, status=status)

    def refuse(self, message: str, status: int = 200) -> HttpResponse:
        self.error = message
        return self.render(status=status)

    def input_problem(self, password: str) -> str | None:
        """Refusals before authentication: not login attempts (as in fetch_api_key)."""
        noun = self.field["noun"]
        if not self.username or not password:
            return f"Enter your {noun} and your password."
        limit = settings.MAX_PARAM_CHARS
        if len(self.username) > limit or len(password) > limit:
            return f"That {noun} or password is too long."
        if "\x00" in self.username or "\x00" in password:
            return f"That {noun} or password contains characters that are not allowed."
        if not ldap_auth_enabled(self.realm):
            try:
                validate_email(self.username)
            except ValidationError:
                return "Enter a valid email address."
        return None

    def submit(self) -> HttpResponse:
        self.username = (self.request.POST.get("username") or "").strip()
        password = self.request.POST.get("password") or ""
        problem = self.input_problem(password)
        if problem:
            return self.refuse(problem)
        attempt = password_attempt(
            self.request,
            self.realm,
            self.username,
            password,
            method=AUDIT_METHOD,
            new_login_email=not self.app_flow,  # the app flows' finishes announce it
            second_step_follows=True,
        )
        two_factor_login.discard(self.request)  # a new password step starts afresh
        try:
            user = sign_in(attempt)
        except SignInRefused as refusal:  # anything else (a bug): the usual 500
            message, status = page_message(refusal, self.field["noun"])
            return self.refuse(message, status=status)
        if second_factor.required(user):
            return two_factor_login.start(self, user)
        return self.succeed(user)

    def succeed(
        self, user: User, backend: str | None = None, otp_device: Any = None
    ) -> HttpResponse:
        """The app flow's finish, else a session; ``backend`` for a user no backend returned.

        ``otp_device``: the device that took the two-factor code, if one did.
        """
        return finish_sign_in(
            self.request,
            user,
            mobile_flow_otp=self.mobile_flow_otp,
            desktop_flow_otp=self.desktop_flow_otp,
            next_url=self.next,
            backend=backend,
            otp_device=otp_device,
        )


@sensitive_post_parameters("password", *two_factor_login.CODE_FIELDS.values())
@never_cache
@csrf_protect
@realm_page
def login_page(request: HttpRequest, realm: Realm) -> HttpResponse:
    page = LoginPage(request, realm)
    try:
        validate_otp_params(page.mobile_flow_otp, page.desktop_flow_otp)
    except OTPError as exc:
        # Zulip answers a bad OTP with its JSON error, even on this HTML page.
        return json_error(JsonableError(str(exc)))
    if realm.deactivated:
        return realm_deactivated(request, realm)
    if not password_auth_enabled(realm):
        return page.render()
    if two_factor_login.is_code_step(request):
        return two_factor_login.submit(page)
    if request.method == "POST":
        return page.submit()
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    two_factor_login.discard(request)  # showing the form again starts the sign-in over
    if not page.app_flow and session_user(request, realm) is not None:
        return HttpResponseRedirect(page.next or default_landing())
    return page.render()


def _idp_logout_url(request: HttpRequest, realm: Realm) -> str | None:
    if not saml_installed():  # the ``saml`` extra: without it no session is SAML's
        return None
    from keyhouse.web.saml import sp_initiated_logout_url

    return sp_initiated_logout_url(request, realm)


@never_cache
@csrf_protect
@realm_page
def logout_page(request: HttpRequest, realm: Realm) -> HttpResponse:
    """POST signs out; GET shows a button for it (signing out on GET would be CSRF-able).

    A session that signed in through a SAML IdP with ``sp_initiated_logout_enabled``
    goes on to the IdP with a LogoutRequest (web/saml.py); it ends here first, so
    an IdP that never answers leaves no session behind.
    """
    if request.method == "POST":
        idp_logout = _idp_logout_url(request, realm)  # before: the session names the IdP
        django_logout(request)
        if idp_logout:
            return HttpResponseRedirect(idp_logout)
        messages.info(request, "You have signed out.")
        return HttpResponseRedirect(reverse("login"))
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    return render(
        request, "keyhouse/logout.html", {"realm": realm, "user": session_user(request, realm)}
    )
