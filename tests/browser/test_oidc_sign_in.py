"""Single sign-on with OpenID Connect in a real browser, against a real provider.

Chromium opens the login page of a running ``keyhouse serve``, clicks its OIDC
button, signs in at the npm ``oidc-provider``'s own login and consent forms
(tests/oidc/provider.mjs, its devInteractions: any login, the accounts there
decide the claims: "alice" is alice@example.com, verified) and comes back to
keyhouse signed in. The provider is this module's own, registered for this
server's callback URL; its port is chosen first so that keyhouse's config can
name it before either starts (keyhouse discovers the IdP only at sign-in).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Response, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.helpers import REALM_NAME, Shot, users_me
from tests.browser.test_mobile_flow import xor_decrypt
from tests.e2e.harness import keyhouse_cli, start_server, stop
from tests.ldap_fixtures import toml_text
from tests.oidc_provider import OIDCProvider, oidc_idp_config, running_provider
from tests.ports import distinct_free_ports

pytestmark = pytest.mark.e2e

EMAIL = "alice@example.com"  # what provider.mjs's "alice" claims, with email_verified
IDP_NAME = "Test IdP"


class OIDCSite(NamedTuple):
    base_url: str
    provider: OIDCProvider


@pytest.fixture(scope="module")
def oidc_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCSite]:
    """``keyhouse serve`` with email and OIDC sign-in, one SSO-only user, and its own provider."""
    provider_port, server_port = distinct_free_ports(2)
    config = tmp_path_factory.mktemp("oidc-browser-config") / "keyhouse.toml"
    idps = {"testidp": oidc_idp_config(f"http://127.0.0.1:{provider_port}", IDP_NAME)}
    config.write_text(toml_text({"SOCIAL_AUTH_OIDC_ENABLED_IDPS": idps}))
    env = {"KEYHOUSE_CONFIG": str(config)}
    data_dir = tmp_path_factory.mktemp("oidc-browser-data")
    keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", REALM_NAME,
                 "--auth-methods", "email,oidc", env=env)  # fmt: skip
    # No password: Alice signs in only through the IdP.
    keyhouse_cli(data_dir, "user", "create", "--realm", "", "--email", EMAIL,
                 "--full-name", "Alice Liddell", env=env)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "oidc-server.log"
    log.unlink(missing_ok=True)
    proc, base_url = start_server(data_dir, REALM_NAME, log, env=env, port=server_port)
    try:
        with running_provider([f"{base_url}/complete/oidc/"], port=provider_port) as provider:
            yield OIDCSite(base_url, provider)
    finally:
        stop(proc)


def sign_in_at_the_provider(page: Page, site: OIDCSite, shot: Shot) -> None:
    """The provider's own pages: its login form, then its consent form (a new session asks)."""
    at_provider = re.compile(re.escape(f"{site.provider.issuer}/interaction/") + r"[\w-]+$")
    expect(page).to_have_url(at_provider)
    page.get_by_placeholder("Enter any login").fill("alice")
    page.get_by_placeholder("and password").fill("any password will do")
    shot("provider-login")
    page.get_by_role("button", name="Sign-in").click()
    expect(page.get_by_role("button", name="Continue")).to_be_visible()
    expect(page).to_have_url(at_provider)
    shot("provider-consent")


def test_oidc_button_signs_in_at_the_provider_and_lands_signed_in(
    oidc_site: OIDCSite, page: Page, shot: Shot
) -> None:
    base = oidc_site.base_url
    page.goto(f"{base}/login/")
    button = page.get_by_role("link", name=f"Sign in with {IDP_NAME}")
    expect(button).to_have_attribute("href", "/accounts/login/social/oidc")
    shot("login-with-oidc-button")
    button.click()

    sign_in_at_the_provider(page, oidc_site, shot)
    page.get_by_role("button", name="Continue").click()

    expect(page).to_have_url(f"{base}/account/api-key/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your API key")
    expect(page.get_by_text(f"Signed in as {EMAIL}")).to_be_visible()
    shot("signed-in")
    # The session is real: the login page now sends the signed-in browser on.
    page.goto(f"{base}/login/")
    expect(page).to_have_url(f"{base}/account/api-key/")


def test_mobile_flow_through_the_provider_hands_the_app_its_key(
    oidc_site: OIDCSite, page: Page, shot: Shot
) -> None:
    """The app's mobile_flow_otp rides through the IdP; the last hop is the zulip:// redirect.

    Chromium cannot open zulip://, so the test reads it from the callback's 302,
    decrypts the key with the OTP (the app's side, tests/browser/test_mobile_flow.py)
    and uses it on the API.
    """
    base = oidc_site.base_url
    otp = secrets.token_hex(32)
    page.goto(f"{base}/login/?mobile_flow_otp={otp}")
    expect(page.get_by_text("Sign in to continue in the Zulip mobile app")).to_be_visible()
    page.get_by_role("link", name=f"Sign in with {IDP_NAME}").click()

    sign_in_at_the_provider(page, oidc_site, shot)

    def is_callback(response: Response) -> bool:
        return response.url.startswith(f"{base}/complete/oidc/")

    with page.expect_response(is_callback) as callback:
        page.get_by_role("button", name="Continue").click()
    response = callback.value
    assert response.status == 302
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("zulip", "login", "")
    params = parse_qs(location.query, strict_parsing=True)
    assert list(params) == ["otp_encrypted_api_key", "email", "user_id", "realm"]  # Zulip's order
    assert params["email"] == [EMAIL]
    assert params["realm"] == [base]

    api_key = xor_decrypt(params["otp_encrypted_api_key"][0], otp)
    me = users_me(base, EMAIL, api_key)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == EMAIL
    assert params["user_id"] == [str(me.json()["user_id"])]

    # Zulip's finish_mobile_flow creates no session: the browser is not signed in.
    page.goto(f"{base}/account/api-key/")
    expect(page).to_have_url(f"{base}/login/?next=%2Faccount%2Fapi-key%2F")
