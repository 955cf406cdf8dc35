"""Remote-user SSO (web/remote_user.py), as Zulip's TestZulipRemoteUserBackend checks it.

Django's test client stands in for the proxy here: its REMOTE_ADDR is 127.0.0.1,
listed in TRUSTED_PROXIES, and the header is set per request. A request from any
other address is a client that reached keyhouse directly. tests/proxy/ runs the
same flows through a real nginx doing ``auth_basic``.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.auth.models import LoginAttempt
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user, set_active
from keyhouse.users.models import User
from tests.conftest import PASSWORD, Cli, age
from tests.web.test_desktop_flow import decrypt_token, desktop_data, redeem, session_user_id
from tests.web.test_mobile_flow import BOTH_OTPS, INVALID_OTP, OTP, decrypt, json_error
from tests.web.test_mobile_flow import zulip_redirect as zulip_redirect_query

SSO = "/accounts/login/sso/"
START = "/accounts/login/start/sso/"
HEADER = "HTTP_X_REMOTE_USER"
STRANGER = "203.0.113.9"  # not in TRUSTED_PROXIES
LISTED = {
    "name": "remoteuser",
    "display_name": "SSO",
    "display_icon": None,
    "login_url": "/accounts/login/start/sso/",
    "signup_url": "/accounts/login/start/sso/",
}


@pytest.fixture(autouse=True)
def remote_user_on(settings: Settings, realm: Realm) -> Realm:
    """The server has the backend, the test client is the trusted proxy, the realm enables it."""
    settings.REMOTE_USER_AUTH = True
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    realm.authentication_methods = ["email", "remoteuser"]
    realm.save()
    return realm


def sso(client: Client, remote_user: str | None, query: str = "", **extra: str) -> HttpResponse:
    if remote_user is not None:
        extra[HEADER] = remote_user
    return client.get(SSO + (f"?{query}" if query else ""), **extra)


def attempts() -> list[tuple[str, str, str, str | None]]:
    return [
        (a.method, a.outcome, a.reason, a.client_ip)
        for a in LoginAttempt.objects.order_by("timestamp", "pk")
    ]


def config_error(response: HttpResponse, message: str) -> None:
    assert response.status_code == 403, response.content
    html = response.content.decode()
    assert "Configuration error" in html
    assert message in html


# --- listing: server_settings and the login page ---------------------------------------


def test_server_settings_lists_it_as_zulip_does(client: Client) -> None:
    body = client.get("/api/v1/server_settings").json()
    assert body["authentication_methods"]["remoteuser"] is True
    assert body["external_authentication_methods"] == [LISTED]
    assert list(body["external_authentication_methods"][0]) == list(LISTED)  # Zulip's key order


@pytest.mark.parametrize("server_has_it", [True, False])
def test_not_listed_unless_configured_and_enabled(
    client: Client, settings: Settings, realm: Realm, server_has_it: bool
) -> None:
    settings.REMOTE_USER_AUTH = server_has_it
    if server_has_it:
        realm.authentication_methods = ["email"]
        realm.save()
    body = client.get("/api/v1/server_settings").json()
    assert body["authentication_methods"]["remoteuser"] is False
    assert body["external_authentication_methods"] == []


def test_listed_first_by_sort_order(client: Client, settings: Settings, realm: Realm) -> None:
    """Zulip's sort: RemoteUser (9000) before Google (150) and GitHub (100)."""
    settings.SOCIAL_AUTH_GITHUB_KEY, settings.SOCIAL_AUTH_GITHUB_SECRET = "gh-id", "gh-secret"
    settings.SOCIAL_AUTH_GOOGLE_KEY, settings.SOCIAL_AUTH_GOOGLE_SECRET = "g-id", "g-secret"
    realm.authentication_methods = ["github", "google", "remoteuser"]
    realm.save()
    body = client.get("/api/v1/server_settings").json()
    assert [m["name"] for m in body["external_authentication_methods"]] == [
        "remoteuser",
        "google",
        "github",
    ]


def test_login_page_button_carries_the_app_flow(client: Client) -> None:
    html = client.get("/login/", {"mobile_flow_otp": OTP, "next": "/x"}).content.decode()
    assert f'href="/accounts/login/start/sso/?mobile_flow_otp={OTP}&amp;next=%2Fx"' in html


# --- /accounts/login/start/sso/ ------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["", f"mobile_flow_otp={OTP}", f"desktop_flow_otp={OTP}&next=%2Faccount%2Fapi-key%2F"],
)
def test_start_hands_the_query_string_on(client: Client, query: str) -> None:
    response = client.get(START + (f"?{query}" if query else ""))
    assert response.status_code == 302
    assert response["Location"] == SSO + (f"?{query}" if query else "")
    assert not LoginAttempt.objects.exists()


def test_start_checks_the_otps_as_the_login_page(client: Client) -> None:
    assert json_error(client.get(START, {"mobile_flow_otp": "1234"})) == INVALID_OTP
    both = {"mobile_flow_otp": OTP, "desktop_flow_otp": OTP}
    assert json_error(client.get(START, both)) == BOTH_OTPS


# --- /accounts/login/sso/: a browser ---------------------------------------------------------


def test_web_sign_in(client: Client, user: User) -> None:
    age(user)
    response = sso(client, "hamlet@example.com")
    assert response.status_code == 302
    assert response["Location"] == "/account/api-key/"
    assert session_user_id(client) == user.id
    assert attempts() == [("remoteuser", "success", "", "127.0.0.1")]
    assert LoginAttempt.objects.get().user_id == user.id
    assert len(mail.outbox) == 1  # the new-login email


@pytest.mark.parametrize(
    ("remote_user", "domain"),
    [("HAMLET@example.COM", None), ("hamlet", "example.com"), ("Hamlet", "Example.com")],
)
def test_name_to_email(
    client: Client, settings: Settings, user: User, remote_user: str, domain: str | None
) -> None:
    """Case-insensitive, and SSO_APPEND_DOMAIN appends the domain (Zulip's tests)."""
    settings.SSO_APPEND_DOMAIN = domain
    assert sso(client, remote_user).status_code == 302
    assert session_user_id(client) == user.id


def test_next_is_followed_only_on_this_host(client: Client, user: User) -> None:
    assert sso(client, user.delivery_email, "next=/accounts/logout/")["Location"] == (
        "/accounts/logout/"
    )
    client.logout()
    for unsafe in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.get(SSO, {"next": unsafe}, **{HEADER: user.delivery_email})
        assert response["Location"] == "/account/api-key/", unsafe


@pytest.mark.parametrize("remote_user", ["hamlet", "not an email", "a@b@c", "@example.com"])
def test_invalid_email_is_zulips_400(client: Client, user: User, remote_user: str) -> None:
    body = json_error(sso(client, remote_user))
    assert body == {"result": "error", "msg": "Enter a valid email address.", "code": "BAD_REQUEST"}
    assert not LoginAttempt.objects.exists()


def test_otps_are_checked_after_the_email(client: Client, user: User) -> None:
    assert json_error(sso(client, "hamlet@example.com", "mobile_flow_otp=1234")) == INVALID_OTP
    both = f"mobile_flow_otp={OTP}&desktop_flow_otp={OTP}"
    assert json_error(sso(client, "hamlet@example.com", both)) == BOTH_OTPS
    assert json_error(sso(client, "nope", "mobile_flow_otp=1234"))["msg"] == (
        "Enter a valid email address."
    )
    assert session_user_id(client) is None


# --- the apps ------------------------------------------------------------------------------


def test_mobile_flow(client: Client, user: User) -> None:
    age(user)
    response = sso(
        client, "hamlet@example.com", f"mobile_flow_otp={OTP}", HTTP_USER_AGENT="ZulipAndroid"
    )
    query, _ = zulip_redirect_query(response)
    assert [k for k, _ in query] == ["otp_encrypted_api_key", "email", "user_id", "realm"]
    values = dict(query)
    assert decrypt(values["otp_encrypted_api_key"], OTP) == user.api_key
    assert values["email"] == user.delivery_email
    assert values["user_id"] == str(user.id)
    assert values["realm"] == "http://testserver"
    assert session_user_id(client) is None  # no session for the app flow
    assert attempts() == [("remoteuser", "success", "", "127.0.0.1")]
    assert len(mail.outbox) == 1
    assert "Zulip on Android" in mail.outbox[0].body


def test_desktop_flow(client: Client, user: User) -> None:
    response = sso(client, "hamlet@example.com", f"desktop_flow_otp={OTP}")
    token = decrypt_token(desktop_data(response))
    assert session_user_id(client) is None
    assert redeem(client, token).status_code == 302
    assert session_user_id(client) == user.id


# --- refusals: Zulip's pages ---------------------------------------------------------------


def test_unknown_user(client: Client, user: User) -> None:
    response = sso(client, "nobody@example.com")
    assert response.status_code == 200
    assert "No account found for nobody@example.com." in response.content.decode()
    assert session_user_id(client) is None
    assert attempts() == [("remoteuser", "failure", "NO_ACCOUNT", "127.0.0.1")]


def test_user_of_another_realm_has_no_account_here(
    client: Client, user: User, other_realm: Realm
) -> None:
    create_user(other_realm, "othello@example.com", "Othello", password=PASSWORD)
    response = sso(client, "othello@example.com")
    assert "No account found for othello@example.com." in response.content.decode()
    assert attempts() == [("remoteuser", "failure", "NONEXISTENT_SUBDOMAIN", "127.0.0.1")]


def test_deactivated_user(client: Client, user: User) -> None:
    set_active(user, False)
    response = sso(client, "hamlet@example.com", f"mobile_flow_otp={OTP}")
    assert response.status_code == 200
    assert "This account has been deactivated." in response.content.decode()
    assert OTP not in response.content.decode()  # the failed flow is over
    assert attempts() == [("remoteuser", "failure", "USER_DEACTIVATED", "127.0.0.1")]


def test_deactivated_realm(client: Client, user: User, realm: Realm) -> None:
    realm.deactivated = True
    realm.save()
    for name in ("hamlet@example.com", "nobody@example.com"):
        response = sso(client, name)
        assert "This organization has been deactivated." in response.content.decode()
    assert [a[2] for a in attempts()] == ["REALM_DEACTIVATED", "REALM_DEACTIVATED"]


def test_rate_limited_like_any_sign_in(client: Client, user: User) -> None:
    """Zulip's authenticate_by_username: 5 per 30 minutes, then a 429 page."""
    for _ in range(5):
        assert sso(client, "nobody@example.com").status_code == 200
    response = sso(client, "nobody@example.com")
    assert response.status_code == 429
    assert "Too many sign-in attempts." in response.content.decode()
    assert attempts()[-1][1:3] == ("rate_limited", "RATE_LIMIT_HIT")


@pytest.mark.parametrize("server_has_it", [True, False])
def test_disabled_is_zulips_config_error(
    client: Client, settings: Settings, realm: Realm, user: User, server_has_it: bool
) -> None:
    settings.REMOTE_USER_AUTH = server_has_it
    realm.authentication_methods = ["email"]
    realm.save()
    config_error(
        sso(client, "hamlet@example.com"),
        "Authentication via the X-Remote-User header is disabled.",
    )
    assert session_user_id(client) is None
    assert not LoginAttempt.objects.exists()


def test_missing_header_is_zulips_config_error(client: Client, user: User) -> None:
    for empty in (None, "", "  "):
        config_error(sso(client, empty), "The X-Remote-User header is not set.")
    assert not LoginAttempt.objects.exists()


# --- the header from anyone but a trusted proxy --------------------------------------------


@pytest.mark.parametrize(
    "peer_headers",
    [
        {"REMOTE_ADDR": STRANGER},
        # X-Forwarded-For from a stranger is not believed either (auth/client_ip.py).
        {"REMOTE_ADDR": STRANGER, "HTTP_X_FORWARDED_FOR": "127.0.0.1"},
    ],
)
def test_forged_header_is_ignored_and_audited(
    client: Client, user: User, peer_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="keyhouse.web.remote_user"):
        response = sso(client, "hamlet@example.com", **peer_headers)
    config_error(response, "The X-Remote-User header is not set.")
    assert session_user_id(client) is None
    assert attempts() == [("remoteuser", "failure", "REMOTE_USER_UNTRUSTED", STRANGER)]
    entry = LoginAttempt.objects.get()
    assert (entry.username, entry.user_id) == ("hamlet@example.com", user.id)  # whom it named
    assert f"ignored the X-Remote-User header from {STRANGER}" in caplog.text
    assert "hamlet@example.com" not in caplog.text


def test_forged_header_app_flow_gets_nothing(client: Client, user: User) -> None:
    response = sso(client, "hamlet@example.com", f"mobile_flow_otp={OTP}", REMOTE_ADDR=STRANGER)
    config_error(response, "The X-Remote-User header is not set.")
    assert user.api_key not in response.content.decode()
    assert "Location" not in response


def test_forged_headers_spend_no_one_elses_budget(client: Client, user: User) -> None:
    for _ in range(8):
        sso(client, "hamlet@example.com", REMOTE_ADDR=STRANGER)
    data = {"username": "hamlet@example.com", "password": PASSWORD}
    assert client.post("/login/", data).status_code == 302  # not rate limited


def test_another_header_name(client: Client, settings: Settings, user: User) -> None:
    settings.REMOTE_USER_HEADER = "X-Auth-User"
    config_error(sso(client, "hamlet@example.com"), "The X-Auth-User header is not set.")
    assert client.get(SSO, HTTP_X_AUTH_USER="hamlet@example.com").status_code == 302
    assert session_user_id(client) == user.id


def test_trusted_proxy_by_network(client: Client, settings: Settings, user: User) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert sso(client, "hamlet@example.com", REMOTE_ADDR="10.1.2.3").status_code == 302
    client.logout()
    config_error(sso(client, "hamlet@example.com"), "The X-Remote-User header is not set.")


def test_utf8_name_from_the_proxy(client: Client, realm: Realm) -> None:
    """WSGI gives the proxy's bytes as Latin-1; read as UTF-8, the address matches."""
    user = create_user(realm, "alice@bücher.example", "Alice", password=PASSWORD)
    as_wsgi_gives_it = "alice@bücher.example".encode().decode("latin-1")
    assert sso(client, as_wsgi_gives_it).status_code == 302
    assert session_user_id(client) == user.id


def test_realm_auth_methods_cli_takes_it(cli: Cli, realm: Realm) -> None:
    code, out, err = cli(
        "realm", "set-auth-methods", "--subdomain", "", "--auth-methods", "remoteuser,email"
    )
    assert code == 0, err
    assert "email,remoteuser" in out
    realm.refresh_from_db()
    assert realm.authentication_methods == ["email", "remoteuser"]


def test_the_location_of_a_start_is_relative(client: Client) -> None:
    parts = urlsplit(client.get(START, {"next": "/x"})["Location"])
    assert (parts.scheme, parts.netloc, parts.path) == ("", "", SSO)
    assert parse_qsl(parts.query) == [("next", "/x")]
