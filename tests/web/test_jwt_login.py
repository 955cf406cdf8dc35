"""POST /accounts/login/jwt/: Zulip's remote_user_jwt, and the apps' flows through it.

Zulip's TestJWTLogin: a token signs a browser in (302, a session); the token's
refusals are its JSON 400s. keyhouse adds the apps' flows (``mobile_flow_otp``,
``desktop_flow_otp``), decoded here the way the apps decode them (the helpers of
test_mobile_flow.py and test_desktop_flow.py, not the production code).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.auth.models import LoginAttempt
from keyhouse.realms.actions import set_realm_active
from keyhouse.realms.models import Realm
from keyhouse.users.actions import set_active
from keyhouse.users.models import User
from tests.jwt_tokens import OTHER_KEY, configure, expired, token
from tests.web.test_desktop_flow import decrypt_token, desktop_data, session_user_id
from tests.web.test_mobile_flow import BOTH_OTPS, INVALID_OTP, OTP, decrypt, zulip_redirect

URL = "/accounts/login/jwt/"
EMAIL = "hamlet@example.com"


@pytest.fixture(autouse=True)
def jwt_enabled(settings: Settings) -> None:
    configure(settings)


def post(client: Client, data: dict[str, str], url: str = URL, **extra: Any) -> HttpResponse:
    response: HttpResponse = client.post(url, data, **extra)
    return response


def good(**fields: str) -> dict[str, str]:
    return {"token": token({"email": EMAIL}), **fields}


def zulip_error(response: HttpResponse, status: int, msg: str, code: str = "BAD_REQUEST") -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"result": "error", "msg": msg, "code": code}


def attempts() -> list[tuple[str, str, str]]:
    return list(LoginAttempt.objects.order_by("id").values_list("method", "outcome", "reason"))


# --- a browser session -----------------------------------------------------------------


def test_token_signs_the_browser_in(client: Client, old_user: User) -> None:
    response = post(client, good())
    assert response.status_code == 302
    assert response["Location"] == "/account/api-key/"
    assert session_user_id(client) == old_user.id
    assert attempts() == [("jwt", "success", "")]
    assert len(mail.outbox) == 1  # the new-login email, as Zulip's do_login sends it


def test_the_session_opens_the_api_key_page(client: Client, user: User) -> None:
    post(client, good())
    assert client.get("/account/api-key/").status_code == 200


def test_next_is_followed_when_it_stays_on_this_host(client: Client, user: User) -> None:
    assert post(client, good(next="/accounts/logout/"))["Location"] == "/accounts/logout/"
    assert post(client, good(next="https://evil.example/"))["Location"] == "/account/api-key/"


def test_a_cross_site_form_post_works(csrf_client: Client, user: User) -> None:
    """The integrating site posts the form: CSRF-exempt, as Zulip's remote_user_jwt."""
    assert post(csrf_client, good()).status_code == 302


def test_only_post(client: Client, user: User) -> None:
    response = client.get(URL, {"token": token({"email": EMAIL})})
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert session_user_id(client) is None


# --- the token's refusals: Zulip's JSON errors -------------------------------------------


def test_token_refusals_are_zulips_json(client: Client, user: User, settings: Settings) -> None:
    zulip_error(post(client, {}), 400, "No JSON web token passed in request")
    zulip_error(post(client, {"token": "bad token"}), 400, "Bad JSON web token")
    zulip_error(post(client, {"token": expired(EMAIL)}), 400, "Bad JSON web token")
    zulip_error(
        post(client, {"token": token({"email": EMAIL}, OTHER_KEY)}), 400, "Bad JSON web token"
    )
    zulip_error(
        post(client, {"token": token({"user": "hamlet"})}),
        400,
        "No email specified in JSON web token claims",
    )
    configure(settings, subdomain="acme")
    zulip_error(
        post(client, {"token": "not relevant"}),
        400,
        "JWT authentication is not enabled for this organization",
    )
    assert session_user_id(client) is None


def test_unknown_host_is_zulips_json_404(client: Client, user: User, external_host: str) -> None:
    response = post(client, good(), HTTP_HOST="nowhere.example.org")
    zulip_error(response, 404, "Invalid subdomain", "NONEXISTENT_SUBDOMAIN")


# --- the account's refusals: the login page -----------------------------------------------


def test_unknown_user_gets_the_login_page(client: Client, user: User) -> None:
    response = post(client, {"token": token({"email": "nobody@example.com"})})
    assert response.status_code == 200  # as Zulip's ("This should ideally be not 200")
    assert b"Incorrect email or password." in response.content
    assert session_user_id(client) is None
    assert attempts() == [("jwt", "failure", "AUTHENTICATION_FAILED")]


def test_deactivated_user(client: Client, user: User) -> None:
    set_active(user, False)
    response = post(client, good())
    assert response.status_code == 200
    assert b"This account has been deactivated." in response.content
    assert session_user_id(client) is None


def test_deactivated_realm_gets_its_page(client: Client, realm: Realm, user: User) -> None:
    set_realm_active(realm, False)
    response = post(client, good())
    assert response.status_code == 200
    assert b"deactivated" in response.content
    assert session_user_id(client) is None


def test_rate_limited_like_the_password_form(client: Client, user: User) -> None:
    for _ in range(5):
        assert post(client, {"token": token({"email": EMAIL}, OTHER_KEY)}).status_code == 400
    response = post(client, good())
    assert response.status_code == 429
    assert b"Too many sign-in attempts." in response.content
    assert session_user_id(client) is None


# --- the apps' flows -------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["mobile_flow_otp", "desktop_flow_otp"])
@pytest.mark.parametrize("otp", ["1234", "invalido" * 8, ""])
def test_invalid_otp_is_refused_as_by_the_login_page(
    client: Client, user: User, field: str, otp: str
) -> None:
    response = post(client, good(**{field: otp}))
    assert response.status_code == 400
    assert json.loads(response.content) == INVALID_OTP
    assert attempts() == []  # refused before the token is looked at


def test_both_otps_are_refused(client: Client, user: User) -> None:
    response = post(client, good(mobile_flow_otp=OTP, desktop_flow_otp=OTP))
    assert json.loads(response.content) == BOTH_OTPS


@pytest.mark.parametrize("where", ["form", "query"])
def test_mobile_flow_end_to_end(client: Client, old_user: User, where: str) -> None:
    if where == "form":
        response = post(client, good(mobile_flow_otp=OTP))
    else:
        response = post(client, good(), url=f"{URL}?mobile_flow_otp={OTP}")
    query, _ = zulip_redirect(response)
    assert [name for name, _ in query] == ["otp_encrypted_api_key", "email", "user_id", "realm"]
    params = dict(query)
    assert params["email"] == "Hamlet@Example.com"
    assert params["user_id"] == str(old_user.id)
    assert params["realm"] == "http://testserver"
    api_key = decrypt(params["otp_encrypted_api_key"], OTP)
    assert session_user_id(client) is None  # no browser session in the mobile flow
    me = Client().get(
        "/api/v1/users/me",
        HTTP_AUTHORIZATION=httpx.BasicAuth("Hamlet@Example.com", api_key)._auth_header,
    )
    assert me.status_code == 200, me.content
    assert me.json()["user_id"] == old_user.id
    assert attempts() == [("jwt", "success", "")]
    assert len(mail.outbox) == 1  # announced by the flow's finish, once


def test_desktop_flow_end_to_end(client: Client, old_user: User) -> None:
    response = post(client, good(desktop_flow_otp=OTP))
    login_token = decrypt_token(desktop_data(response))
    assert session_user_id(client) is None
    assert len(mail.outbox) == 0  # the sign-in is the redemption
    app = Client()
    redeemed = app.get(f"/accounts/login/subdomain/{login_token}")
    assert redeemed.status_code == 302
    assert session_user_id(app) == old_user.id
    assert len(mail.outbox) == 1


def test_refused_token_in_the_mobile_flow_is_zulips_json(client: Client, user: User) -> None:
    response = post(client, {"token": expired(EMAIL), "mobile_flow_otp": OTP})
    zulip_error(response, 400, "Bad JSON web token")


def test_refused_account_in_the_mobile_flow_ends_the_flow(client: Client, user: User) -> None:
    set_active(user, False)
    response = post(client, good(mobile_flow_otp=OTP))
    assert response.status_code == 200
    assert OTP.encode() not in response.content  # the page does not carry the OTP on
