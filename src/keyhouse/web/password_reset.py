"""Password reset by email, also for accounts that never had a password.

Zulip lets a user who signed up without a password (SSO, LDAP, an operator's
``keyhouse user create`` without one) set one through this flow, so accounts
with an unusable password are eligible; Django's own PasswordResetForm skips
them, hence this module. The tokens are Django's (``default_token_generator``):
they embed the password hash and the last login, so a link dies once used or
once the user logs in, and after ``PASSWORD_RESET_TIMEOUT`` seconds.

The request page answers every submission the same way (account or not,
active or not, rate limited or not) and mails off the request thread
(web/mail.py), so neither the page nor its timing tells whether an address has
an account.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN, PasswordResetConfirmView
from django.core.mail import EmailMessage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.request import split_domain_port, validate_host
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse, reverse_lazy
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.cache import never_cache

from keyhouse.auth.client_ip import client_ip, is_exempt_from_ip_limits
from keyhouse.auth.ip_blocks import ip_limit_entity
from keyhouse.auth.ratelimit import RateLimited, hit
from keyhouse.mail import send_in_background
from keyhouse.realms.methods import email_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import realm_for_request
from keyhouse.users.actions import change_password
from keyhouse.users.models import User
from keyhouse.users.password_policy import PasswordTooWeakError

logger = logging.getLogger("keyhouse.web.password_reset")

BY_EMAIL = "password_reset_form_by_email"
BY_IP = "sends_email_by_ip"
TEMPLATES = "keyhouse/password_reset"


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class NewPasswordForm(SetPasswordForm):
    """Django's two-field form; the strength policy is applied when saving (change_password)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[
            "new_password1"
        ].help_text = f"At least {settings.PASSWORD_MIN_LENGTH} characters, and hard to guess."


# --- Who gets a mail ------------------------------------------------------------


def may_reset(user: User, realm: Realm) -> bool:
    """Active humans of a live realm that logs in by email password; with or without one."""
    return (
        user.realm_id == realm.id
        and user.is_active
        and not user.is_bot
        and not realm.deactivated
        and email_auth_enabled(realm)
    )


def _over_limit(request: HttpRequest, email: str) -> bool:
    """Count this submission per address (Zulip's rule) and per client IP."""
    if not settings.RATE_LIMITING:
        return False
    try:
        hit(request, BY_EMAIL, email.strip().lower())
        ip = client_ip(request)
        if ip and not is_exempt_from_ip_limits(ip):
            hit(request, BY_IP, ip_limit_entity(ip))
    except RateLimited:
        logger.info("Password reset request rate limited (client %s)", client_ip(request))
        return True
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def link_host_is_trusted(request: HttpRequest) -> bool:
    """May a mailed link point at the host this request names?

    The reset link uses the request's host, and the Host header is the client's
    to choose: with ``ALLOWED_HOSTS = ["*"]`` (keyhouse's default) an attacker
    could have the victim's link point at a server of theirs ("password reset
    poisoning"). Trusted are: names under ``EXTERNAL_HOST``, hosts listed
    explicitly in ``ALLOWED_HOSTS``, and loopback names (such a link leads back to
    the victim's own machine, so nothing leaks).
    """
    domain, _port = split_domain_port(request.get_host())
    if not domain:
        return False
    external = settings.EXTERNAL_HOST
    if external and (domain == external or domain.endswith("." + external)):
        return True
    if validate_host(domain, [h for h in settings.ALLOWED_HOSTS if h != "*"]):
        return True
    return _is_loopback(domain)


def _reset_mail_builder(request: HttpRequest, user: User, realm: Realm) -> Any:
    """Everything a mail needs as plain values now; the rendering happens off-thread."""
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {
        "reset_url": request.build_absolute_uri(path),
        "email": user.delivery_email,
        "full_name": user.full_name,
        "realm_name": realm.name,
        "host": request.get_host(),
        "has_password": user.has_usable_password(),
        "valid_hours": max(1, round(settings.PASSWORD_RESET_TIMEOUT / 3600)),
    }
    to = user.delivery_email

    def build() -> EmailMessage:
        subject = render_to_string(f"{TEMPLATES}/email_subject.txt", context)
        return EmailMessage(
            subject=" ".join(subject.split()),
            body=render_to_string(f"{TEMPLATES}/email_body.txt", context),
            to=[to],
            headers={"Auto-Submitted": "auto-generated"},
        )

    return build


def request_reset(request: HttpRequest, email: str) -> None:
    """Mail a reset link if ``email`` names an eligible account here; say nothing either way."""
    if _over_limit(request, email):
        return
    realm = realm_for_request(request)
    if realm is None:
        return
    user = User.objects.get_by_delivery_email(email, realm)
    if user is None or not may_reset(user, realm):
        return
    if not link_host_is_trusted(request):
        logger.warning(
            "Password reset link not sent: host %r is not trusted for links;"
            " set EXTERNAL_HOST (or list the host in ALLOWED_HOSTS)",
            request.get_host(),
        )
        return
    send_in_background(_reset_mail_builder(request, user, realm), "a password reset email")
    logger.info("Password reset email queued for user %s", user.id)


# --- Views ------------------------------------------------------------------------


@never_cache
def password_reset_request(request: HttpRequest) -> HttpResponse:
    """The form; a valid submission always ends on the same "check your email" page."""
    if request.method == "POST":
        form = PasswordResetRequestForm(request.POST)
        if form.is_valid():
            request_reset(request, form.cleaned_data["email"])
            return redirect("password_reset_done")
    else:
        form = PasswordResetRequestForm()
    return render(request, f"{TEMPLATES}/request.html", {"form": form})


def password_reset_done(request: HttpRequest) -> HttpResponse:
    return render(request, f"{TEMPLATES}/done.html")


class PasswordResetConfirm(PasswordResetConfirmView):
    """Django's token check (the token moves into the session, off the URL), our policy.

    A link works only on the host of the account's realm and only while the
    account may reset; the new password goes through ``change_password``, which
    enforces the strength policy and clears the failed-login history.
    """

    form_class = NewPasswordForm
    template_name = f"{TEMPLATES}/confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def get_user(self, uidb64: str) -> User | None:  # type: ignore[override]
        user: User | None = super().get_user(uidb64)
        realm = realm_for_request(self.request)
        if user is None or realm is None or not may_reset(user, realm):
            return None
        return user

    def form_valid(self, form: NewPasswordForm) -> HttpResponse:  # type: ignore[override]
        assert self.user is not None
        try:
            change_password(self.user, form.cleaned_data["new_password1"])
        except PasswordTooWeakError as exc:
            form.add_error("new_password1", str(exc))
            return self.form_invalid(form)
        del self.request.session[INTERNAL_RESET_SESSION_TOKEN]
        logger.info("Password reset completed for user %s", self.user.id)
        return HttpResponseRedirect(self.get_success_url())


password_reset_confirm = PasswordResetConfirm.as_view()  # never_cache, sensitive: inherited


def password_reset_complete(request: HttpRequest) -> HttpResponse:
    return render(request, f"{TEMPLATES}/complete.html")
