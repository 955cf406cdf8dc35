"""Sign-in with GitHub and Google against a LOCAL STAND-IN of their endpoints (standin.py).

GitHub and Google cannot be reached from these machines: every test here runs
keyhouse's real flow (social-core's authorize URL, code exchange, API calls over
real HTTP) against a stand-in HTTP server on 127.0.0.1 that answers as their APIs do.
Also GitHub's email-choice page (Zulip's social_auth_select_email), at the end.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from tests.sso.standin import StandIn, standin  # noqa: F401  (fixture)
from tests.sso.test_oidc import OTP, alice, attempts  # noqa: F401  (fixture)
from tests.web.test_mobile_flow import decrypt


@pytest.fixture
def providers(
    settings: Settings,
    standin: StandIn,  # noqa: F811
    realm: Realm,
) -> StandIn:
    settings.SOCIAL_AUTH_GITHUB_KEY = "gh-id"
    settings.SOCIAL_AUTH_GITHUB_SECRET = "gh-secret"
    settings.SOCIAL_AUTH_GITHUB_AUTHORIZATION_URL = f"{standin.url}/login/oauth/authorize"
    settings.SOCIAL_AUTH_GITHUB_ACCESS_TOKEN_URL = f"{standin.url}/login/oauth/access_token"
    settings.SOCIAL_AUTH_GITHUB_API_URL = f"{standin.url}/"
    settings.SOCIAL_AUTH_GOOGLE_KEY = "g-id"
    settings.SOCIAL_AUTH_GOOGLE_SECRET = "g-secret"
    settings.SOCIAL_AUTH_GOOGLE_AUTHORIZATION_URL = f"{standin.url}/o/oauth2/auth"
    settings.SOCIAL_AUTH_GOOGLE_ACCESS_TOKEN_URL = f"{standin.url}/o/oauth2/token"
    settings.SOCIAL_AUTH_GOOGLE_USERINFO_URL = f"{standin.url}/userinfo"
    realm.authentication_methods = ["email", "github", "google"]
    realm.save()
    standin.org_members.clear()
    standin.team_members.clear()
    return standin


def github_user(*emails: tuple[str, bool, bool]) -> dict[str, Any]:
    return {
        "login": "octo",
        "id": 1,
        "name": "Octo Cat",
        "email": None,
        "emails": [{"email": e, "verified": v, "primary": p} for e, v, p in emails],
    }


def google_user(email: str, verified: bool) -> dict[str, Any]:
    return {"sub": "1", "email": email, "email_verified": verified, "name": "Goo Gle"}


def sign_in(client: Client, backend: str, query: str = "") -> Any:
    """Start, let the stand-in's authorize endpoint send us back, and complete.

    The way back is a redirect, or (Apple's ``form_post``) a form the browser POSTs.
    """
    start = client.get(f"/accounts/login/social/{backend}{query}")
    assert start.status_code == 302, start.content
    back = httpx.get(start["Location"], follow_redirects=False)
    if back.status_code == 200:
        form = back.json()
        path = urlsplit(form["action"]).path
        assert path == f"/complete/{backend}/"
        return client.post(path, form["fields"])
    assert back.status_code == 302
    parts = urlsplit(back.headers["Location"])
    assert parts.path == f"/complete/{backend}/"
    return client.get(parts.path, dict(parse_qsl(parts.query)))


def test_server_settings_lists_them_in_zulips_order(client: Client, providers: StandIn) -> None:
    """Stand-in not contacted: the listing is Zulip's dicts, sort_order descending."""
    body = client.get("/api/v1/server_settings").json()
    assert body["external_authentication_methods"] == [
        {
            "name": "google",
            "display_name": "Google",
            "display_icon": "/static/images/authentication_backends/googl_e-icon.png",
            "login_url": "/accounts/login/social/google",
            "signup_url": "/accounts/register/social/google",
        },
        {
            "name": "github",
            "display_name": "GitHub",
            "display_icon": "/static/images/authentication_backends/github-icon.png",
            "login_url": "/accounts/login/social/github",
            "signup_url": "/accounts/register/social/github",
        },
    ]
    assert body["authentication_methods"]["github"] is True
    assert body["authentication_methods"]["google"] is True


def test_not_listed_unless_configured_and_enabled(
    client: Client, providers: StandIn, settings: Settings, realm: Realm
) -> None:
    """Stand-in not contacted: no key, or the realm not enabling it, hides the method."""
    settings.SOCIAL_AUTH_GOOGLE_KEY = ""
    realm.authentication_methods = ["email", "google"]
    realm.save()
    body = client.get("/api/v1/server_settings").json()
    assert body["external_authentication_methods"] == []
    assert body["authentication_methods"]["github"] is False
    assert body["authentication_methods"]["google"] is False


def test_github_web_sign_in_with_the_primary_verified_email(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local GitHub stand-in: the primary verified address signs in."""
    providers.next_user = github_user(
        ("alice@example.com", True, True), ("other@example.com", True, False)
    )
    response = sign_in(client, "github")
    assert response.status_code == 302, response.content
    assert int(client.session["_auth_user_id"]) == alice.id
    assert attempts() == [("github", "success", "")]


def test_github_unverified_only_is_refused(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local GitHub stand-in: no verified address, no sign-in."""
    providers.next_user = github_user(("alice@example.com", False, True))
    response = sign_in(client, "github")
    assert "has not verified your email address" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert attempts() == [("github", "failure", "EMAIL_NOT_VERIFIED")]


def test_github_secondary_verified_email_finds_the_account(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local GitHub stand-in: the account's address is a non-primary verified one."""
    providers.next_user = github_user(
        ("octo@elsewhere.test", True, True), ("alice@example.com", True, False)
    )
    response = sign_in(client, "github")
    assert response.status_code == 302, response.content
    assert int(client.session["_auth_user_id"]) == alice.id


def test_github_org_restriction_refuses_non_members(
    client: Client,
    providers: StandIn,
    settings: Settings,
    alice: User,  # noqa: F811
) -> None:
    """Against the local GitHub stand-in's org membership API (404 for a non-member)."""
    settings.SOCIAL_AUTH_GITHUB_ORG_NAME = "acme"
    providers.next_user = github_user(("alice@example.com", True, True))
    response = sign_in(client, "github")
    assert "not member of required organization" in response.content.decode()
    assert attempts() == [("github", "failure", "IDP_POLICY")]
    providers.org_members["acme"] = {"octo"}
    assert sign_in(client, "github").status_code == 302


def test_github_team_restriction(
    client: Client,
    providers: StandIn,
    settings: Settings,
    alice: User,  # noqa: F811
) -> None:
    """Against the local GitHub stand-in's team membership API."""
    settings.SOCIAL_AUTH_GITHUB_TEAM_ID = "42"
    providers.next_user = github_user(("alice@example.com", True, True))
    assert "not member of required team" in sign_in(client, "github").content.decode()
    providers.team_members["42"] = {"octo"}
    assert sign_in(client, "github").status_code == 302


def test_google_web_sign_in(client: Client, providers: StandIn, alice: User) -> None:  # noqa: F811
    """Against the local Google stand-in (token + userinfo)."""
    providers.next_user = google_user("alice@example.com", True)
    response = sign_in(client, "google")
    assert response.status_code == 302, response.content
    assert int(client.session["_auth_user_id"]) == alice.id
    assert attempts() == [("google", "success", "")]


def test_google_unverified_is_refused(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local Google stand-in: email_verified false."""
    providers.next_user = google_user("alice@example.com", False)
    response = sign_in(client, "google")
    assert "has not verified your email address" in response.content.decode()
    assert attempts() == [("google", "failure", "EMAIL_NOT_VERIFIED")]


def test_github_mobile_flow_end_to_end(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local GitHub stand-in: zulip:// with an API key that works."""
    providers.next_user = github_user(("alice@example.com", True, True))
    response = sign_in(client, "github", f"?mobile_flow_otp={OTP}")
    assert response.status_code == 302
    assert response["Location"].startswith("zulip://login?")
    params = dict(parse_qsl(urlsplit(response["Location"]).query))
    api_key = decrypt(params["otp_encrypted_api_key"], OTP)
    me = Client().get(
        "/api/v1/users/me",
        HTTP_AUTHORIZATION=httpx.BasicAuth("alice@example.com", api_key)._auth_header,
    )
    assert me.status_code == 200, me.content


def test_github_before_oidc_at_equal_sort_order(
    client: Client, providers: StandIn, settings: Settings, realm: Realm
) -> None:
    """Stand-in not contacted. Zulip lists GitHub (100) before OIDC (100): defined first."""
    from keyhouse.sso import oidc  # noqa: F401  (imported first would not change the order)

    settings.SOCIAL_AUTH_OIDC_ENABLED_IDPS = {
        "testidp": {"oidc_url": "http://127.0.0.1:9", "client_id": "x", "secret": "y"}
    }
    realm.authentication_methods = ["github", "google", "oidc"]
    realm.save()
    body = client.get("/api/v1/server_settings").json()
    names = [m["name"] for m in body["external_authentication_methods"]]
    assert names == ["google", "github", "oidc:oidc"]  # a single IdP is "oidc:oidc"


def test_login_page_shows_their_buttons(client: Client, providers: StandIn) -> None:
    """Stand-in not contacted: the login page's buttons, Google first."""
    html = client.get("/login/").content.decode()
    assert 'href="/accounts/login/social/github"' in html
    assert html.index("/accounts/login/social/google") < html.index("/accounts/login/social/github")


# --- GitHub's email-choice page (Zulip's social_auth_select_email) -----------


def choice_page(response: Any) -> tuple[str, list[str]]:
    """The choice page's state and the addresses it offers, in order."""
    assert response.status_code == 200, response.content
    html = response.content.decode()
    assert "Choose the email address to sign in with" in html
    states = set(re.findall(r'name="state" value="([^"]+)"', html))
    assert len(states) == 1
    return states.pop(), re.findall(r'name="email" value="([^"]+)"', html)


@pytest.fixture
def alice_two(realm: Realm) -> User:
    from keyhouse.users.actions import create_user

    return create_user(realm, "alice@work.example", "Alice at work")


def test_github_several_accounts_show_the_choice_and_sign_in_with_the_chosen(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
    alice_two: User,
) -> None:
    """Against the local GitHub stand-in: two verified addresses with accounts, the user picks."""
    providers.next_user = github_user(
        ("alice@example.com", True, True),
        ("alice@work.example", True, False),
        ("unverified@example.com", False, False),
    )
    page = sign_in(client, "github")
    state, offered = choice_page(page)
    assert offered == ["alice@example.com", "alice@work.example"]  # primary first
    assert "unverified@example.com" not in page.content.decode()
    assert "also has unverified addresses" in page.content.decode()
    assert attempts() == []  # no decision yet
    response = client.post("/complete/github/", {"state": state, "email": "alice@work.example"})
    assert response.status_code == 302, response.content
    assert int(client.session["_auth_user_id"]) == alice_two.id
    assert attempts() == [("github", "success", "")]


def test_github_choice_refuses_an_address_not_in_the_verified_list(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
    alice_two: User,
    user: User,
) -> None:
    """Against the local GitHub stand-in: a forged POST naming another address is refused."""
    providers.next_user = github_user(
        ("alice@example.com", True, True), ("alice@work.example", True, False)
    )
    state, _ = choice_page(sign_in(client, "github"))
    response = client.post("/complete/github/", {"state": state, "email": user.delivery_email})
    assert "has not verified your email address" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert attempts() == [("github", "failure", "EMAIL_NOT_VERIFIED")]


def test_github_choice_is_single_use_and_bound_to_the_browser(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
    alice_two: User,
) -> None:
    """Against the local GitHub stand-in: another browser, or a second post, is refused."""
    providers.next_user = github_user(
        ("alice@example.com", True, True), ("alice@work.example", True, False)
    )
    state, _ = choice_page(sign_in(client, "github"))
    elsewhere = Client().post("/complete/github/", {"state": state, "email": "alice@example.com"})
    assert "expired or was already used" in elsewhere.content.decode()
    # The other browser's attempt used the step up: this browser must start again too.
    again = client.post("/complete/github/", {"state": state, "email": "alice@example.com"})
    assert "expired or was already used" in again.content.decode()
    assert "_auth_user_id" not in client.session
    state, _ = choice_page(sign_in(client, "github"))
    chosen = client.post("/complete/github/", {"state": state, "email": "alice@example.com"})
    assert chosen.status_code == 302, chosen.content
    replay = client.post("/complete/github/", {"state": state, "email": "alice@example.com"})
    assert "expired or was already used" in replay.content.decode()


def test_github_choice_keeps_the_mobile_flow(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
    alice_two: User,
) -> None:
    """Against the local GitHub stand-in: the OTP survives the choice; the app gets its key."""
    providers.next_user = github_user(
        ("alice@example.com", True, True), ("alice@work.example", True, False)
    )
    state, _ = choice_page(sign_in(client, "github", f"?mobile_flow_otp={OTP}"))
    assert OTP not in client.get("/login/").content.decode()  # never in the page or session
    response = client.post("/complete/github/", {"state": state, "email": "alice@work.example"})
    assert response.status_code == 302
    assert response["Location"].startswith("zulip://login?")
    params = dict(parse_qsl(urlsplit(response["Location"]).query))
    assert params["email"] == "alice@work.example"
    api_key = decrypt(params["otp_encrypted_api_key"], OTP)
    me = Client().get(
        "/api/v1/users/me",
        HTTP_AUTHORIZATION=httpx.BasicAuth("alice@work.example", api_key)._auth_header,
    )
    assert me.status_code == 200, me.content


def test_github_signup_shows_the_choice_even_with_one_account(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local GitHub stand-in: Zulip's rule, signup always asks (one account or not)."""
    providers.next_user = github_user(
        ("alice@example.com", True, True), ("new@example.com", True, False)
    )
    start = client.get("/accounts/register/social/github")
    back = httpx.get(start["Location"], follow_redirects=False)
    parts = urlsplit(back.headers["Location"])
    _, offered = choice_page(client.get(parts.path, dict(parse_qsl(parts.query))))
    assert offered == ["alice@example.com", "new@example.com"]


def test_github_no_account_among_several_shows_the_choice(
    client: Client, providers: StandIn, realm: Realm
) -> None:
    """Against the local GitHub stand-in: none has an account, so the user says which is theirs."""
    providers.next_user = github_user(("a@example.com", True, True), ("b@example.com", True, False))
    page = sign_in(client, "github")
    _, offered = choice_page(page)
    assert offered == ["a@example.com", "b@example.com"]
    assert page.content.decode().count("No account in this organization") == 2


@pytest.mark.parametrize("emails", [1, 2], ids=["straight", "through-the-choice"])
def test_github_answer_for_another_organization_is_refused(
    client: Client,
    providers: StandIn,
    other_realm: Realm,
    emails: int,
) -> None:
    """Against the local GitHub stand-in: started on other.example.org, answered on the root
    host: never signed in across realms, nor shown the other realm's choice page."""
    from keyhouse.users.actions import create_user

    other_realm.authentication_methods = ["github"]
    other_realm.save()
    create_user(other_realm, "alice@example.com", "Alice")
    create_user(other_realm, "alice@work.example", "Alice at work")  # two: the choice
    addresses = [("alice@example.com", True, True), ("alice@work.example", True, False)]
    providers.next_user = github_user(*addresses[:emails])
    start = client.get("/accounts/login/social/github", HTTP_HOST="other.example.org")
    back = httpx.get(start["Location"], follow_redirects=False)
    parts = urlsplit(back.headers["Location"])
    response = client.get(parts.path, dict(parse_qsl(parts.query)), HTTP_HOST="example.org")
    assert "not for this organization" in response.content.decode()
    assert "Choose the email address" not in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert attempts() == [("sso", "failure", "SSO_WRONG_REALM")]
