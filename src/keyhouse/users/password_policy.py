"""Zulip's strength rule for new passwords: long enough and hard enough to guess."""

from __future__ import annotations

from django.conf import settings
from zxcvbn import zxcvbn


class PasswordTooWeakError(Exception):
    """Raised when a new password fails the policy. Carries no password text."""

    def __init__(self) -> None:
        super().__init__(
            f"The password is too weak: use at least {settings.PASSWORD_MIN_LENGTH} characters"
            " that are hard to guess."
        )


def check_password_strength(password: str) -> bool:
    if password == "" or len(password) < settings.PASSWORD_MIN_LENGTH:
        return False
    if len(password) > settings.PASSWORD_MAX_LENGTH:
        return False
    # zxcvbn's cost grows fast with length; it only ever sees passwords of at
    # most PASSWORD_MAX_LENGTH characters.
    return zxcvbn(password)["guesses"] >= settings.PASSWORD_MIN_GUESSES
