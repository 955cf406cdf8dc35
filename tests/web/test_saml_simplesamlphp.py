"""SAML against Debian's SimpleSAMLphp, a second, independent real IdP (tests/simplesamlphp_idp.py).

The user types a username and password into SimpleSAMLphp's own login form
(httpx is that browser at the IdP; Django's test client is the browser at
keyhouse), and the IdP's auto-submitting form posts the answer back. Skipped,
with the reason, when PHP or SimpleSAMLphp is not installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from urllib.parse import urljoin

import httpx
import pytest
from django.contrib.sessions.models import Session
from django.test import Client as DjangoClient
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.sso.saml.models import OutstandingRequest
from keyhouse.users.actions import create_user
from keyhouse.users.models import User
from tests.saml_idp import form_fields, path_and_query
from tests.simplesamlphp_idp import EMAIL, USERNAME, SimpleSAMLphpIdP, unavailable_reason
from tests.web.test_saml import ACS, SP_ENTITY_ID, Client, last_attempt, post_to_acs, sp_keys

__all__ = ["sp_keys"]  # the fixture, shared with test_saml.py

REASON = unavailable_reason()
pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(REASON is not None, reason=f"SimpleSAMLphp cannot run: {REASON}"),
]


@pytest.fixture(scope="module")
def ssp_server() -> Iterator[SimpleSAMLphpIdP]:
    server = SimpleSAMLphpIdP()
    yield server
    server.stop()


@pytest.fixture
def ssp(
    settings: Settings, ssp_server: SimpleSAMLphpIdP, sp_keys: tuple[str, str], db: None
) -> SimpleSAMLphpIdP:
    key, cert = sp_keys
    settings.SOCIAL_AUTH_SAML_SP_ENTITY_ID = SP_ENTITY_ID
    settings.SOCIAL_AUTH_SAML_SP_PUBLIC_CERT = cert
    settings.SOCIAL_AUTH_SAML_SP_PRIVATE_KEY = key
    settings.SOCIAL_AUTH_SAML_ENABLED_IDPS = {
        "ssp": ssp_server.sp_config(sp_initiated_logout_enabled=True)
    }
    ssp_server.load_sp_metadata(Client().get("/saml/metadata.xml").content.decode())
    return ssp_server


@pytest.fixture
def alice(db: None) -> User:
    realm = Realm.objects.create(subdomain="", name="Test Org", authentication_methods=["saml"])
    return create_user(realm, EMAIL, "Alice Liddell")


def _login_form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """SimpleSAMLphp's username/password form: where it posts, and its hidden fields."""
    assert page.status_code == 200 and 'name="password"' in page.text, page.text[:2000]
    action = re.search(r'<form[^>]*action="([^"]*)"', page.text)
    hidden = {
        unescape(m.group(1)): unescape(m.group(2))
        for m in re.finditer(
            r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text
        )
    }
    return urljoin(str(page.url), unescape(action.group(1)) if action else ""), hidden


def sign_in_at_idp(ssp: SimpleSAMLphpIdP, idp_browser: httpx.Client, location: str) -> dict:
    """From keyhouse's redirect to SimpleSAMLphp's form posting the answer back."""
    assert location.startswith(ssp.sso_url + "?"), location
    page = idp_browser.get(location, follow_redirects=True)  # on to the login form
    action, hidden = _login_form(page)
    answer = idp_browser.post(
        action,
        data={**hidden, "username": USERNAME, "password": ssp.password},
        follow_redirects=True,
    )
    form = form_fields(answer.text)
    assert "SAMLResponse" in form, f"{answer.text[:2000]}\n{ssp.logs()}"
    return form


def leave_idp(ssp: SimpleSAMLphpIdP, idp_browser: httpx.Client, url: str) -> str:
    """GET ``url`` at the IdP, following its own redirects; where it then sends the browser."""
    for _ in range(10):
        response = idp_browser.get(url)
        assert response.status_code in (302, 303), f"{response.text[:2000]}\n{ssp.logs()}"
        url = response.headers["location"]
        if not url.startswith(ssp.base + "/"):
            return url
    raise AssertionError(f"the IdP kept redirecting to itself: {url}")


def _signed_in(ssp: SimpleSAMLphpIdP, idp_browser: httpx.Client) -> DjangoClient:
    browser = Client()
    start = browser.get("/accounts/login/social/saml/ssp?next=/account/api-key/")
    assert start.status_code == 302
    form = sign_in_at_idp(ssp, idp_browser, start["Location"])
    assert form["__action__"] == ACS
    response = post_to_acs(browser, form)
    assert response.status_code == 302, f"{response.content[:500]!r}\n{ssp.logs()}"
    assert response["Location"] == "/account/api-key/"
    return browser


def test_sp_initiated_sign_in_through_the_login_form(ssp: SimpleSAMLphpIdP, alice: User) -> None:
    with httpx.Client(timeout=20) as idp_browser:
        browser = _signed_in(ssp, idp_browser)
    assert browser.session["_auth_user_id"] == str(alice.pk)
    attempt = last_attempt()
    assert (attempt.method, attempt.outcome, attempt.user_id) == ("saml:ssp", "success", alice.pk)
    assert not OutstandingRequest.objects.exists()


def test_wrong_password_at_the_idp_never_reaches_keyhouse(
    ssp: SimpleSAMLphpIdP, alice: User
) -> None:
    with httpx.Client(timeout=20) as idp_browser:
        start = Client().get("/accounts/login/social/saml/ssp")
        page = idp_browser.get(start["Location"], follow_redirects=True)
        action, hidden = _login_form(page)
        answer = idp_browser.post(
            action, data={**hidden, "username": USERNAME, "password": "wrong"}
        )
    assert "SAMLResponse" not in answer.text
    assert last_attempt() is None


def test_idp_initiated_logout_ends_sessions_and_rotates_the_key(
    ssp: SimpleSAMLphpIdP, alice: User
) -> None:
    """SimpleSAMLphp's own SingleLogoutService starts it; its signed LogoutRequest reaches us."""
    with httpx.Client(timeout=20) as idp_browser:
        browser = _signed_in(ssp, idp_browser)
        old_key = alice.api_key
        done = "http://example.org/after-logout"  # where the IdP ends: not followed
        location = leave_idp(ssp, idp_browser, f"{ssp.slo_url}?ReturnTo={done}")
        assert location.startswith(ACS + "?SAMLRequest=") and "Signature=" in location
        answer = Client().get(path_and_query(location))
        assert answer.status_code == 302, answer.content[:500]
        assert answer["Location"].startswith(ssp.slo_url + "?SAMLResponse=")
        # SimpleSAMLphp checks our signed LogoutResponse, then sends the browser on.
        assert leave_idp(ssp, idp_browser, answer["Location"]) == done
    assert not Session.objects.exists()
    assert "_auth_user_id" not in browser.session
    alice.refresh_from_db()
    assert alice.api_key != old_key


def test_sp_initiated_logout_round_trip(ssp: SimpleSAMLphpIdP, alice: User) -> None:
    with httpx.Client(timeout=20) as idp_browser:
        browser = _signed_in(ssp, idp_browser)
        response = browser.post("/accounts/logout/")
        assert response.status_code == 302
        assert response["Location"].startswith(ssp.slo_url + "?SAMLRequest=")
        assert "_auth_user_id" not in browser.session
        back = leave_idp(ssp, idp_browser, response["Location"])  # it checks our signature
        assert back.startswith(ACS + "?SAMLResponse=") and "Signature=" in back
        done = browser.get(path_and_query(back))
        assert done.status_code == 302 and done["Location"] == "/login/", done.content[:500]
        # SimpleSAMLphp's session ended too: the next sign-in asks for the password again.
        start = Client().get("/accounts/login/social/saml/ssp")
        page = idp_browser.get(start["Location"], follow_redirects=True)
        assert 'name="password"' in page.text
    assert not OutstandingRequest.objects.filter(kind="logout").exists()
