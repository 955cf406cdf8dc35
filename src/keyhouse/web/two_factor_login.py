"""The login page's second step: the code of an account with two-factor sign-in.

After a right password (web/login.py) an enrolled account is not signed in yet: the
session keeps who passed the password, when, and where the sign-in goes on to (the
mobile or desktop app's OTP, ``next``), and the page asks for the code from the
authenticator app, or a backup code. The code is an attempt of its own through the
sign-in pipeline (its own limit, one audit entry, method ``totp`` or
``backup_code``); only then does the sign-in finish as the password step would have
(a session, or the apps' redirect), so the apps' flows get the second step too.

The form speaks the field names of Zulip's login page (django-two-factor-auth's
wizard: ``two_factor_login_view-current_step``, ``token-otp_token``,
``backup-otp_token``), so a script written against Zulip's two-step form works
here. The pending state is server-side, as the wizard's is: the OTPs cannot be
swapped between the steps, and a later sign-in in this browser starts afresh (a
new password step replaces it, a GET of the page drops it).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from keyhouse.auth import refusals
from keyhouse.auth.pipeline import second_factor_attempt, sign_in
from keyhouse.auth.refusals import SignInRefused
from keyhouse.auth.second_factor import MAX_CODE_CHARS, backup_codes_left
from keyhouse.users.models import User
from keyhouse.web.refusal_messages import page_message

if TYPE_CHECKING:
    from keyhouse.web.login import LoginPage

# Zulip's TwoFactorLoginView wizard: the management field and the steps' form fields.
STEP_FIELD = "two_factor_login_view-current_step"
GOTO_FIELD = "wizard_goto_step"
TOKEN_STEP = "token"
BACKUP_STEP = "backup"
CODE_FIELDS = {TOKEN_STEP: "token-otp_token", BACKUP_STEP: "backup-otp_token"}
PENDING_KEY = "keyhouse_second_factor_pending"

# django-two-factor-auth's words when TWO_FACTOR_LOGIN_TIMEOUT has passed.
TIMED_OUT = "Your session has timed out. Please login again."
NO_CODE = "Enter the code."
INVALID_CODE_INPUT = "That is not a code."
# The pending account can no longer sign in at all: start over from the password.
_ENDS_THE_SIGN_IN = (
    refusals.UserDeactivated,
    refusals.RealmDeactivated,
    refusals.PasswordAuthDisabled,
)


@dataclass
class PendingSignIn:
    """Who passed the password step, when, and where the sign-in goes on to."""

    user_id: int
    realm_id: int
    backend: str
    started: float
    mobile_flow_otp: str | None
    desktop_flow_otp: str | None
    next: str

    def expired(self) -> bool:
        timeout = settings.TWO_FACTOR_LOGIN_TIMEOUT
        return bool(timeout) and not 0 <= time.time() - self.started <= timeout


def is_code_step(request: HttpRequest) -> bool:
    return request.method == "POST" and request.POST.get(STEP_FIELD) in CODE_FIELDS


def discard(request: HttpRequest) -> None:
    request.session.pop(PENDING_KEY, None)


def _pending(request: HttpRequest, page: LoginPage) -> PendingSignIn | None:
    data = request.session.get(PENDING_KEY)
    if not isinstance(data, dict):
        return None
    try:
        pending = PendingSignIn(**data)
    except TypeError:  # a session written by another version
        discard(request)
        return None
    if pending.realm_id != page.realm.id or pending.expired():
        discard(request)
        return None
    return pending


def start(page: LoginPage, user: User) -> HttpResponse:
    """The password was right and the account has a second factor: ask for its code."""
    pending = PendingSignIn(
        user_id=user.id,
        realm_id=page.realm.id,
        backend=getattr(user, "backend", "") or settings.AUTHENTICATION_BACKENDS[0],
        started=time.time(),
        mobile_flow_otp=page.mobile_flow_otp,
        desktop_flow_otp=page.desktop_flow_otp,
        next=page.next,
    )
    page.request.session[PENDING_KEY] = asdict(pending)
    return _render(page, pending, TOKEN_STEP)


def _restart_url(pending: PendingSignIn) -> str:
    """The login page again, with the app flow's OTP (so "start over" stays in the flow)."""
    query = {
        k: v
        for k, v in (
            ("mobile_flow_otp", pending.mobile_flow_otp),
            ("desktop_flow_otp", pending.desktop_flow_otp),
            ("next", pending.next),
        )
        if v
    }
    return reverse("login") + (f"?{urlencode(query)}" if query else "")


def _render(
    page: LoginPage, pending: PendingSignIn, step: str, error: str = "", status: int = 200
) -> HttpResponse:
    user = User.objects.filter(pk=pending.user_id).first()
    context: dict[str, Any] = {
        "realm": page.realm,
        "step": step,
        "step_field": STEP_FIELD,
        "goto_field": GOTO_FIELD,
        "code_field": CODE_FIELDS[step],
        "other_step": BACKUP_STEP if step == TOKEN_STEP else TOKEN_STEP,
        "has_backup_codes": user is not None and backup_codes_left(user) > 0,
        "error": error,
        "mobile_flow_otp": pending.mobile_flow_otp,
        "desktop_flow_otp": pending.desktop_flow_otp,
        "restart_url": _restart_url(pending),
    }
    return render(page.request, "keyhouse/login_code.html", context, status=status)


def _input_problem(code: str) -> str | None:
    """Refusals before the check (not attempts): nothing typed, or no code at all."""
    if not code.strip():
        return NO_CODE
    if len(code) > MAX_CODE_CHARS or "\x00" in code:
        return INVALID_CODE_INPUT
    return None


def submit(page: LoginPage) -> HttpResponse:
    """A POST of the code step (or of its switch between the app's code and a backup code)."""
    request = page.request
    pending = _pending(request, page)
    if pending is None:
        return page.refuse(TIMED_OUT)
    step = request.POST[STEP_FIELD]
    goto = request.POST.get(GOTO_FIELD)
    if goto in CODE_FIELDS:  # "Use a backup code instead" and back: no code checked
        return _render(page, pending, goto)
    code = request.POST.get(CODE_FIELDS[step]) or ""
    problem = _input_problem(code)
    if problem:
        return _render(page, pending, step, problem)
    user = User.objects.select_related("realm").filter(pk=pending.user_id).first()
    if user is None:
        discard(request)
        return page.refuse(TIMED_OUT)
    page.mobile_flow_otp, page.desktop_flow_otp = pending.mobile_flow_otp, pending.desktop_flow_otp
    page.next = pending.next
    attempt = second_factor_attempt(
        request,
        page.realm,
        user,
        code,
        backup_code=step == BACKUP_STEP,
        new_login_email=not page.app_flow,  # the app flows' finishes announce it
    )
    try:
        verified = sign_in(attempt)
    except SignInRefused as refusal:  # anything else (a bug): the usual 500
        message, status = page_message(refusal)
        if isinstance(refusal, _ENDS_THE_SIGN_IN):
            discard(request)
            return page.refuse(message, status=status)
        return _render(page, pending, step, message, status)
    discard(request)
    return page.succeed(
        verified, backend=pending.backend, otp_device=getattr(verified, "otp_device", None)
    )
