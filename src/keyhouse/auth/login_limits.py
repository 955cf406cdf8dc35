"""The limits on sign-in attempts: per username (Zulip's) and per client IP (keyhouse's)
for passwords, per account for the second factor's codes.

Both are counted before the credentials are checked, so a correct password does
not get through once the limit is hit. Success clears the username's history,
as in Zulip; the IP's history is never cleared by a success, otherwise one known
account would launder a password-spraying run. The username budget belongs to
the account the name reaches (auth/username_key.py), the IP budget to the
address or its IPv6 block (auth/ip_blocks.py).

The code step after a right password (auth/second_factor.py) has a budget of its
own, ``authenticate_second_factor_by_user``: a code is only asked of whoever knew
the password, so one budget per account stops guessing; a right code clears it.
The pipeline takes either kind as a ``LoginLimits``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.dispatch import receiver
from django.http import HttpRequest

from keyhouse.auth.client_ip import client_ip, is_exempt_from_ip_limits
from keyhouse.auth.ip_blocks import ip_limit_entity
from keyhouse.auth.ratelimit import clear, clear_all, hit_all, refund
from keyhouse.auth.username_key import account_key, username_key
from keyhouse.outages import DependencyUnavailable
from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from keyhouse.users.signals import password_changed

BY_USERNAME = "authenticate_by_username"
BY_IP = "authenticate_by_ip"
SECOND_FACTOR_BY_USER = "authenticate_second_factor_by_user"


@dataclass(frozen=True)
class LoginLimits:
    """One kind of budget: count an attempt (before any secret is checked), refund it
    when the server was at fault, clear it when the owner proved themselves."""

    check: Callable[[HttpRequest, Realm, str], str | None]
    refund: Callable[[HttpRequest], None]
    succeeded: Callable[[User, str | None], None]


def check_login_limits(request: HttpRequest, realm: Realm, username: str) -> str | None:
    """Count this attempt; raise RateLimited if the IP or the username is over its limit.

    Returns the username entity it counted (None when the limits are off), for
    ``login_succeeded`` to clear: the first LDAP login creates the account in
    between, so computing the entity again would name another budget.
    """
    if not _limits_on():
        return None
    entity = username_key(realm, username)
    ip = client_ip(request)
    hits = [(BY_USERNAME, entity)]
    if ip and not is_exempt_from_ip_limits(ip):
        hits.insert(0, (BY_IP, ip_limit_entity(ip)))  # the IP first: its refusal counts no name
    hit_all(request, hits)  # one round trip to the store for both
    return entity


def refund_login_limits(request: HttpRequest) -> None:
    """The directory was down: this attempt proved nothing, so it costs nothing."""
    refund(request, {BY_IP, BY_USERNAME})


def login_succeeded(user: User, counted: str | None) -> None:
    """The owner proved themselves: clear the budget this attempt spent, and the account's."""
    entities = {account_key(user)} | ({counted} if counted else set())
    clear_all(BY_USERNAME, entities)  # one statement (or one Redis command) for both


def _limits_on() -> bool:
    return bool(settings.RATE_LIMITING and settings.RATE_LIMITING_AUTHENTICATE)


def check_second_factor_limits(request: HttpRequest, realm: Realm, username: str) -> str | None:
    """Count one code attempt for the account ``username`` names (its password step found it)."""
    if not _limits_on():
        return None
    entity = username_key(realm, username)
    hit_all(request, [(SECOND_FACTOR_BY_USER, entity)])
    return entity


def refund_second_factor_limits(request: HttpRequest) -> None:
    refund(request, {SECOND_FACTOR_BY_USER})


def second_factor_succeeded(user: User, counted: str | None) -> None:
    for entity in {account_key(user)} | ({counted} if counted else set()):
        clear(SECOND_FACTOR_BY_USER, entity)


PASSWORD_LIMITS = LoginLimits(check_login_limits, refund_login_limits, login_succeeded)
SECOND_FACTOR_LIMITS = LoginLimits(
    check_second_factor_limits, refund_second_factor_limits, second_factor_succeeded
)


@receiver(password_changed)
def _clear_on_password_change(sender: type[User], user: User, **kwargs: object) -> None:
    """Zulip's do_change_password clears the failed-login history.

    Best effort: the password is already changed, and a history that outlives it
    (Redis was down) only keeps the limit where it was.
    """
    try:
        clear(BY_USERNAME, account_key(user))
    except DependencyUnavailable:
        pass  # the breaker logged the outage
