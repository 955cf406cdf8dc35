"""Password verification with equal cost whether or not the account exists.

An attacker must not tell "no such user" (or "no usable password") from "wrong
password" by timing, so those paths verify against a dummy hash made with the
current parameters (as Django's ModelBackend does with set_password). Every
verification runs through the bounded hashing gate.
"""

from __future__ import annotations

import secrets
import threading

from django.conf import settings
from django.contrib.auth.hashers import check_password, is_password_usable, make_password

from keyhouse.auth.hashing_gate import get_gate
from keyhouse.users.models import User
from keyhouse.users.password_policy import PasswordTooWeakError

_dummy_lock = threading.Lock()
_dummy: dict[tuple[int, int, int], str] = {}


def _dummy_hash() -> str:
    params = (settings.ARGON2_TIME_COST, settings.ARGON2_MEMORY_COST, settings.ARGON2_PARALLELISM)
    with _dummy_lock:
        if params not in _dummy:
            _dummy[params] = make_password(secrets.token_urlsafe(16))
        return _dummy[params]


def burn_verification(password: str) -> None:
    """Spend one verification's worth of work and learn nothing."""
    dummy = _dummy_hash()
    with get_gate().slot():
        check_password(password, dummy)


class PasswordNeedsReset(Exception):
    """The password is right but too weak to re-hash under today's policy."""


def verify_user_password(user: User | None, password: str) -> bool:
    """True iff ``user`` has a usable password equal to ``password``.

    A correct password stored with an outdated hasher or outdated parameters is
    re-hashed (Django's setter); if today's strength policy refuses it,
    PasswordNeedsReset is raised, as in Zulip's EmailAuthBackend.
    """
    if user is None or not is_password_usable(user.password):
        burn_verification(password)
        return False
    try:
        with get_gate().slot():
            return user.check_password(password)
    except PasswordTooWeakError as exc:
        raise PasswordNeedsReset from exc
