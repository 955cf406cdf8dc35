"""The desktop app's browser sign-in (``desktop_flow_otp``) and its token (§6.5).

``desktop_data`` is decrypted here with this file's own use of AES-GCM (12-byte IV
prefix, no associated data), the way the desktop app does it.
"""

from __future__ import annotations

import importlib
import re
from datetime import timedelta
from html import unescape

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings as django_settings
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from keyhouse.users.actions import set_active
from keyhouse.users.api_keys import has_api_key_format
from keyhouse.users.models import User
from keyhouse.web.login_tokens import issue_login_token
from keyhouse.web.models import LoginToken
from tests.conftest import PASSWORD, age

tokens_module = importlib.import_module("keyhouse.web.login_tokens")

OTP = "1234abcd" * 8
INVALID_SESSION = "Invalid or expired login session."


def sign_in(client: Client, otp: str = OTP, **extra: str) -> HttpResponse:
    data = {"username": "hamlet@example.com", "password": PASSWORD, "desktop_flow_otp": otp}
    return client.post("/login/", data, **extra)


def desktop_data(response: HttpResponse) -> str:
    assert response.status_code == 200, response.content
    html = response.content.decode()
    match = re.search(r'<input id="desktop-data" type="text" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


def decrypt_token(data_hex: str, otp: str = OTP) -> str:
    data = bytes.fromhex(data_hex)
    iv, ciphertext = data[:12], data[12:]
    return AESGCM(bytes.fromhex(otp)).decrypt(iv, ciphertext, b"").decode()


def redeem(client: Client, token: str, host: str = "testserver") -> HttpResponse:
    return client.get(f"/accounts/login/subdomain/{token}", HTTP_HOST=host)


def session_user_id(client: Client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value is not None else None


def test_invalid_otp_is_a_zulip_json_400(client: Client, user: User) -> None:
    for otp in ("1234", "invalido" * 8):
        response = client.get("/login/", {"desktop_flow_otp": otp})
        assert response.status_code == 400
        assert response.json() == {"result": "error", "msg": "Invalid OTP", "code": "BAD_REQUEST"}


def test_end_page_carries_an_encrypted_single_use_token(client: Client, user: User) -> None:
    response = sign_in(client)
    html = response.content.decode()
    token = decrypt_token(desktop_data(response))
    assert has_api_key_format(token)
    assert '<a href="/login/">' in html  # browser_url, as Zulip's page has it
    assert token not in html
    assert response["Cache-Control"].startswith("max-age=0")
    # The app, not this browser, gets the session: nothing is signed in yet.
    assert session_user_id(client) is None
    assert django_settings.SESSION_COOKIE_NAME not in response.cookies


def test_each_page_uses_a_fresh_iv(client: Client, user: User) -> None:
    first, second = desktop_data(sign_in(client)), desktop_data(sign_in(client))
    assert first[:24] != second[:24]
    assert decrypt_token(first) != decrypt_token(second)


def test_token_signs_the_app_in_once(client: Client, user: User) -> None:
    token = decrypt_token(desktop_data(sign_in(client)))
    app = Client()
    response = redeem(app, token)
    assert response.status_code == 302
    assert response["Location"] == "/account/api-key/"
    assert session_user_id(app) == user.id
    again = redeem(Client(), token)
    assert again.status_code == 400
    assert INVALID_SESSION in unescape(again.content.decode())


def test_token_lives_15_seconds(
    client: Client, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued_at = timezone.now()
    monkeypatch.setattr(tokens_module, "now", lambda: issued_at)
    token = issue_login_token(user)
    assert LoginToken.objects.get(token=token).expires_at == issued_at + timedelta(seconds=15)
    late = issue_login_token(user)
    monkeypatch.setattr(tokens_module, "now", lambda: issued_at + timedelta(seconds=14))
    assert redeem(Client(), token).status_code == 302
    monkeypatch.setattr(
        tokens_module, "now", lambda: issued_at + timedelta(seconds=15, microseconds=1)
    )
    response = redeem(Client(), late)
    assert response.status_code == 400
    assert INVALID_SESSION in unescape(response.content.decode())
    assert not LoginToken.objects.filter(token=late).exists()  # used up all the same


def test_expired_rows_are_swept(user: User) -> None:
    stale = issue_login_token(user)
    LoginToken.objects.filter(token=stale).update(expires_at=timezone.now() - timedelta(seconds=1))
    issue_login_token(user)
    assert not LoginToken.objects.filter(token=stale).exists()
    assert LoginToken.objects.count() == 1


@pytest.mark.parametrize("token", ["abc", "x" * 31, "y" * 33, "a" * 31 + "-", "%00" * 32])
def test_malformed_token_is_an_empty_400(client: Client, user: User, token: str) -> None:
    response = redeem(client, token)
    assert response.status_code == 400
    assert response.content == b""
    assert session_user_id(client) is None


def test_unknown_token(client: Client, user: User) -> None:
    response = redeem(client, "A" * 32)
    assert response.status_code == 400
    assert INVALID_SESSION in unescape(response.content.decode())


def test_token_of_a_deactivated_user(client: Client, user: User) -> None:
    token = issue_login_token(user)
    set_active(user, False)
    assert redeem(client, token).status_code == 400
    assert session_user_id(client) is None


def test_token_of_another_realm(client: Client, other_user: User, external_host: str) -> None:
    token = issue_login_token(other_user)
    response = redeem(client, token, host=external_host)  # the root realm's host
    assert response.status_code == 400
    assert response.json() == {"result": "error", "msg": "Invalid subdomain", "code": "BAD_REQUEST"}
    assert session_user_id(client) is None


def test_token_on_its_own_subdomain(client: Client, other_user: User, external_host: str) -> None:
    token = issue_login_token(other_user)
    response = redeem(client, token, host=f"other.{external_host}")
    assert response.status_code == 302
    assert session_user_id(client) == other_user.id


def test_login_email_is_sent_when_the_app_signs_in(client: Client, user: User) -> None:
    age(user)
    token = decrypt_token(desktop_data(sign_in(client)))
    assert mail.outbox == []  # the page alone signs nobody in
    app = Client(HTTP_USER_AGENT="ZulipElectron/5.11.1 Chrome/120.0 Electron/28 (Macintosh)")
    assert redeem(app, token).status_code == 302
    assert len(mail.outbox) == 1
    assert "Zulip on macOS" in mail.outbox[0].body
