"""The limits on password logins: per username (Zulip's) and per client IP (keyhouse's).

Both are counted before the credentials are checked, so a correct password does
not get through once the limit is hit. Success clears the username's history,
as in Zulip; the IP's history is never cleared by a success, otherwise one known
account would launder a password-spraying run.
"""

from __future__ import annotations

from django.conf import settings
from django.dispatch import receiver
from django.http import HttpRequest

from keyhouse.auth.client_ip import client_ip, is_exempt_from_ip_limits
from keyhouse.auth.ratelimit import clear, hit, refund
from keyhouse.outages import DependencyUnavailable
from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from keyhouse.users.signals import password_changed

BY_USERNAME = "authenticate_by_username"
BY_IP = "authenticate_by_ip"


def username_entity(realm: Realm, username: str) -> str:
    return f"{realm.id}:{username.strip().lower()}"


def check_login_limits(request: HttpRequest, realm: Realm, username: str) -> None:
    """Count this attempt; raise RateLimited if the IP or the username is over its limit."""
    if not (settings.RATE_LIMITING and settings.RATE_LIMITING_AUTHENTICATE):
        return
    ip = client_ip(request)
    if ip and not is_exempt_from_ip_limits(ip):
        hit(request, BY_IP, ip)
    hit(request, BY_USERNAME, username_entity(realm, username))


def refund_login_limits(request: HttpRequest) -> None:
    """The directory was down: this attempt proved nothing, so it costs nothing."""
    refund(request, {BY_IP, BY_USERNAME})


def login_succeeded(realm: Realm, username: str) -> None:
    clear(BY_USERNAME, username_entity(realm, username))


@receiver(password_changed)
def _clear_on_password_change(sender: type[User], user: User, **kwargs: object) -> None:
    """Zulip's do_change_password clears the failed-login history.

    Best effort: the password is already changed, and a history that outlives it
    (Redis was down) only keeps the limit where it was.
    """
    try:
        clear(BY_USERNAME, username_entity(user.realm, user.delivery_email))
    except DependencyUnavailable:
        pass  # the breaker logged the outage
