"""The "new login" email (reference §1.8, Zulip's ``email_on_new_login``).

Sent after every successful sign-in that hands out a key or a session: the API's
fetch_api_key, the web login page, the mobile flow and the desktop flow's token.
It tells the owner when, from where and with what a login happened, so a stolen
password shows up. It is a side effect only: a failure is logged, never raised.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from django.conf import settings
from django.core.mail import EmailMessage
from django.http import HttpRequest
from django.utils import timezone

from keyhouse.auth.client_ip import client_ip
from keyhouse.mail import send_in_background
from keyhouse.realms.links import mail_link_base
from keyhouse.users.models import User

logger = logging.getLogger("keyhouse.auth.login_notifications")

# Zulip's JUST_CREATED_THRESHOLD: a login right after sign-up is not news.
JUST_CREATED_THRESHOLD = 60

# A few ordered patterns instead of a user-agent library: the email only needs a
# family name, the order settles the overlaps (every Chrome UA says "Safari", Edge
# and Opera say "Chrome"), and a dependency with a regex database that must be kept
# current would be out of proportion. First match wins.
_BROWSERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"zulip", re.I), "Zulip"),
    (re.compile(r"\bedge?/|\bedg[ai]os/", re.I), "Edge"),
    (re.compile(r"\bopera\b|\bopr/", re.I), "Opera"),
    (re.compile(r"\bchromium/", re.I), "Chromium"),
    (re.compile(r"\bchrome/|\bcrios/", re.I), "Chrome"),
    (re.compile(r"\bfirefox/|\bfxios/", re.I), "Firefox"),
    (re.compile(r"\bsafari/", re.I), "Safari"),
    (re.compile(r"\bmsie\b|\btrident/", re.I), "Internet Explorer"),
)
_OPERATING_SYSTEMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"android", re.I), "Android"),
    (re.compile(r"iphone|ipad|ipod|\bios\b|like mac os x", re.I), "iOS"),
    (re.compile(r"windows", re.I), "Windows"),
    (re.compile(r"\bcros\b", re.I), "ChromeOS"),
    (re.compile(r"macintosh|mac os x|\bmacos\b|\bdarwin\b", re.I), "macOS"),
    (re.compile(r"linux|x11|ubuntu|debian|fedora|freebsd|openbsd", re.I), "Linux"),
)

UNKNOWN_BROWSER = "An unknown browser"
UNKNOWN_OS = "an unknown operating system"
UNKNOWN_IP = "Unknown IP address"


def _first_match(user_agent: str, table: tuple[tuple[re.Pattern[str], str], ...]) -> str | None:
    for pattern, name in table:
        if pattern.search(user_agent):
            return name
    return None


def device_browser(user_agent: str) -> str | None:
    """The browser family; any UA mentioning Zulip is one of Zulip's apps, as in Zulip."""
    return _first_match(user_agent, _BROWSERS)


def device_os(user_agent: str) -> str | None:
    """The operating system family, or None (the mobile apps' UAs often name none)."""
    return _first_match(user_agent, _OPERATING_SYSTEMS)


def should_send_login_email(user: User, when: datetime | None = None) -> bool:
    """Zulip's conditions, in its order."""
    if not user.enable_login_emails or not user.delivery_email:
        return False
    if not settings.SEND_LOGIN_EMAILS:
        return False
    age = ((when or timezone.now()) - user.date_joined).total_seconds()
    return age > JUST_CREATED_THRESHOLD


def login_email_text(request: HttpRequest, user: User, when: datetime) -> tuple[str, str]:
    """Subject and plain-text body. UTC: keyhouse keeps no per-user time display setting."""
    user_agent = request.headers.get("User-Agent", "")
    browser = device_browser(user_agent) or UNKNOWN_BROWSER
    system = device_os(user_agent) or UNKNOWN_OS
    ip = client_ip(request) or UNKNOWN_IP
    realm = user.realm
    # The realm's configured URL, not the Host header: a stranger chose that one.
    url = mail_link_base(request, realm)
    where = f" ({url})" if url else ""
    login_time = when.astimezone(UTC).strftime("%A, %B %d, %Y at %H:%M UTC")
    subject = f"New login to {realm.name}"
    body = (
        f"Hello {user.full_name},\n"
        "\n"
        f"Your account {user.delivery_email} in the organization {realm.name}{where}\n"
        "was just signed in to:\n"
        "\n"
        f"  Time:       {login_time}\n"
        f"  Device:     {browser} on {system}\n"
        f"  IP address: {ip}\n"
        "\n"
        "If this was you, there is nothing to do.\n"
        "\n"
        "If you do not recognize this login, change your password right away and\n"
        "regenerate your API key, then tell your organization's administrators.\n"
    )
    return subject, body


def email_on_new_login(request: HttpRequest, user: User) -> bool:
    """Send the notification if Zulip would; True if one was sent. Never raises."""
    try:
        when = timezone.now()
        if not should_send_login_email(user, when):
            return False
        subject, body = login_email_text(request, user, when)
        recipient = user.delivery_email
        # Off the request thread: SMTP may take seconds, and a login must not wait.
        send_in_background(
            lambda: EmailMessage(subject, body, None, [recipient]), "a new-login email"
        )
    except Exception:
        logger.exception("Could not send the new-login email to user %s", user.id)
        return False
    return True
