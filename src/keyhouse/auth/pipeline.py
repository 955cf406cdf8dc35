"""The one sign-in pipeline every method plugs into (docs/decisions.md, "One sign-in pipeline").

    attempt → limits → method enabled → audit entry opened → backend(s) → account checks
            → second factor → success: limits cleared, audit entry closed → new-login email

A method (the API's fetch_api_key, the web form, re-authentication, dev login,
the admin's staff login; later SSO) is a small adapter: it builds an ``Attempt``
and calls ``sign_in``, then finishes its own way (API key JSON, session, mobile
redirect). Everything in between is here, once, so that a new method cannot
forget a limit or an audit entry. Models: Django's ``authenticate()`` (one call,
one signal) and Zulip's ``log_auth_attempts``. No library runs this sequence for
us: django-axes and friends count failures but know neither Zulip's refusal order
nor our per-IP budget and refunds.

Refusals are ``SignInRefused`` (auth/refusals.py); any other exception (a bug, a
database outage) still leaves its one audit entry and propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest

from keyhouse import test_hooks
from keyhouse.auth import second_factor
from keyhouse.auth.audit import (
    Outcome,
    close_login_attempt,
    open_login_attempt,
    outcome_for_exception,
    record_login_attempt,
)
from keyhouse.auth.backend_chain import authenticate
from keyhouse.auth.login_limits import PASSWORD_LIMITS, SECOND_FACTOR_LIMITS, LoginLimits
from keyhouse.auth.login_notifications import email_on_new_login
from keyhouse.auth.ratelimit import joint_transaction
from keyhouse.auth.refusals import (
    PASSWORD_FLAG_ORDER,
    SECOND_FACTOR_FLAG_ORDER,
    PasswordAuthDisabled,
    PasswordIncorrect,
    SecondFactorRequired,
    SignInRefused,
    refusal_for_flags,
    shown_to_client,
)
from keyhouse.outages import DependencyUnavailable
from keyhouse.realms.methods import password_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.users.models import User, lookups_remembered

# The backend step failed because of the server, not the client: the attempt
# proved nothing, so it costs nothing against the limits (a busy server or a down
# directory or database must not lock a real user out for half an hour).
SERVER_FAULTS: tuple[type[BaseException], ...] = (
    DependencyUnavailable,  # includes db.errors.DatabaseUnavailable
    OperationalError,
    InterfaceError,
)

Verifier = Callable[[dict[str, Any]], "User | None"]
FlagOrder = tuple[tuple[str, type[SignInRefused]], ...]


@dataclass
class Attempt:
    """One sign-in attempt, as a method adapter describes it.

    ``credentials`` go to Django's ``authenticate`` loop (auth/backend_chain.py), so
    the configured backends run, in AUTHENTICATION_BACKEND_ORDER, unless ``verify``
    replaces that step.
    ``flag_order`` turns the backends' ``return_data`` flags into a refusal.
    ``expected_user`` makes it a re-authentication: any other outcome is
    ``PasswordIncorrect``. ``limits`` is the budget ``limited`` attempts spend.

    Two-factor sign-in (auth/second_factor.py): ``second_step_follows`` says the
    method asks an account with a second factor for its code next (the web form),
    so the new-login email waits for that step; ``password_is_final`` says nothing
    follows (fetch_api_key), so a realm that wants the second factor for API keys
    refuses the password alone, once it has proved right.
    """

    request: HttpRequest
    realm: Realm
    username: str
    method: str = "password"
    credentials: Mapping[str, Any] = field(default_factory=dict)
    verify: Verifier | None = None
    limited: bool = True
    limits: LoginLimits = PASSWORD_LIMITS
    needs_password_auth: bool = True
    flag_order: FlagOrder = PASSWORD_FLAG_ORDER
    hide_account_state: bool | None = None
    expected_user: User | None = None
    new_login_email: bool = False
    second_step_follows: bool = False
    password_is_final: bool = False

    def hides_account_state(self) -> bool:
        if self.hide_account_state is None:
            return bool(settings.HIDE_ACCOUNT_STATE)
        return self.hide_account_state


class _AuditEntry:
    """An attempt's one audit entry: opened before the secret is checked, then closed.

    Opened, it survives a worker killed mid-request (outcome failure, reason
    INTERRUPTED); an attempt refused before the check is written once, whole.
    """

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self.opened = False
        self.entry: int | None = None
        self.finished = False

    def open(self) -> None:
        a = self.attempt
        self.entry = open_login_attempt(
            a.request, realm=a.realm, username=a.username, user=a.expected_user, method=a.method
        )
        self.opened = True

    def finish(self, outcome: str, reason: str, user: User | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        a = self.attempt
        user = user if user is not None else a.expected_user
        if self.opened:
            close_login_attempt(
                self.entry,
                realm=a.realm,
                user=user,
                outcome=outcome,
                reason=reason,
                method=a.method,
            )
        else:
            record_login_attempt(
                a.request,
                realm=a.realm,
                username=a.username,
                user=user,
                outcome=outcome,
                reason=reason,
                method=a.method,
            )


def sign_in(attempt: Attempt) -> User:
    """The signed-in user, or ``SignInRefused`` (as the client may see it).

    Exactly one audit entry per call, whatever happens. The account the username
    names is looked up once for the limits, the backend and the audit entry.
    """
    test_hooks.signing_in()
    audit = _AuditEntry(attempt)
    with lookups_remembered():
        try:
            user = authenticate_attempt(attempt, audit)
        except SignInRefused as refusal:
            audit.finish(refusal.outcome, refusal.code)
            shown = shown_to_client(refusal, hide_account_state=attempt.hides_account_state())
            if shown is refusal:
                raise
            raise shown from None
        except Exception as exc:  # a bug or an outage: recorded, then the usual 500/503
            audit.finish(*outcome_for_exception(exc))
            raise
    if attempt.second_step_follows and second_factor.required(user):
        return user  # not signed in yet: the code step sends the email
    if attempt.new_login_email:
        email_on_new_login(attempt.request, user)  # Zulip's new-login email (§1.8)
    return user


def authenticate_attempt(attempt: Attempt, audit: _AuditEntry) -> User:
    """Limits, method check, backends, account checks; the success's limit clearing.

    The writes before the secret is checked (the limits' hits, the audit entry) go
    out before it, so a worker killed during or after the check has counted the
    attempt and left its entry; where the limits and the audit trail share a
    database (PostgreSQL without Redis) they are one commit, and so are the
    success's clearing and its outcome.
    """
    limits = attempt.limits
    refused_early: SignInRefused | None = None
    with joint_transaction():
        try:
            counted = (
                limits.check(attempt.request, attempt.realm, attempt.username)
                if attempt.limited
                else None
            )
            if attempt.needs_password_auth and not password_auth_enabled(attempt.realm):
                # No installed and enabled backend can check a password here.
                raise PasswordAuthDisabled()
        except SignInRefused as refused:
            refused_early = refused  # raised after the commit: the hits counted so far stay
        else:
            audit.open()
    if refused_early is not None:
        raise refused_early
    flags: dict[str, Any] = {}
    try:
        user = _verify(attempt, flags)
    except SignInRefused as refusal:
        if refusal.server_fault and attempt.limited:
            limits.refund(attempt.request)
        raise
    except SERVER_FAULTS:
        if attempt.limited:
            limits.refund(attempt.request)
        raise
    test_hooks.reached("after-verification")
    if attempt.expected_user is not None and (user is None or user.pk != attempt.expected_user.pk):
        raise PasswordIncorrect()
    if user is None:
        raise refusal_for_flags(flags, attempt.flag_order)
    if attempt.password_is_final and second_factor.refuses_password_only(attempt.realm, user):
        # After the password proved right: nobody learns from it who has a second factor.
        raise SecondFactorRequired()
    with joint_transaction():
        if attempt.limited:
            limits.succeeded(user, counted)
        audit.finish(Outcome.SUCCESS, "", user)
    return user


def _verify(attempt: Attempt, flags: dict[str, Any]) -> User | None:
    if attempt.verify is not None:
        return attempt.verify(flags)
    user = authenticate(
        request=attempt.request, realm=attempt.realm, return_data=flags, **attempt.credentials
    )
    return user if isinstance(user, User) else None


def password_attempt(
    request: HttpRequest, realm: Realm, username: str, password: str, **options: Any
) -> Attempt:
    """The attempt of every username + password method (API, web form, re-auth)."""
    return Attempt(
        request=request,
        realm=realm,
        username=username,
        credentials={"username": username, "password": password},
        **options,
    )


def second_factor_attempt(
    request: HttpRequest,
    realm: Realm,
    user: User,
    code: str,
    *,
    backup_code: bool = False,
    **options: Any,
) -> Attempt:
    """The code step after ``user``'s right password: its own budget, audited as such.

    The verified user comes back with ``otp_device`` set (the device that took the
    code), for the session django-otp then marks as verified.
    """
    verifier = second_factor.verify_backup_code if backup_code else second_factor.verify_totp
    return Attempt(
        request=request,
        realm=realm,
        username=user.delivery_email,
        method="backup_code" if backup_code else "totp",
        verify=lambda flags: verifier(user, code, flags),
        limits=SECOND_FACTOR_LIMITS,
        flag_order=SECOND_FACTOR_FLAG_ORDER,
        **options,
    )
