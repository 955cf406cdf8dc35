"""Sign-in through a real OpenID Connect provider (tests/sso/conftest.py), as Zulip's flows.

keyhouse runs in-process (Django's test client, host ``testserver``); it talks to
the provider over real HTTP for discovery, the token and userinfo. The browser's
side at the provider (its login and consent forms) is driven with httpx, following
redirects by hand so that the hop back to keyhouse is ours to make.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.auth.models import LoginAttempt
from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from tests.conftest import age
from tests.sso.conftest import CLIENT_ID, CLIENT_SECRET, free_port
from tests.web.test_desktop_flow import decrypt_token, desktop_data
from tests.web.test_mobile_flow import decrypt

OTP = "1234abcd" * 8


@pytest.fixture
def oidc(settings: Settings, oidc_issuer: str, realm: Realm) -> str:
    settings.SOCIAL_AUTH_OIDC_ENABLED_IDPS = {
        "testidp": {
            "oidc_url": oidc_issuer,
            "client_id": CLIENT_ID,
            "secret": CLIENT_SECRET,
            "display_name": "Test IdP",
        }
    }
    realm.authentication_methods = ["email", "oidc"]
    realm.save()
    return oidc_issuer


def at_idp(location: str, login: str) -> str:
    """The browser at the provider: log in as ``login``, consent; the redirect back to us."""
    with httpx.Client(timeout=10) as browser:
        url = location
        for _ in range(10):
            response = browser.get(url)
            if response.status_code in (302, 303):
                url = str(response.next_request.url) if response.next_request else ""
                if url.startswith("http://testserver/"):
                    return url
                continue
            form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
            assert form, response.text
            action = str(response.url.join(unescape(form.group(1))))
            fields = dict(
                re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', response.text)
            )
            if 'name="login"' in response.text:
                fields.update({"login": login, "password": "anything"})
            response = browser.post(action, data=fields)
            assert response.status_code in (302, 303), response.text
            url = str(response.next_request.url) if response.next_request else ""
            if url.startswith("http://testserver/"):
                return url
        raise AssertionError("the provider never sent the browser back")


def back_to_keyhouse(client: Client, url: str) -> HttpResponse:
    parts = urlsplit(url)
    return client.get(parts.path, dict(parse_qsl(parts.query)))


def start(client: Client, query: str = "") -> str:
    response = client.get("/accounts/login/social/oidc" + query)
    assert response.status_code == 302, response.content
    return str(response["Location"])


def sign_in_via_idp(client: Client, login: str = "alice", query: str = "") -> HttpResponse:
    return back_to_keyhouse(client, at_idp(start(client, query), login))


@pytest.fixture
def alice(realm: Realm) -> User:
    from keyhouse.users.actions import create_user

    return age(create_user(realm, "alice@example.com", "Alice"))


def attempts() -> list[tuple[str, str, str]]:
    return list(LoginAttempt.objects.order_by("id").values_list("method", "outcome", "reason"))


def test_server_settings_lists_the_idp_as_zulip(client: Client, oidc: str) -> None:
    body = client.get("/api/v1/server_settings").json()
    assert body["authentication_methods"]["openid connect"] is True
    assert body["external_authentication_methods"] == [
        {
            "name": "oidc:oidc",
            "display_name": "Test IdP",
            "display_icon": None,
            "login_url": "/accounts/login/social/oidc",
            "signup_url": "/accounts/register/social/oidc",
        }
    ]
    assert list(body["external_authentication_methods"][0]) == [
        "name", "display_name", "display_icon", "login_url", "signup_url"
    ]  # fmt: skip


def test_not_listed_when_the_realm_does_not_enable_it(
    client: Client, oidc: str, realm: Realm
) -> None:
    realm.authentication_methods = ["email"]
    realm.save()
    body = client.get("/api/v1/server_settings").json()
    assert body["external_authentication_methods"] == []
    assert body["authentication_methods"]["openid connect"] is False
    assert client.get("/accounts/login/social/oidc").status_code == 200  # the login page, refusing


def test_login_page_shows_a_button_and_no_password_form_with_sso_only(
    client: Client, oidc: str, realm: Realm
) -> None:
    realm.authentication_methods = ["oidc"]
    realm.save()
    html = client.get("/login/").content.decode()
    assert 'href="/accounts/login/social/oidc"' in html
    assert 'name="password"' not in html


def test_web_sign_in(client: Client, oidc: str, alice: User) -> None:
    response = sign_in_via_idp(client)
    assert response.status_code == 302, response.content
    assert response["Location"] == "/account/api-key/"
    assert int(client.session["_auth_user_id"]) == alice.id
    assert attempts() == [("oidc", "success", "")]
    assert len(mail.outbox) == 1  # the new-login email


def test_mobile_flow_end_to_end(client: Client, oidc: str, alice: User) -> None:
    response = sign_in_via_idp(client, query=f"?mobile_flow_otp={OTP}")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("zulip://login?")
    params = dict(parse_qsl(urlsplit(location).query))
    assert list(params) == ["otp_encrypted_api_key", "email", "user_id", "realm"]
    api_key = decrypt(params["otp_encrypted_api_key"], OTP)
    assert "_auth_user_id" not in client.session  # no browser session
    me = Client().get(
        "/api/v1/users/me",
        HTTP_AUTHORIZATION=httpx.BasicAuth("alice@example.com", api_key)._auth_header,
    )
    assert me.status_code == 200, me.content
    assert me.json()["email"] == "alice@example.com"


def test_desktop_flow_end_to_end(client: Client, oidc: str, alice: User) -> None:
    response = sign_in_via_idp(client, query=f"?desktop_flow_otp={OTP}")
    token = decrypt_token(desktop_data(response))
    app = Client()
    redeemed = app.get(f"/accounts/login/subdomain/{token}")
    assert redeemed.status_code == 302
    assert int(app.session["_auth_user_id"]) == alice.id


def test_otp_does_not_leak_into_the_next_sign_in(client: Client, oidc: str, alice: User) -> None:
    """Zulip's issue 13560: a mobile flow, then a web sign-in in the same browser."""
    assert sign_in_via_idp(client, query=f"?mobile_flow_otp={OTP}")["Location"].startswith(
        "zulip://"
    )
    response = sign_in_via_idp(client)
    assert response["Location"] == "/account/api-key/"


def test_invalid_otp_is_refused_before_the_idp(client: Client, oidc: str) -> None:
    response = client.get("/accounts/login/social/oidc?mobile_flow_otp=abc")
    assert response.status_code == 400
    assert response.json() == {"result": "error", "msg": "Invalid OTP", "code": "BAD_REQUEST"}


def test_auto_signup_creates_the_account(client: Client, oidc: str, settings: Settings) -> None:
    settings.SOCIAL_AUTH_OIDC_ENABLED_IDPS["testidp"]["auto_signup"] = True
    response = sign_in_via_idp(client, login="newbie")
    assert response.status_code == 302
    user = User.objects.get(delivery_email="newbie@example.com")
    assert user.full_name == "New Person"
    assert not user.has_usable_password()


def test_unknown_user_without_auto_signup_is_refused(client: Client, oidc: str) -> None:
    response = sign_in_via_idp(client, login="newbie")
    assert response.status_code == 200
    assert "There is no account for your email address" in response.content.decode()
    assert not User.objects.filter(delivery_email="newbie@example.com").exists()
    assert attempts() == [("oidc", "failure", "NO_ACCOUNT")]


def test_unverified_email_is_refused(client: Client, oidc: str, alice: User) -> None:
    response = sign_in_via_idp(client, login="mallory")
    assert "has not verified your email address" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert attempts() == [("oidc", "failure", "EMAIL_NOT_VERIFIED")]


def test_deactivated_user_is_refused(client: Client, oidc: str, alice: User) -> None:
    alice.is_active = False
    alice.save()
    response = sign_in_via_idp(client)
    assert "This account has been deactivated" in response.content.decode()
    assert attempts() == [("oidc", "failure", "USER_DEACTIVATED")]


def test_wrong_state_is_refused(client: Client, oidc: str, alice: User) -> None:
    url = at_idp(start(client), "alice")
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["state"] = "forged"
    response = client.get(parts.path, query)
    assert response.status_code == 200
    assert "expired or was already used" in response.content.decode()
    assert attempts() == [("oidc", "failure", "SSO_STATE_INVALID")]


def test_state_is_single_use(client: Client, oidc: str, alice: User) -> None:
    url = at_idp(start(client), "alice")
    assert back_to_keyhouse(client, url).status_code == 302
    again = back_to_keyhouse(client, url)
    assert "expired or was already used" in again.content.decode()


def test_callback_in_another_browser_is_refused(client: Client, oidc: str, alice: User) -> None:
    url = at_idp(start(client), "alice")
    response = back_to_keyhouse(Client(), url)
    assert "expired or was already used" in response.content.decode()


def test_access_denied_ends_on_the_login_page(client: Client, oidc: str) -> None:
    location = start(client)
    state = dict(parse_qsl(urlsplit(location).query))["state"]
    response = client.get("/complete/oidc/", {"error": "access_denied", "state": state})
    assert response.status_code == 200
    assert "was cancelled" in response.content.decode()
    assert attempts() == [("oidc", "failure", "IDP_DENIED")]


def test_idp_down_ends_on_the_login_page(client: Client, settings: Settings, realm: Realm) -> None:
    settings.SOCIAL_AUTH_OIDC_ENABLED_IDPS = {
        "down": {"oidc_url": f"http://127.0.0.1:{free_port()}", "client_id": "x", "secret": "y"}
    }
    settings.SOCIAL_AUTH_TIMEOUT = 1.0
    realm.authentication_methods = ["oidc"]
    realm.save()
    response = client.get("/accounts/login/social/oidc")
    assert response.status_code == 200
    assert "cannot be reached right now" in response.content.decode()
    assert attempts() == [("oidc", "failure", "IDP_UNAVAILABLE")]
