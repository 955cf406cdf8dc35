"""The "new login" email: Zulip's conditions (§1.8), its content, and that it never breaks."""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import Client, RequestFactory
from django.utils import timezone
from pytest_django.fixtures import Settings

from keyhouse.auth.login_notifications import (
    JUST_CREATED_THRESHOLD,
    device_browser,
    device_os,
    email_on_new_login,
    login_email_text,
    should_send_login_email,
)
from keyhouse.users.models import User
from tests.conftest import PASSWORD

notifications = importlib.import_module("keyhouse.auth.login_notifications")

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "browser", "system"),
    [
        ("ZulipAndroid", "Zulip", "Android"),
        ("ZulipMobile/27.224 (Android 14)", "Zulip", "Android"),
        ("ZulipMobile/27.224 (iOS 17.4)", "Zulip", "iOS"),
        ("ZulipFlutter/0.0.30 (Android 15)", "Zulip", "Android"),
        ("ZulipTerminal/0.7.0 (Linux; python 3.11)", "Zulip", "Linux"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
            " ZulipElectron/5.11.1 Chrome/120.0.0.0 Electron/28.2.0 Safari/537.36",
            "Zulip",
            "macOS",
        ),
        ("python-requests/2.31.0 ZulipPython/0.9.1", "Zulip", None),
        (CHROME_WINDOWS, "Chrome", "Windows"),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
            "Firefox",
            "Linux",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"
            " Version/17.5 Safari/605.1.15",
            "Safari",
            "macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari",
            "iOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
            "Chrome",
            "iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/126.0.6478.71 Mobile Safari/537.36",
            "Chrome",
            "Android",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68",
            "Edge",
            "Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0",
            "Opera",
            "Windows",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/126.0.0.0 Safari/537.36",
            "Chrome",
            "ChromeOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko",
            "Internet Explorer",
            "Windows",
        ),
        ("curl/8.5.0", None, None),
        ("", None, None),
    ],
)
def test_user_agent_parsing(user_agent: str, browser: str | None, system: str | None) -> None:
    assert (device_browser(user_agent), device_os(user_agent)) == (browser, system)


# --- When it is sent ------------------------------------------------------------------


def test_sent_for_an_established_account(old_user: User) -> None:
    assert should_send_login_email(old_user)


def test_not_when_the_user_opted_out(old_user: User) -> None:
    old_user.enable_login_emails = False
    assert not should_send_login_email(old_user)


def test_not_without_an_address(old_user: User) -> None:
    old_user.delivery_email = ""
    assert not should_send_login_email(old_user)


def test_not_when_the_server_says_no(old_user: User, settings: Settings) -> None:
    settings.SEND_LOGIN_EMAILS = False
    assert not should_send_login_email(old_user)


def test_not_in_the_first_minute(user: User) -> None:
    joined = user.date_joined
    assert not should_send_login_email(user, joined + timedelta(seconds=JUST_CREATED_THRESHOLD))
    assert should_send_login_email(user, joined + timedelta(seconds=JUST_CREATED_THRESHOLD + 1))


# --- What it says ---------------------------------------------------------------------


def test_content(old_user: User) -> None:
    request = RequestFactory().post(
        "/login/", HTTP_USER_AGENT=CHROME_WINDOWS, REMOTE_ADDR="203.0.113.9"
    )
    when = datetime(2024, 5, 17, 14, 3, 59, tzinfo=UTC)
    subject, body = login_email_text(request, old_user, when)
    assert subject == "New login to Test Org"
    assert "Friday, May 17, 2024 at 14:03 UTC" in body
    assert "Chrome on Windows" in body
    assert "203.0.113.9" in body
    assert "Test Org (http://testserver)" in body
    assert "Hamlet@Example.com" in body
    assert old_user.api_key not in body


def test_time_is_given_in_utc(old_user: User) -> None:
    request = RequestFactory().get("/")
    when = datetime(2024, 5, 17, 23, 30, tzinfo=timezone.get_fixed_timezone(-300))
    assert "Saturday, May 18, 2024 at 04:30 UTC" in login_email_text(request, old_user, when)[1]


def test_ip_behind_a_trusted_proxy(old_user: User, settings: Settings) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert "IP address: 198.51.100.7" in login_email_text(request, old_user, timezone.now())[1]


def test_unknowns_are_named(old_user: User) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="")
    body = login_email_text(request, old_user, timezone.now())[1]
    assert "An unknown browser on an unknown operating system" in body
    assert "Unknown IP address" in body


def test_email_on_new_login_sends_one_mail(old_user: User) -> None:
    request = RequestFactory().get("/", HTTP_USER_AGENT="ZulipAndroid")
    assert email_on_new_login(request, old_user) is True
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["Hamlet@Example.com"]
    assert "Zulip on Android" in mail.outbox[0].body


def test_a_failing_mail_server_is_logged_not_raised(
    old_user: User, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A real SMTP connection that is refused: the login goes on, the log says so."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2
    with caplog.at_level(logging.ERROR, logger="keyhouse.mail"):
        email_on_new_login(RequestFactory().get("/"), old_user)
    assert "Could not send a new-login email" in caplog.text


# --- fetch_api_key sends it (§1.8) -------------------------------------------------------


def test_fetch_api_key_sends_it_on_success_only(client: Client, old_user: User) -> None:
    data = {"username": old_user.delivery_email, "password": "wrong-password-77"}
    assert client.post("/api/v1/fetch_api_key", data).status_code == 401
    assert mail.outbox == []
    data["password"] = PASSWORD
    response = client.post(
        "/api/v1/fetch_api_key", data, HTTP_USER_AGENT="ZulipTerminal/0.7.0 (Linux; python 3.11)"
    )
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    assert "Zulip on Linux" in mail.outbox[0].body


def test_fetch_api_key_not_for_a_brand_new_account(client: Client, user: User) -> None:
    data = {"username": user.delivery_email, "password": PASSWORD}
    assert client.post("/api/v1/fetch_api_key", data).status_code == 200
    assert mail.outbox == []


def test_fetch_api_key_survives_a_broken_mail_server(
    client: Client, old_user: User, settings: Settings
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2
    data = {"username": old_user.delivery_email, "password": PASSWORD}
    response = client.post("/api/v1/fetch_api_key", data)
    assert response.status_code == 200
    assert response.json()["api_key"] == old_user.api_key


# --- Which URL it names: the realm's, never a Host header a stranger chose -----------------


@pytest.mark.parametrize("host", ["evil.com", "evil.com:443", "localhost:6666", "127.0.0.1"])
def test_a_forged_host_is_not_named(
    client: Client, old_user: User, settings: Settings, host: str
) -> None:
    """``Host: evil.com`` resolves to the root realm; the mail names the configured URL."""
    settings.EXTERNAL_HOST = "avianforum.ca"
    data = {"username": old_user.delivery_email, "password": PASSWORD}
    response = client.post("/api/v1/fetch_api_key", data, HTTP_HOST=host, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    [message] = mail.outbox
    assert "Test Org (http://avianforum.ca)" in message.body
    assert host.split(":")[0] not in message.body.replace("avianforum.ca", "")


def test_behind_a_tls_proxy_the_url_is_https(
    client: Client, old_user: User, settings: Settings
) -> None:
    settings.EXTERNAL_HOST = "avianforum.ca"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    data = {"username": old_user.delivery_email, "password": PASSWORD}
    assert client.post("/api/v1/fetch_api_key", data, HTTP_HOST="evil.com").status_code == 200
    assert "Test Org (https://avianforum.ca)" in mail.outbox[0].body


def test_without_external_host_an_untrusted_host_is_left_out(
    client: Client, old_user: User, settings: Settings
) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    data = {"username": old_user.delivery_email, "password": PASSWORD}
    assert client.post("/api/v1/fetch_api_key", data, HTTP_HOST="evil.com").status_code == 200
    [message] = mail.outbox
    assert "evil.com" not in message.body
    assert "in the organization Test Org\n" in message.body
