"""The login page: a browser session through the same checks and limits as the API."""

from __future__ import annotations

import importlib
import re

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.auth.exceptions import DirectoryUnavailable
from keyhouse.auth.hashing_gate import HashingOverloaded
from keyhouse.auth.models import LoginAttempt
from keyhouse.realms.models import Realm
from keyhouse.users.actions import set_active
from keyhouse.users.models import User
from tests.conftest import PASSWORD
from tests.ldap_fixtures import configure_ldap
from tests.ldap_server import HAMLET_PASSWORD, Slapd
from tests.web.conftest import csrf_token

login_module = importlib.import_module("keyhouse.web.login")
pipeline_module = importlib.import_module("keyhouse.auth.pipeline")

WRONG = "Not-The-Password-913"
CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)


def sign_in(client: Client, username: str, password: str, **data: str) -> HttpResponse:
    return client.post("/login/", {"username": username, "password": password, **data})


def session_user_id(client: Client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value is not None else None


def attempts() -> list[tuple[str, str, str, int | None]]:
    return [(a.method, a.outcome, a.reason, a.user_id) for a in LoginAttempt.objects.order_by("id")]


# --- The page itself ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login/", "/accounts/login/"])
def test_page_shows_the_realm_and_an_accessible_form(
    client: Client, realm: Realm, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert "<h1>Test Org</h1>" in html
    assert '<link rel="stylesheet" href="/static/keyhouse/keyhouse.css">' in html
    assert '<label for="id_username">Email</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert re.search(
        r'<input id="id_username" name="username" type="email"[^>]*autocomplete="username"', html
    )
    assert re.search(r'<input id="id_password"[^>]*autocomplete="current-password"', html)
    assert 'name="csrfmiddlewaretoken"' in html
    assert "<script" not in html  # works without JavaScript
    assert response["Cache-Control"].startswith("max-age=0")


def test_stylesheet_is_served(client: Client, realm: Realm) -> None:
    response = client.get("/static/keyhouse/keyhouse.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert b":focus-visible" in body


def test_unknown_subdomain_is_a_clear_404_page(
    client: Client, realm: Realm, external_host: str
) -> None:
    response = client.get("/login/", HTTP_HOST=f"nosuchorg.{external_host}")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Organization not found" in html
    assert f"nosuchorg.{external_host}" in html
    assert 'name="password"' not in html


def test_subdomain_realm_gets_its_own_page(
    client: Client, other_realm: Realm, external_host: str
) -> None:
    response = client.get("/login/", HTTP_HOST=f"other.{external_host}")
    assert response.status_code == 200
    assert "<h1>Other Org</h1>" in response.content.decode()


def test_username_field_when_ldap_maps_usernames(
    client: Client, realm: Realm, settings: Settings
) -> None:
    settings.AUTH_LDAP_SERVER_URI = "ldap://ldap.invalid"
    settings.LDAP_APPEND_DOMAIN = "example.com"
    realm.authentication_methods = ["email", "ldap"]
    realm.save()
    html = client.get("/login/").content.decode()
    assert '<label for="id_username">Email or username</label>' in html
    assert re.search(r'name="username" type="text"', html)


def test_password_auth_disabled_says_so(client: Client, realm: Realm, user: User) -> None:
    realm.authentication_methods = []
    realm.save()
    html = client.get("/login/").content.decode()
    assert "Password sign-in is disabled in this organization" in html
    assert 'name="password"' not in html
    response = sign_in(client, user.delivery_email, PASSWORD)
    assert response.status_code == 200
    assert session_user_id(client) is None
    assert attempts() == []


def test_deactivated_realm_says_so_and_signs_nobody_in(
    client: Client, realm: Realm, user: User
) -> None:
    realm.deactivated = True
    realm.save()
    html = client.get("/login/").content.decode()
    assert "This organization has been deactivated." in html
    assert 'name="password"' not in html
    assert (
        "This organization has been deactivated."
        in sign_in(client, user.delivery_email, PASSWORD).content.decode()
    )
    assert session_user_id(client) is None


# --- Signing in -------------------------------------------------------------------


def test_success_starts_a_session_behind_csrf(csrf_client: Client, user: User) -> None:
    token = csrf_token(csrf_client)
    before = csrf_client.cookies.get(django_settings.SESSION_COOKIE_NAME)
    response = sign_in(csrf_client, user.delivery_email, PASSWORD, csrfmiddlewaretoken=token)
    assert response.status_code == 302
    assert response["Location"] == "/account/api-key/"
    assert session_user_id(csrf_client) == user.id
    assert django_settings.SESSION_COOKIE_NAME in response.cookies and before is None
    assert attempts() == [("web", "success", "", user.id)]


def test_post_without_csrf_token_is_refused(csrf_client: Client, user: User) -> None:
    csrf_token(csrf_client)
    response = sign_in(csrf_client, user.delivery_email, PASSWORD)
    assert response.status_code == 403
    assert session_user_id(csrf_client) is None
    assert attempts() == []


def test_email_is_matched_case_insensitively(client: Client, user: User) -> None:
    response = sign_in(client, "  hamlet@EXAMPLE.com ", PASSWORD)
    assert response.status_code == 302
    assert session_user_id(client) == user.id


def test_wrong_password(client: Client, user: User) -> None:
    response = sign_in(client, user.delivery_email, WRONG)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Incorrect email or password." in html
    assert f'value="{user.delivery_email}"' in html  # the email is kept, the password never
    assert WRONG not in html
    assert 'aria-invalid="true"' in html and 'role="alert"' in html
    assert session_user_id(client) is None
    assert attempts() == [("web", "failure", "AUTHENTICATION_FAILED", user.id)]


def test_unknown_account_reads_like_a_wrong_password(client: Client, user: User) -> None:
    html = sign_in(client, "nobody@example.com", PASSWORD).content.decode()
    assert "Incorrect email or password." in html
    assert attempts() == [("web", "failure", "AUTHENTICATION_FAILED", None)]


def test_deactivated_account(client: Client, user: User) -> None:
    set_active(user, False)
    html = sign_in(client, user.delivery_email, PASSWORD).content.decode()
    assert "This account has been deactivated." in html
    assert session_user_id(client) is None
    assert attempts() == [("web", "failure", "USER_DEACTIVATED", user.id)]


def test_deactivated_account_hidden_when_configured(
    client: Client, user: User, settings: Settings
) -> None:
    settings.HIDE_ACCOUNT_STATE = True
    set_active(user, False)
    html = sign_in(client, user.delivery_email, PASSWORD).content.decode()
    assert "Incorrect email or password." in html
    assert "deactivated" not in html
    # The operator still sees the true reason.
    assert attempts() == [("web", "failure", "USER_DEACTIVATED", user.id)]


def test_account_of_another_realm(client: Client, other_user: User, external_host: str) -> None:
    html = sign_in(client, other_user.delivery_email, PASSWORD).content.decode()
    assert "not a member of this organization" in html
    assert session_user_id(client) is None


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("", PASSWORD, "Enter your email and your password."),
        ("hamlet@example.com", "", "Enter your email and your password."),
        ("hamlet", PASSWORD, "Enter a valid email address."),
        ("hamlet@example.com", "x" * 5000, "That email or password is too long."),
        ("hamlet@example.com", "a\x00b", "contains characters that are not allowed"),
    ],
)
def test_malformed_input_is_not_an_attempt(
    client: Client, user: User, username: str, password: str, message: str
) -> None:
    html = sign_in(client, username, password).content.decode()
    assert message in html
    assert session_user_id(client) is None
    assert attempts() == []


def test_rate_limited_with_minutes_to_wait(client: Client, user: User, settings: Settings) -> None:
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "authenticate_by_username": [(1800, 2)],
    }
    for _ in range(2):
        assert sign_in(client, user.delivery_email, WRONG).status_code == 200
    response = sign_in(client, user.delivery_email, PASSWORD)  # even the right password
    assert response.status_code == 429
    assert (
        "Too many sign-in attempts. Wait 30 minutes, then try again." in response.content.decode()
    )
    assert session_user_id(client) is None
    assert [a[1] for a in attempts()] == ["failure", "failure", "rate_limited"]
    assert attempts()[-1][2] == "RATE_LIMIT_HIT"


def test_rate_limit_message_rounds_up_to_whole_minutes() -> None:
    assert login_module.rate_limited_message(1.0).startswith(
        "Too many sign-in attempts. Wait 1 minute,"
    )
    assert "Wait 2 minutes" in login_module.rate_limited_message(61.0)


@pytest.mark.parametrize(
    ("exc", "status", "message", "outcome"),
    [
        (HashingOverloaded(1.0), 503, "The server is busy right now.", "overloaded"),
        (
            DirectoryUnavailable(),
            503,
            "The sign-in directory cannot be reached right now.",
            "failure",
        ),
    ],
)
def test_server_side_trouble_is_explained(
    client: Client,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    exc: Exception,
    status: int,
    message: str,
    outcome: str,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(pipeline_module, "authenticate_attempt", refuse)
    response = sign_in(client, user.delivery_email, PASSWORD)
    assert response.status_code == status
    assert message in response.content.decode()
    assert [a[1] for a in attempts()] == [outcome]


# --- Where a sign-in leads ------------------------------------------------------------


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/account/api-key/?tab=1", "/account/api-key/?tab=1"),
        ("/admin/", "/admin/"),
        ("https://evil.example/", "/account/api-key/"),
        ("//evil.example/path", "/account/api-key/"),
        ("/\\evil.example/path", "/account/api-key/"),
        ("http://testserver/admin/", "/account/api-key/"),  # absolute, even to this host
        ("javascript:alert(1)", "/account/api-key/"),
        ("", "/account/api-key/"),
    ],
)
def test_next_only_for_local_paths(
    client: Client, user: User, next_url: str, expected: str
) -> None:
    page = client.get("/login/", {"next": next_url}).content.decode()
    if expected != "/account/api-key/":
        assert f'name="next" value="{next_url}"' in page
    response = sign_in(client, user.delivery_email, PASSWORD, next=next_url)
    assert response.status_code == 302
    assert response["Location"] == expected


def test_signed_in_visitor_is_sent_on(client: Client, user: User) -> None:
    client.force_login(user)
    response = client.get("/login/")
    assert response.status_code == 302
    assert response["Location"] == "/account/api-key/"


def test_web_sign_in_sends_the_login_email(client: Client, old_user: User) -> None:
    client.post(
        "/login/",
        {"username": old_user.delivery_email, "password": PASSWORD},
        HTTP_USER_AGENT=CHROME_ON_WINDOWS,
    )
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [old_user.delivery_email]
    assert "Chrome on Windows" in mail.outbox[0].body


def test_failed_sign_in_sends_no_email(client: Client, old_user: User) -> None:
    sign_in(client, old_user.delivery_email, WRONG)
    assert mail.outbox == []


# --- Signing out ----------------------------------------------------------------------


def test_logout_needs_a_post(csrf_client: Client, user: User) -> None:
    csrf_client.force_login(user)
    page = csrf_client.get("/accounts/logout/")
    assert page.status_code == 200
    assert session_user_id(csrf_client) == user.id  # a GET (a link, an image) signs nobody out
    assert "You are signed in as Hamlet@Example.com." in page.content.decode()
    refused = csrf_client.post("/accounts/logout/")
    assert refused.status_code == 403
    assert session_user_id(csrf_client) == user.id
    token = str(page.context["csrf_token"])
    response = csrf_client.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert session_user_id(csrf_client) is None
    follow = csrf_client.get("/login/")
    assert "You have signed out." in follow.content.decode()


# --- LDAP: usernames, through a real directory ---------------------------------------------


def test_ldap_username_sign_in(client: Client, settings: Settings, slapd: Slapd, db: None) -> None:
    """With LDAP_APPEND_DOMAIN, the page takes the bare uid, as fetch_api_key does."""
    configure_ldap(settings, slapd, "append_domain")
    Realm.objects.create(subdomain="", name="Directory Org", authentication_methods=["ldap"])
    assert "Email or username" in client.get("/login/").content.decode()
    wrong = sign_in(client, "hamlet", "not-the-ldap-password")
    assert "Incorrect username or password." in wrong.content.decode()
    response = sign_in(client, "hamlet", HAMLET_PASSWORD)
    assert response.status_code == 302
    user = User.objects.get(delivery_email="hamlet@example.com")
    assert session_user_id(client) == user.id
    assert [a[:2] for a in attempts()] == [("web", "failure"), ("web", "success")]
