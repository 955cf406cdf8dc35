"""The API-key page and Zulip's ``POST /json/fetch_api_key`` (§1.9, JSONFetchAPIKeyTest).

A session alone must never reveal the key: both re-check the password, through
the login rate limits, before they show it.
"""

from __future__ import annotations

import importlib
import time

import pytest
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.auth.models import LoginAttempt
from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from tests.api.helpers import json_body
from tests.conftest import PASSWORD, basic_auth
from tests.ldap_fixtures import configure_ldap
from tests.ldap_server import HAMLET_PASSWORD, Slapd
from tests.web.conftest import csrf_token

json_view_module = importlib.import_module("keyhouse.api.views.json_fetch_api_key")
page_module = importlib.import_module("keyhouse.web.api_key_page")

PAGE = "/account/api-key/"
ZULIPRC = "/account/api-key/zuliprc"
REGENERATE = "/account/api-key/regenerate"
JSON_URL = "/json/fetch_api_key"
WRONG = "Not-The-Password-913"


def username_limit(settings: Settings, attempts: int) -> None:
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "authenticate_by_username": [(1800, attempts)],
    }


def attempts() -> list[tuple[str, str, str, int | None]]:
    return [(a.method, a.outcome, a.reason, a.user_id) for a in LoginAttempt.objects.order_by("id")]


@pytest.fixture
def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def unlock(client: Client, password: str = PASSWORD) -> HttpResponse:
    return client.post(PAGE, {"password": password})


# --- The page ------------------------------------------------------------------------


def test_signed_out_visitors_go_to_the_login_page(client: Client, user: User) -> None:
    assert client.get(PAGE)["Location"] == "/login/?next=%2Faccount%2Fapi-key%2F"
    for url in (ZULIPRC, REGENERATE):
        response = client.post(url)
        assert response.status_code == 302
        assert response["Location"] == "/login/"  # not back to a POST-only URL


def test_session_of_another_realm_does_not_count(
    client: Client, realm: Realm, other_user: User
) -> None:
    client.force_login(other_user)
    response = client.get(PAGE)  # on the root realm's host
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_key_is_hidden_until_the_password_is_entered(signed_in: Client, user: User) -> None:
    response = signed_in.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert user.api_key not in html
    assert "Signed in as Hamlet@Example.com" in html
    assert 'autocomplete="current-password"' in html
    assert response["Cache-Control"].startswith("max-age=0")


def test_wrong_password_reveals_nothing(signed_in: Client, user: User) -> None:
    response = unlock(signed_in, WRONG)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Password is incorrect." in html
    assert user.api_key not in html
    assert attempts() == [("reauth", "failure", "BAD_REQUEST", user.id)]


def test_right_password_shows_the_key(signed_in: Client, user: User) -> None:
    response = unlock(signed_in)
    assert response.status_code == 302
    assert response["Location"] == PAGE
    html = signed_in.get(PAGE).content.decode()
    assert f'value="{user.api_key}"' in html
    assert attempts() == [("reauth", "success", "", user.id)]


def test_reentering_the_password_is_rate_limited(
    signed_in: Client, user: User, settings: Settings
) -> None:
    username_limit(settings, 2)
    for _ in range(2):
        unlock(signed_in, WRONG)
    response = unlock(signed_in)  # even the right password
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many sign-in attempts. Wait 30 minutes" in html
    assert user.api_key not in html
    assert attempts()[-1][:3] == ("reauth", "rate_limited", "RATE_LIMIT_HIT")


def test_unlock_lasts_a_few_minutes(
    signed_in: Client, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    unlock(signed_in)
    later = time.time() + page_module.REAUTH_SECONDS + 1
    monkeypatch.setattr(page_module.time, "time", lambda: later)
    assert user.api_key not in signed_in.get(PAGE).content.decode()
    response = signed_in.post(ZULIPRC)
    assert response.status_code == 302
    assert user.api_key not in signed_in.get(PAGE).content.decode()


def test_realm_without_passwords_trusts_the_session_as_zulip_does(
    signed_in: Client, user: User, realm: Realm
) -> None:
    realm.authentication_methods = []
    realm.save()
    html = signed_in.get(PAGE).content.decode()
    assert 'name="password"' not in html
    assert unlock(signed_in, "").status_code == 302
    assert user.api_key in signed_in.get(PAGE).content.decode()
    assert attempts() == []  # nothing was authenticated


def test_signing_in_on_the_web_then_unlocking(client: Client, user: User) -> None:
    """The whole journey through the login page, as a browser makes it."""
    client.post("/login/", {"username": user.delivery_email, "password": PASSWORD})
    assert unlock(client).status_code == 302
    assert user.api_key in client.get(PAGE).content.decode()


# --- zuliprc -----------------------------------------------------------------------------


def test_zuliprc_download(signed_in: Client, user: User) -> None:
    unlock(signed_in)
    response = signed_in.post(ZULIPRC)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="zuliprc"'
    assert response["Cache-Control"].startswith("max-age=0")
    assert response.content.decode() == (
        f"[api]\nemail=Hamlet@Example.com\nkey={user.api_key}\nsite=http://testserver\n"
    )


def test_zuliprc_names_the_host_the_user_reached(
    client: Client, other_user: User, external_host: str
) -> None:
    host = f"other.{external_host}"
    client.force_login(other_user)
    client.post(PAGE, {"password": PASSWORD}, HTTP_HOST=host)
    body = client.post(ZULIPRC, HTTP_HOST=host).content.decode()
    assert body.endswith(f"site=http://{host}\n")


def test_zuliprc_needs_the_password_first(signed_in: Client, user: User) -> None:
    response = signed_in.post(ZULIPRC)
    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert "enter your password again" in signed_in.get(PAGE).content.decode()


def test_zuliprc_is_not_a_get(signed_in: Client, user: User) -> None:
    unlock(signed_in)
    assert signed_in.get(ZULIPRC).status_code == 405


# --- Regenerate ----------------------------------------------------------------------


def test_regenerate_replaces_the_key_everywhere(signed_in: Client, user: User) -> None:
    old = user.api_key
    assert (
        signed_in.get("/api/v1/users/me", **basic_auth(user.delivery_email, old)).status_code == 200
    )
    unlock(signed_in)
    response = signed_in.post(REGENERATE)
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.api_key != old
    html = signed_in.get(PAGE).content.decode()
    assert "Your API key has been regenerated." in html
    assert user.api_key in html and old not in html
    refused = signed_in.get("/api/v1/users/me", **basic_auth(user.delivery_email, old))
    assert refused.status_code == 401
    assert refused.json()["msg"] == "Invalid API key"
    accepted = signed_in.get("/api/v1/users/me", **basic_auth(user.delivery_email, user.api_key))
    assert accepted.status_code == 200


def test_regenerate_needs_the_password_first(signed_in: Client, user: User) -> None:
    old = user.api_key
    assert signed_in.post(REGENERATE).status_code == 302
    user.refresh_from_db()
    assert user.api_key == old


def test_every_post_needs_the_csrf_token(csrf_client: Client, user: User) -> None:
    csrf_client.force_login(user)
    old = user.api_key
    for url, data in ((PAGE, {"password": PASSWORD}), (ZULIPRC, {}), (REGENERATE, {})):
        assert csrf_client.post(url, data).status_code == 403, url
    user.refresh_from_db()
    assert user.api_key == old
    assert attempts() == []
    token = csrf_token(csrf_client, PAGE)
    assert (
        csrf_client.post(PAGE, {"password": PASSWORD, "csrfmiddlewaretoken": token}).status_code
        == 302
    )
    assert csrf_client.post(REGENERATE, {"csrfmiddlewaretoken": token}).status_code == 302
    user.refresh_from_db()
    assert user.api_key != old


# --- POST /json/fetch_api_key (Zulip's JSONFetchAPIKeyTest) ----------------------------


def test_json_success(signed_in: Client, user: User) -> None:
    body = json_body(signed_in.post(JSON_URL, {"password": PASSWORD}), 200)
    assert body == {
        "result": "success",
        "msg": "",
        "api_key": user.api_key,
        "email": "Hamlet@Example.com",
    }
    assert attempts() == [("reauth", "success", "", user.id)]
    assert mail.outbox == []  # not a new login: the session already was one


def test_json_not_logged_in(client: Client, user: User) -> None:
    response = client.post(JSON_URL, {"password": PASSWORD})
    assert json_body(response, 401) == {
        "result": "error",
        "msg": "Not logged in: API authentication or user session required",
        "code": "UNAUTHORIZED",
    }
    assert response["WWW-Authenticate"] == 'Session realm="zulip"'
    assert attempts() == []


def test_json_wrong_password(signed_in: Client, user: User) -> None:
    body = json_body(signed_in.post(JSON_URL, {"password": WRONG}), 400)
    assert body == {"result": "error", "msg": "Password is incorrect.", "code": "BAD_REQUEST"}


def test_json_missing_password_is_an_empty_one(signed_in: Client, user: User) -> None:
    body = json_body(signed_in.post(JSON_URL), 400)
    assert body["msg"] == "Password is incorrect."


def test_json_invalid_subdomain(
    signed_in: Client, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(json_view_module, "realm_for_request", lambda request: None)
    body = json_body(signed_in.post(JSON_URL, {"password": PASSWORD}), 400)
    assert body == {"result": "error", "msg": "Invalid subdomain", "code": "BAD_REQUEST"}


def test_json_rate_limited(signed_in: Client, user: User, settings: Settings) -> None:
    username_limit(settings, 1)
    signed_in.post(JSON_URL, {"password": WRONG})
    body = json_body(signed_in.post(JSON_URL, {"password": PASSWORD}), 429)
    assert body["code"] == "RATE_LIMIT_HIT"
    assert "api_key" not in body


def test_json_session_on_the_wrong_subdomain(
    client: Client, other_user: User, external_host: str
) -> None:
    client.force_login(other_user)
    body = json_body(client.post(JSON_URL, {"password": PASSWORD}, HTTP_HOST=external_host), 400)
    assert body == {
        "result": "error",
        "msg": "Account is not associated with this subdomain",
        "code": "BAD_REQUEST",
    }


def test_json_deactivated_realm(signed_in: Client, user: User, realm: Realm) -> None:
    realm.deactivated = True
    realm.save()
    body = json_body(signed_in.post(JSON_URL, {"password": PASSWORD}), 401)
    assert body == {
        "result": "error",
        "msg": "This organization has been deactivated",
        "code": "REALM_DEACTIVATED",
    }


def test_json_is_csrf_protected(csrf_client: Client, user: User) -> None:
    csrf_client.force_login(user)
    response = csrf_client.post(JSON_URL, {"password": PASSWORD})
    body = json_body(response, 403)
    assert body["code"] == "CSRF_FAILED"
    assert body["msg"].startswith("CSRF error: ")
    assert "api_key" not in body
    assert attempts() == []
    token = csrf_token(csrf_client, PAGE)
    ok = csrf_client.post(JSON_URL, {"password": PASSWORD}, HTTP_X_CSRFTOKEN=token)
    assert json_body(ok, 200)["api_key"] == user.api_key


def test_json_only_post(signed_in: Client, user: User) -> None:
    body = json_body(signed_in.get(JSON_URL), 405)
    assert body == {"result": "error", "msg": "Method Not Allowed", "allowed_methods": ["POST"]}


def test_ldap_user_reenters_the_directory_password(
    client: Client, settings: Settings, slapd: Slapd, db: None
) -> None:
    """An LDAP account has no local password: the directory's is the one to re-enter."""
    configure_ldap(settings, slapd, "append_domain")
    Realm.objects.create(subdomain="", name="Directory Org", authentication_methods=["ldap"])
    client.post("/login/", {"username": "hamlet", "password": HAMLET_PASSWORD})
    user = User.objects.get(delivery_email="hamlet@example.com")
    assert not user.has_usable_password()
    assert "Password is incorrect." in unlock(client, "wrong-ldap-password").content.decode()
    assert unlock(client, HAMLET_PASSWORD).status_code == 302
    assert user.api_key in client.get(PAGE).content.decode()
    body = json_body(client.post(JSON_URL, {"password": HAMLET_PASSWORD}), 200)
    assert body["api_key"] == user.api_key
