"""The mobile app's browser sign-in (``mobile_flow_otp``), as Zulip's tests check it (§6, §9).

The redirect is decoded here with this file's own implementation of the pad
(byte-wise XOR, as zulip-flutter does), not the production function, so a bug
shared by encoder and decoder cannot hide.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.auth.models import LoginAttempt
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import User
from tests.conftest import PASSWORD, age
from tests.web.conftest import csrf_token

OTP = "1234abcd" * 8
INVALID_OTP = {"result": "error", "msg": "Invalid OTP", "code": "BAD_REQUEST"}
BOTH_OTPS = {
    "result": "error",
    "msg": "Can't use both mobile_flow_otp and desktop_flow_otp together.",
    "code": "BAD_REQUEST",
}


def decrypt(encrypted_hex: str, otp: str) -> str:
    """The app's side: bytes of the answer XOR bytes of the pad, read as ASCII."""
    pad = bytes.fromhex(otp)
    data = bytes.fromhex(encrypted_hex)
    assert len(pad) == len(data) == 32
    return bytes(a ^ b for a, b in zip(data, pad, strict=True)).decode("ascii")


def sign_in(
    client: Client,
    otp: str | None = OTP,
    host: str = "testserver",
    fields: dict[str, str] | None = None,
    **extra: str,
) -> HttpResponse:
    data = {"username": "hamlet@example.com", "password": PASSWORD, **(fields or {})}
    if otp is not None:
        data["mobile_flow_otp"] = otp
    return client.post("/login/", data, HTTP_HOST=host, **extra)


def zulip_redirect(response: HttpResponse) -> tuple[list[tuple[str, str]], str]:
    """The query of a zulip://login redirect, in order, after checking what the app checks."""
    assert response.status_code == 302, response.content
    assert response.content == b""
    location = response["Location"]
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("zulip", "login", "")
    query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    return query, location


def json_error(response: HttpResponse) -> dict[str, object]:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


@pytest.mark.parametrize("otp", ["1234", "invalido" * 8, "", OTP + "0", "٣" * 64])
def test_invalid_otp_is_a_zulip_json_400(client: Client, user: User, otp: str) -> None:
    assert json_error(client.get("/login/", {"mobile_flow_otp": otp})) == INVALID_OTP
    assert json_error(sign_in(client, otp)) == INVALID_OTP
    assert client.session.get("_auth_user_id") is None
    assert not LoginAttempt.objects.exists()  # refused before any password was checked


def test_both_otps_are_refused(client: Client, user: User) -> None:
    query = {"mobile_flow_otp": OTP, "desktop_flow_otp": OTP}
    assert json_error(client.get("/login/", query)) == BOTH_OTPS
    data = {"username": user.delivery_email, "password": PASSWORD, **query}
    assert json_error(client.post("/login/", data)) == BOTH_OTPS
    assert client.session.get("_auth_user_id") is None


def test_form_carries_the_otp(client: Client, user: User) -> None:
    html = client.get("/login/", {"mobile_flow_otp": OTP}).content.decode()
    assert f'<input type="hidden" name="mobile_flow_otp" value="{OTP}">' in html
    assert "Zulip mobile app" in html


def test_success_redirects_to_the_app(client: Client, user: User) -> None:
    response = sign_in(client, HTTP_USER_AGENT="ZulipAndroid")
    query, location = zulip_redirect(response)
    assert [name for name, _ in query] == ["otp_encrypted_api_key", "email", "user_id", "realm"]
    params = dict(query)
    assert re.fullmatch(r"[0-9a-f]{64}", params["otp_encrypted_api_key"])
    assert decrypt(params["otp_encrypted_api_key"], OTP) == user.api_key
    assert params["email"] == "Hamlet@Example.com"
    assert params["user_id"] == str(user.id)
    assert params["realm"] == "http://testserver"
    assert "email=Hamlet%40Example.com&" in location  # urlencoded, as Zulip's
    assert LoginAttempt.objects.get().method == "web"


def test_uppercase_otp_works(client: Client, user: User) -> None:
    """Zulip accepts hex of either case; the app may send either."""
    otp = OTP.upper()
    params = dict(zulip_redirect(sign_in(client, otp))[0])
    assert decrypt(params["otp_encrypted_api_key"], otp) == user.api_key


def test_realm_is_what_server_settings_told_the_app(
    client: Client, user: User, external_host: str
) -> None:
    """zulip-flutter refuses the redirect unless the realm's origin is the one it asked."""
    forum = Realm.objects.create(subdomain="forum", name="Forum", authentication_methods=["email"])
    create_user(forum, "hamlet@example.com", "Hamlet of the Forum", password=PASSWORD)
    host = f"forum.{external_host}"
    params = dict(zulip_redirect(sign_in(client, host=host))[0])
    realm_uri = client.get("/api/v1/server_settings", HTTP_HOST=host).json()["realm_uri"]
    assert params["realm"] == realm_uri == f"http://forum.{external_host}"


def test_realm_url_can_be_remapped(client: Client, user: User, settings: Settings) -> None:
    settings.REALM_MOBILE_REMAP_URIS = {"http://testserver": "http://zulip-mobile.testserver"}
    params = dict(zulip_redirect(sign_in(client))[0])
    assert params["realm"] == "http://zulip-mobile.testserver"
    settings.REALM_MOBILE_REMAP_URIS = {"http://elsewhere": "http://zulip-mobile.testserver"}
    assert dict(zulip_redirect(sign_in(client))[0])["realm"] == "http://testserver"


def test_no_session_is_created(client: Client, user: User) -> None:
    response = sign_in(client)
    zulip_redirect(response)
    assert django_settings.SESSION_COOKIE_NAME not in response.cookies
    assert client.session.get("_auth_user_id") is None
    assert client.get("/account/api-key/").status_code == 302  # still signed out


def test_works_behind_csrf_like_a_browser(csrf_client: Client, user: User) -> None:
    token = csrf_token(csrf_client, f"/login/?mobile_flow_otp={OTP}")
    params = dict(zulip_redirect(sign_in(csrf_client, fields={"csrfmiddlewaretoken": token}))[0])
    assert decrypt(params["otp_encrypted_api_key"], OTP) == user.api_key


def test_login_email_names_the_android_app(client: Client, user: User) -> None:
    age(user)
    zulip_redirect(sign_in(client, HTTP_USER_AGENT="ZulipAndroid"))
    assert len(mail.outbox) == 1
    assert "Zulip on Android" in mail.outbox[0].body


def test_wrong_password_keeps_the_otp(client: Client, user: User) -> None:
    response = client.post(
        "/login/",
        {"username": user.delivery_email, "password": "wrong-password-1", "mobile_flow_otp": OTP},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Incorrect email or password." in html
    assert f'name="mobile_flow_otp" value="{OTP}"' in html
    assert mail.outbox == []


def test_otp_is_not_kept_for_a_later_request(client: Client, user: User) -> None:
    """Zulip's test_social_auth_session_fields_cleared_correctly, for this page."""
    assert "mobile_flow_otp" in client.get("/login/", {"mobile_flow_otp": OTP}).content.decode()
    assert "mobile_flow_otp" not in client.get("/login/").content.decode()
    response = sign_in(client, otp=None)
    assert response.status_code == 302
    assert response["Location"] == "/account/api-key/"  # a plain web sign-in
    assert client.session.get("_auth_user_id") == str(user.id)
