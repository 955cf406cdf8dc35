"""Sign-in with GitLab, Azure AD and Apple against a LOCAL STAND-IN of their endpoints.

GitLab, Microsoft (login.microsoftonline.com) and Apple (appleid.apple.com) cannot
be reached from these machines: every test here runs keyhouse's real flow —
social-core's authorize URL, the code exchange, the id_token's signature checked
against the keys the stand-in publishes, Apple's client secret signed with our
private key and checked by the stand-in — over real HTTP against the stand-in
(tests/sso/standin.py) on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from tests.sso.standin import StandIn, standin  # noqa: F401  (fixture)
from tests.sso.test_oidc import OTP, alice, attempts  # noqa: F401  (fixture)
from tests.sso.test_social import sign_in
from tests.web.test_mobile_flow import decrypt

APPLE_SERVICES_ID = "com.example.keyhouse.web"


@pytest.fixture(scope="module")
def apple_key() -> tuple[str, str]:
    """Our Sign in with Apple private key (PEM) and the public half Apple would hold."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture
def providers(
    settings: Settings,
    standin: StandIn,  # noqa: F811
    realm: Realm,
    tmp_path: Path,
    apple_key: tuple[str, str],
) -> StandIn:
    gitlab_secret = tmp_path / "gitlab-secret"
    gitlab_secret.write_text("gl-secret\n")
    settings.SOCIAL_AUTH_GITLAB_KEY = "gl-id"
    settings.SOCIAL_AUTH_GITLAB_SECRET_FILE = str(gitlab_secret)
    settings.SOCIAL_AUTH_GITLAB_API_URL = f"{standin.url}/gitlab"
    settings.SOCIAL_AUTH_AZUREAD_OAUTH2_KEY = "az-id"
    settings.SOCIAL_AUTH_AZUREAD_OAUTH2_SECRET = "az-secret"
    settings.SOCIAL_AUTH_AZUREAD_OAUTH2_AUTHORIZATION_URL = f"{standin.url}/common/oauth2/authorize"
    settings.SOCIAL_AUTH_AZUREAD_OAUTH2_ACCESS_TOKEN_URL = f"{standin.url}/common/oauth2/token"
    settings.SOCIAL_AUTH_AZUREAD_OAUTH2_OPENID_CONFIGURATION_URL = (
        f"{standin.url}/common/.well-known/openid-configuration"
    )
    settings.SOCIAL_AUTH_APPLE_SERVICES_ID = APPLE_SERVICES_ID
    settings.SOCIAL_AUTH_APPLE_KEY = "KEYID12345"
    settings.SOCIAL_AUTH_APPLE_TEAM = "TEAMID6789"
    settings.SOCIAL_AUTH_APPLE_SECRET = apple_key[0]
    settings.SOCIAL_AUTH_APPLE_AUTHORIZATION_URL = f"{standin.url}/auth/authorize"
    settings.SOCIAL_AUTH_APPLE_ACCESS_TOKEN_URL = f"{standin.url}/auth/token"
    settings.SOCIAL_AUTH_APPLE_JWK_URL = f"{standin.url}/auth/keys"
    standin.client_secrets.update({"gl-id": "gl-secret", "az-id": "az-secret"})
    standin.apple_client_key = apple_key[1]
    standin.apple_team, standin.apple_key_id = "TEAMID6789", "KEYID12345"
    realm.authentication_methods = ["email", "gitlab", "azuread", "apple"]
    realm.save()
    return standin


def gitlab_user(email: str, confirmed: bool = True) -> dict[str, Any]:
    return {
        "id": 7,
        "username": "alice",
        "name": "Alice Lab",
        "email": email,
        "state": "active",
        "confirmed_at": "2024-01-02T03:04:05.000Z" if confirmed else None,
    }


def azure_user(**claims: Any) -> dict[str, Any]:
    return {"name": "Alice Azure", "given_name": "Alice", "family_name": "Azure", **claims}


def apple_user(email: str, verified: bool = True) -> dict[str, Any]:
    return {
        "email": email,
        "email_verified": verified,
        "name": {"firstName": "Alice", "lastName": "Apple"},
    }


def signed_in_as(client: Client, response: Any, user: User) -> None:
    assert response.status_code == 302, response.content
    assert int(client.session["_auth_user_id"]) == user.id


# --- listing -----------------------------------------------------------------


def test_server_settings_lists_them_in_zulips_order_with_zulips_fields(
    client: Client, providers: StandIn, settings: Settings, realm: Realm
) -> None:
    """Stand-in not contacted: sort_order descending (Google 150, GitHub 100, GitLab 75,
    AzureAD 50, Apple 10), each as Zulip's SocialAuthMixin.dict_representation."""
    settings.SOCIAL_AUTH_GITHUB_KEY, settings.SOCIAL_AUTH_GITHUB_SECRET = "gh-id", "s"
    settings.SOCIAL_AUTH_GOOGLE_KEY, settings.SOCIAL_AUTH_GOOGLE_SECRET = "g-id", "s"
    realm.authentication_methods = ["apple", "azuread", "github", "gitlab", "google"]
    realm.save()
    body = client.get("/api/v1/server_settings").json()
    listed = body["external_authentication_methods"]
    assert [(m["name"], m["display_name"]) for m in listed] == [
        ("google", "Google"),
        ("github", "GitHub"),
        ("gitlab", "GitLab"),
        ("azuread-oauth2", "AzureAD"),
        ("apple", "Apple"),
    ]
    assert listed[2] == {
        "name": "gitlab",
        "display_name": "GitLab",
        "display_icon": "/static/images/authentication_backends/gitlab-icon.png",
        "login_url": "/accounts/login/social/gitlab",
        "signup_url": "/accounts/register/social/gitlab",
    }
    assert listed[3]["display_icon"] == "/static/images/authentication_backends/azuread-icon.png"
    assert listed[3]["login_url"] == "/accounts/login/social/azuread-oauth2"
    assert listed[4]["display_icon"] == "/static/images/authentication_backends/apple-icon.png"
    methods = body["authentication_methods"]
    assert list(methods) == [
        "password", "dev", "email", "ldap", "remoteuser", "github", "azuread", "gitlab",
        "google", "apple", "saml", "openid connect",
    ]  # fmt: skip
    assert methods["gitlab"] and methods["azuread"] and methods["apple"]


def test_not_listed_unless_configured_and_enabled(
    client: Client, providers: StandIn, settings: Settings, realm: Realm
) -> None:
    """Stand-in not contacted: Apple without its team is not configured; the realm's
    choice hides the others."""
    settings.SOCIAL_AUTH_APPLE_TEAM = ""
    realm.authentication_methods = ["email", "gitlab", "apple"]
    realm.save()
    body = client.get("/api/v1/server_settings").json()
    assert [m["name"] for m in body["external_authentication_methods"]] == ["gitlab"]
    methods = body["authentication_methods"]
    assert (methods["gitlab"], methods["azuread"], methods["apple"]) == (True, False, False)
    refused = client.get("/accounts/login/social/apple")
    assert "not enabled here" in refused.content.decode()


def test_a_secret_file_that_cannot_be_read_refuses_without_a_500(
    client: Client, providers: StandIn, settings: Settings
) -> None:
    """Stand-in not contacted: the _FILE is read at use; unreadable, the method is unavailable."""
    settings.SOCIAL_AUTH_GITLAB_SECRET_FILE = "/nonexistent/gitlab-secret"
    response = client.get("/accounts/login/social/gitlab")
    assert response.status_code == 200
    assert "not available here" in response.content.decode()


def test_realm_cli_accepts_the_new_method_names(cli: Any, realm: Realm) -> None:
    """`keyhouse realm set-auth-methods` takes gitlab, azuread and apple (canonical order)."""
    code, out, _ = cli(
        "realm", "set-auth-methods", "--subdomain", "", "--auth-methods", "apple,gitlab,azuread"
    )
    assert code == 0, out
    realm.refresh_from_db()
    assert realm.authentication_methods == ["gitlab", "azuread", "apple"]


# --- GitLab ------------------------------------------------------------------


def test_gitlab_web_sign_in_with_the_secret_from_its_file(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
    tmp_path: Path,
    settings: Settings,
) -> None:
    """Against the local GitLab stand-in, which requires the secret the _FILE holds now."""
    providers.next_user = gitlab_user("alice@example.com")
    signed_in_as(client, sign_in(client, "gitlab"), alice)
    assert attempts() == [("gitlab", "success", "")]
    # Rotated: the file is read at each sign-in, no restart.
    providers.client_secrets["gl-id"] = "rotated"
    Path(settings.SOCIAL_AUTH_GITLAB_SECRET_FILE).write_text("rotated")
    other = Client()
    signed_in_as(other, sign_in(other, "gitlab"), alice)


def test_gitlab_wrong_secret_is_a_configuration_error(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local GitLab stand-in: the token endpoint refuses our secret (invalid_client)."""
    providers.client_secrets["gl-id"] = "something else"
    providers.next_user = gitlab_user("alice@example.com")
    response = sign_in(client, "gitlab")
    assert "_auth_user_id" not in client.session
    assert "GitLab is not set up correctly" in response.content.decode()
    assert attempts() == [("gitlab", "failure", "IDP_MISCONFIGURED")]


def test_gitlab_unconfirmed_email_is_refused(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local GitLab stand-in: ``confirmed_at`` null (soft email confirmation)."""
    providers.next_user = gitlab_user("alice@example.com", confirmed=False)
    response = sign_in(client, "gitlab")
    assert "has not verified your email address" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert attempts() == [("gitlab", "failure", "EMAIL_NOT_VERIFIED")]


def test_gitlab_mobile_flow_end_to_end(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local GitLab stand-in: zulip:// with an API key that works."""
    providers.next_user = gitlab_user("alice@example.com")
    response = sign_in(client, "gitlab", f"?mobile_flow_otp={OTP}")
    assert response.status_code == 302
    assert response["Location"].startswith("zulip://login?")
    params = dict(parse_qsl(urlsplit(response["Location"]).query))
    api_key = decrypt(params["otp_encrypted_api_key"], OTP)
    me = Client().get(
        "/api/v1/users/me",
        HTTP_AUTHORIZATION=httpx.BasicAuth("alice@example.com", api_key)._auth_header,
    )
    assert me.status_code == 200, me.content
    assert "_auth_user_id" not in client.session


# --- Azure AD ----------------------------------------------------------------


def test_azuread_web_sign_in_with_the_id_tokens_email(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local Azure AD stand-in: id_token verified against its published keys."""
    providers.next_user = azure_user(email="alice@example.com", upn="a.lice@example.com")
    signed_in_as(client, sign_in(client, "azuread-oauth2"), alice)
    assert attempts() == [("azuread", "success", "")]


def test_azuread_upn_when_there_is_no_email_claim(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local Azure AD stand-in: Zulip's fallback to the user principal name."""
    providers.next_user = azure_user(upn="alice@example.com")
    signed_in_as(client, sign_in(client, "azuread-oauth2"), alice)


def test_azuread_email_of_an_unverified_domain_is_refused(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local Azure AD stand-in: the optional claim xms_edov says not verified."""
    providers.next_user = azure_user(email="alice@example.com", xms_edov=False)
    response = sign_in(client, "azuread-oauth2")
    assert "has not verified your email address" in response.content.decode()
    assert attempts() == [("azuread", "failure", "EMAIL_NOT_VERIFIED")]


def test_azuread_id_token_for_another_audience_is_refused(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local Azure AD stand-in: a token minted for another app does not sign in."""
    providers.next_user = azure_user(email="alice@example.com", aud="someone-elses-app")
    response = sign_in(client, "azuread-oauth2")
    assert "did not confirm your identity" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert attempts() == [("azuread", "failure", "IDP_ERROR")]


# --- Apple -------------------------------------------------------------------


def test_apple_web_sign_in_through_the_form_post(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local Apple stand-in: it checks our ES256 client secret, we check its
    RS256 id_token; the answer is a cross-site POST (form_post)."""
    providers.next_user = apple_user("alice@example.com")
    signed_in_as(client, sign_in(client, "apple"), alice)
    assert attempts() == [("apple", "success", "")]


def test_apple_unverified_email_is_refused(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
) -> None:
    """Against the local Apple stand-in: id_token says email_verified "false"."""
    providers.next_user = apple_user("alice@example.com", verified=False)
    response = sign_in(client, "apple")
    assert "has not verified your email address" in response.content.decode()
    assert attempts() == [("apple", "failure", "EMAIL_NOT_VERIFIED")]


def test_apple_client_secret_signed_with_another_key_is_refused(
    client: Client,
    providers: StandIn,
    alice: User,  # noqa: F811
    settings: Settings,
) -> None:
    """Against the local Apple stand-in: a client secret it cannot verify gets no token."""
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    settings.SOCIAL_AUTH_APPLE_SECRET = other.decode()
    providers.next_user = apple_user("alice@example.com")
    response = sign_in(client, "apple")
    assert "_auth_user_id" not in client.session
    assert "Apple is not set up correctly" in response.content.decode()
    assert attempts() == [("apple", "failure", "IDP_MISCONFIGURED")]


def test_apple_binding_cookie_survives_the_cross_site_post_over_https(
    client: Client, providers: StandIn
) -> None:
    """Stand-in not contacted: over HTTPS the cookie is SameSite=None (and Secure), so the
    browser sends it with Apple's POST; the other methods keep Lax."""
    apple = client.get("/accounts/login/social/apple", secure=True)
    cookie = apple.cookies["keyhouse_sso"]
    assert (cookie["samesite"], cookie["secure"], cookie["httponly"]) == ("None", True, True)
    assert cookie["path"] == "/complete/apple/"
    gitlab = client.get("/accounts/login/social/gitlab", secure=True)
    assert gitlab.cookies["keyhouse_sso"]["samesite"] == "Lax"


def test_apple_native_flow_is_refused_with_a_message(client: Client, providers: StandIn) -> None:
    """Stand-in not contacted: Zulip's native id_token POST has no state; keyhouse says no."""
    response = client.post(
        "/complete/apple/", {"native_flow": "true", "id_token": "x.y.z", "mobile_flow_otp": OTP}
    )
    assert response.status_code == 200
    assert "not supported by this server" in response.content.decode()
    assert attempts() == [("apple", "failure", "IDP_NOT_ALLOWED")]


def test_apple_with_an_unusable_private_key_says_so_without_a_500(
    client: Client, providers: StandIn, settings: Settings
) -> None:
    """Stand-in not contacted: the client secret cannot be signed, so the flow cannot start."""
    settings.SOCIAL_AUTH_APPLE_SECRET = "-----BEGIN PRIVATE KEY-----\nnot a key\n"
    response = client.get("/accounts/login/social/apple")
    assert response.status_code == 200
    assert "not set up correctly on this server" in response.content.decode()
    assert attempts() == [("apple", "failure", "IDP_MISCONFIGURED")]


@pytest.mark.parametrize(
    ("method", "secret"),
    [
        ("github", "SOCIAL_AUTH_GITHUB_SECRET"),
        ("google", "SOCIAL_AUTH_GOOGLE_SECRET"),
        ("gitlab", "SOCIAL_AUTH_GITLAB_SECRET"),
        ("azuread", "SOCIAL_AUTH_AZUREAD_OAUTH2_SECRET"),
        ("apple", "SOCIAL_AUTH_APPLE_SECRET"),
    ],
)
def test_every_social_secret_has_a_file_variant_that_wins(
    method: str, secret: str, settings: Settings, providers: StandIn, tmp_path: Path
) -> None:
    """Stand-in not contacted: the ``_FILE`` alone configures the method and is what is used."""
    from keyhouse import social_providers

    path = tmp_path / f"{method}-secret"
    path.write_text("from the file\n")
    settings.SOCIAL_AUTH_GITHUB_KEY = settings.SOCIAL_AUTH_GOOGLE_KEY = "client-id"
    setattr(settings, secret, "")
    setattr(settings, secret + "_FILE", str(path))
    assert social_providers.configured(method)
    assert social_providers.client_secret(method) == "from the file"
    setattr(settings, secret, "inline")
    assert social_providers.client_secret(method) == "from the file"
    setattr(settings, secret + "_FILE", None)
    assert social_providers.client_secret(method) == "inline"
