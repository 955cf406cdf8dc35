"""Sign-in refusals (auth/refusals.py) as the pages word them: one row per refusal.

The pages' counterpart of api/errors.py's wire table: the same family, a message
and an HTTP status instead of Zulip's JSON. A refusal without a row of its own
reads as its nearest base's (a wrong password).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from keyhouse.auth import refusals

OVERLOADED = "The server is busy right now. Wait a moment, then try again."
DIRECTORY_DOWN = "The sign-in directory cannot be reached right now. Try again in a few minutes."
WRONG_CREDENTIALS = "Incorrect {noun} or password."
# django-otp's words (OTPAuthenticationFormMixin), which Zulip's login page shows.
INVALID_TOKEN = "Invalid token. Please make sure you have entered it correctly."


def rate_limited_message(secs_to_freedom: float) -> str:
    minutes = max(1, math.ceil(secs_to_freedom / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many sign-in attempts. Wait {minutes} {unit}, then try again."


# (message given the refusal and the username's noun, HTTP status)
Row = tuple[Callable[[refusals.SignInRefused, str], str], int]

PAGE_MESSAGES: dict[type[refusals.SignInRefused], Row] = {
    refusals.SignInRefused: (lambda r, noun: WRONG_CREDENTIALS.format(noun=noun), 200),
    refusals.UserDeactivated: (
        lambda r, noun: (
            "This account has been deactivated. Contact your organization's administrators"
            " if you think this is a mistake."
        ),
        200,
    ),
    refusals.RealmDeactivated: (lambda r, noun: "This organization has been deactivated.", 200),
    refusals.PasswordAuthDisabled: (
        lambda r, noun: "Password sign-in is disabled in this organization.",
        200,
    ),
    refusals.PasswordResetRequired: (
        lambda r, noun: (
            "Your password has been disabled because it is too weak."
            " Reset your password to choose a new one."
        ),
        200,
    ),
    refusals.WrongRealm: (
        lambda r, noun: (
            "This account is not a member of this organization. Check the address you signed in at."
        ),
        200,
    ),
    refusals.PasswordIncorrect: (lambda r, noun: "Password is incorrect.", 200),
    refusals.RateLimited: (
        lambda r, noun: rate_limited_message(getattr(r, "secs_to_freedom", 60.0)),
        429,
    ),
    refusals.HashingOverloaded: (lambda r, noun: OVERLOADED, 503),
    refusals.SecondFactorIncorrect: (lambda r, noun: INVALID_TOKEN, 200),
    refusals.SecondFactorReused: (
        lambda r, noun: (
            "That code was already used. Wait for your app to show the next one, then enter it."
        ),
        200,
    ),
    refusals.BackupCodeIncorrect: (
        lambda r, noun: "That backup code is not valid, or it was already used.",
        200,
    ),
    refusals.SecondFactorRequired: (
        lambda r, noun: "This account must sign in with its two-factor code.",
        200,
    ),
    refusals.EmailNotVerified: (
        lambda r, noun: (
            "Your identity provider has not verified your email address, so it cannot be"
            " used to sign in. Verify it there, then try again."
        ),
        200,
    ),
    refusals.NoAccount: (
        lambda r, noun: (
            "There is no account for your email address in this organization."
            " Ask its administrators for an invitation."
        ),
        200,
    ),
    refusals.IdPFailed: (lambda r, noun: r.detail, 200),
    refusals.DirectoryUnavailable: (lambda r, noun: DIRECTORY_DOWN, 503),
    # Single sign-on: the page says what went wrong in the user's words; the audit
    # entry and the log keep the precise reason (the refusal's code and detail).
    refusals.SSORefused: (lambda r, noun: "Sign-in with your identity provider failed.", 400),
    refusals.SSOMethodDisabled: (
        lambda r, noun: "This sign-in method is not enabled for this organization.",
        403,
    ),
    refusals.SSOInvalidResponse: (
        lambda r, noun: (
            "The identity provider's answer could not be verified, so you were not signed in."
            " Try again; if it keeps happening, tell your administrator."
        ),
        400,
    ),
    refusals.SSOExpired: (
        lambda r, noun: (
            "The identity provider's answer has expired. Sign in again"
            " (if it keeps happening, a server clock may be wrong)."
        ),
        400,
    ),
    refusals.SSOUnsolicited: (
        lambda r, noun: (
            "This sign-in answer does not match a sign-in started here, or was already used."
            " Start again from the login page."
        ),
        400,
    ),
    refusals.SSONoEmail: (
        lambda r, noun: "The identity provider did not tell us your email address.",
        400,
    ),
}


def page_message(refusal: refusals.SignInRefused, noun: str = "email") -> tuple[str, int]:
    """(message, status) for a refusal shown on a page."""
    for cls in type(refusal).__mro__:
        row = PAGE_MESSAGES.get(cls)
        if row is not None:
            message, status = row
            return message(refusal, noun), status
    raise TypeError(f"not a sign-in refusal: {refusal!r}")  # unreachable: the base has a row
