"""Password reset by email, also for accounts that never had a password.

Zulip lets a user who signed up without a password (SSO, LDAP, an operator's
``keyhouse user create`` without one) set one through this flow, so accounts
with an unusable password are eligible; Django's own PasswordResetForm skips
them, hence this module. The tokens are Django's (``default_token_generator``):
they embed the password hash and the last login, so a link dies once used or
once the user logs in, and after ``PASSWORD_RESET_TIMEOUT`` seconds.

The request page answers every submission the same way (account or not,
active or not, rate limited or not), and the request thread does the same work
for every address: it makes a token (for a stand-in user when there is no
eligible account) and queues a mail, which the mail thread renders either way and
sends only for a real account (keyhouse/mail.py). So neither the page nor its
timing tells whether an address has an account. The link is built on the realm's
configured URL, never on an untrusted Host header (realms/links.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN, PasswordResetConfirmView
from django.core.mail import EmailMessage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse, reverse_lazy
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from keyhouse.auth.client_ip import client_ip, is_exempt_from_ip_limits
from keyhouse.auth.ip_blocks import ip_limit_entity
from keyhouse.auth.ratelimit import RateLimited, hit
from keyhouse.auth.username_key import username_key
from keyhouse.mail import send_in_background
from keyhouse.realms.links import mail_link_base
from keyhouse.realms.methods import email_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import realm_for_request
from keyhouse.users.actions import change_password
from keyhouse.users.models import User
from keyhouse.users.password_policy import PasswordTooWeakError
from keyhouse.web.decorators import PAGE_METHODS

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


def _over_limit(request: HttpRequest, realm: Realm, email: str) -> bool:
    """Count this submission per account (Zulip's rule, per address) and per client IP.

    Keyed like the login limit (auth/username_key.py): every spelling the lookup
    matches (``İ`` lower-cases differently in Python and PostgreSQL) is one budget.
    """
    if not settings.RATE_LIMITING:
        return False
    try:
        hit(request, BY_EMAIL, username_key(realm, email))
        ip = client_ip(request)
        if ip and not is_exempt_from_ip_limits(ip):
            hit(request, BY_IP, ip_limit_entity(ip))
    except RateLimited:
        logger.info("Password reset request rate limited (client %s)", client_ip(request))
        return True
    return False


def _stand_in(realm: Realm, email: str) -> User:
    """An unsaved user to make a token for when no account may reset: the same work."""
    return User(realm=realm, delivery_email=email, full_name="", password=UNUSABLE_PASSWORD_PREFIX)


def _reset_mail_builder(
    link_base: str, user: User, realm: Realm, send: bool
) -> Callable[[], EmailMessage | None]:
    """The token and every value the mail needs, now; rendering happens on the mail thread.

    With ``send`` false (no eligible account) the mail is rendered all the same
    and then dropped, so the two cases cost the same on both threads.
    """
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {
        "reset_url": link_base + path,
        "email": user.delivery_email,
        "full_name": user.full_name,
        "realm_name": realm.name,
        "host": urlsplit(link_base).netloc,
        "has_password": user.has_usable_password(),
        "valid_hours": max(1, round(settings.PASSWORD_RESET_TIMEOUT / 3600)),
    }
    to, user_id = user.delivery_email, user.pk

    def build() -> EmailMessage | None:
        subject = render_to_string(f"{TEMPLATES}/email_subject.txt", context)
        message = EmailMessage(
            subject=" ".join(subject.split()),
            body=render_to_string(f"{TEMPLATES}/email_body.txt", context),
            to=[to],
            headers={"Auto-Submitted": "auto-generated"},
        )
        if not send:
            return None
        logger.info("Password reset email for user %s", user_id)
        return message

    return build


def request_reset(request: HttpRequest, email: str) -> None:
    """Mail a reset link if ``email`` names an eligible account here; say nothing either way.

    Everything that may return early depends on the request, never on the address.
    """
    realm = realm_for_request(request)
    if realm is None or realm.deactivated or not email_auth_enabled(realm):
        return
    if _over_limit(request, realm, email):
        return
    link_base = mail_link_base(request, realm)
    if link_base is None:
        logger.warning(
            "Password reset link not sent: host %r is not trusted for links;"
            " set EXTERNAL_HOST (or list the host in ALLOWED_HOSTS)",
            request.get_host(),
        )
        return
    # From here on, the same calls whether or not there is an account (a test checks).
    user = User.objects.get_by_delivery_email(email, realm)
    stand_in = _stand_in(realm, email)
    candidate = user if user is not None else stand_in
    eligible = may_reset(candidate, realm) and candidate is user
    build = _reset_mail_builder(link_base, candidate if eligible else stand_in, realm, eligible)
    send_in_background(build, "a password reset email")


# --- Views ------------------------------------------------------------------------


@never_cache
@require_http_methods(PAGE_METHODS)
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


@require_safe
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

    def get_user(self, uidb64: str) -> User | None:
        user: User | None = super().get_user(uidb64)
        realm = realm_for_request(self.request)
        if user is None or realm is None or not may_reset(user, realm):
            return None
        return user

    def form_valid(self, form: NewPasswordForm) -> HttpResponse:
        assert self.user is not None
        try:
            change_password(self.user, form.cleaned_data["new_password1"])
        except PasswordTooWeakError as exc:
            form.add_error("new_password1", str(exc))
            return self.form_invalid(form)
        del self.request.session[INTERNAL_RESET_SESSION_TOKEN]
        logger.info("Password reset completed for user %s", self.user.id)
        return HttpResponseRedirect(self.get_success_url())


# never_cache, sensitive: inherited. The method check comes first: Django's view
# renders its "invalid link" page for any method, PUT is its POST.
password_reset_confirm = require_http_methods(PAGE_METHODS)(PasswordResetConfirm.as_view())


@require_safe
def password_reset_complete(request: HttpRequest) -> HttpResponse:
    return render(request, f"{TEMPLATES}/complete.html")
