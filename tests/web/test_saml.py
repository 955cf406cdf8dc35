"""SAML sign-in against a real pysaml2 IdP (tests/saml_idp.py) on 127.0.0.1.

The browser is Django's test client; the IdP is reached over HTTP; every message
is signed and checked with real keys made at test time.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.contrib.sessions.models import Session
from django.test import Client as DjangoClient
from django.utils import timezone
from pytest_django.fixtures import Settings
from saml2.samlp import STATUS_RESPONDER

from keyhouse.auth.models import LoginAttempt
from keyhouse.realms.models import Realm
from keyhouse.sso.saml.models import OutstandingRequest
from keyhouse.users.actions import create_user
from keyhouse.users.models import User
from tests.saml_idp import (
    OTHER_SP,
    SAMLIdP,
    cert_body,
    form_fields,
    make_key_and_cert,
    path_and_query,
    tamper,
)
from tests.web.test_desktop_flow import decrypt_token, desktop_data

HOST = "example.org"  # python3-saml refuses URLs on a dotless host such as "testserver"
# The IdP signs with Debian's xmlsec1, which .ci/ensure-services.sh installs.
pytestmark = pytest.mark.services

SP_ENTITY_ID = f"http://{HOST}/saml/metadata.xml"
ACS = f"http://{HOST}/complete/saml/"


def Client(**defaults: Any) -> DjangoClient:  # noqa: N802  (reads as the class it wraps)
    """A browser on the root realm's host, unless told another."""
    defaults.setdefault("HTTP_HOST", HOST)
    return DjangoClient(**defaults)


@pytest.fixture(scope="module")
def idp() -> Iterator[SAMLIdP]:
    server = SAMLIdP("one")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def idp2() -> Iterator[SAMLIdP]:
    server = SAMLIdP("two")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sp_keys() -> tuple[str, str]:
    return make_key_and_cert("keyhouse test SP")


@pytest.fixture
def saml(settings: Settings, idp: SAMLIdP, sp_keys: tuple[str, str], db: None) -> SAMLIdP:
    key, cert = sp_keys
    settings.SOCIAL_AUTH_SAML_SP_ENTITY_ID = SP_ENTITY_ID
    settings.SOCIAL_AUTH_SAML_SP_PUBLIC_CERT = cert
    settings.SOCIAL_AUTH_SAML_SP_PRIVATE_KEY = key
    settings.SOCIAL_AUTH_SAML_ORG_INFO = {
        "en-US": {"name": "keyhouse", "displayname": "keyhouse tests", "url": f"http://{HOST}"}
    }
    settings.SOCIAL_AUTH_SAML_TECHNICAL_CONTACT = {
        "givenName": "Tech",
        "emailAddress": "tech@example.com",
    }
    settings.SOCIAL_AUTH_SAML_SUPPORT_CONTACT = {
        "givenName": "Support",
        "emailAddress": "support@example.com",
    }
    settings.SOCIAL_AUTH_SAML_ENABLED_IDPS = {"one": idp.sp_config()}
    idp.reset()
    idp.user.email = "alice@example.com"
    idp.load_sp_metadata(Client().get("/saml/metadata.xml").content.decode())
    return idp


@pytest.fixture
def saml_realm(db: None) -> Realm:
    return Realm.objects.create(subdomain="", name="Test Org", authentication_methods=["saml"])


@pytest.fixture
def alice(saml_realm: Realm) -> User:
    return create_user(saml_realm, "alice@example.com", "Alice Liddell")


def at_idp(client: DjangoClient, start: str) -> dict[str, str]:
    """Start at keyhouse, follow the redirect to the real IdP, return its POST form."""
    response = client.get(start)
    assert response.status_code == 302, response.content[:500]
    location = response["Location"]
    assert "/sso?SAMLRequest=" in location
    with urllib.request.urlopen(location, timeout=10) as answer:  # the real IdP, over HTTP
        return form_fields(answer.read().decode())


def post_to_acs(client: DjangoClient, form: dict[str, str]) -> Any:
    data = {k: v for k, v in form.items() if k != "__action__"}
    return client.post("/complete/saml/", data)


def last_attempt() -> LoginAttempt:
    return LoginAttempt.objects.order_by("-id").first()  # type: ignore[return-value]


# --- metadata ----------------------------------------------------------------------


def test_metadata_names_entity_acs_and_contacts(saml: SAMLIdP) -> None:
    response = Client().get("/saml/metadata.xml")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/samlmetadata+xml")
    body = response.content.decode()
    assert f'entityID="{SP_ENTITY_ID}"' in body
    assert f'Location="{ACS}"' in body
    assert "tech@example.com" in body and "support@example.com" in body
    assert "X509Certificate" in body


def test_metadata_without_saml_is_404(db: None) -> None:
    assert Client().get("/saml/metadata.xml").status_code == 404


# --- SP-initiated ------------------------------------------------------------------


def test_sp_initiated_sign_in_ends_in_a_session(saml: SAMLIdP, alice: User) -> None:
    client = Client()
    form = at_idp(client, "/accounts/login/social/saml/one?next=/account/api-key/")
    assert form["__action__"] == ACS
    assert set(json.loads(form["RelayState"])) == {"state_token"}  # nothing else leaves us
    response = post_to_acs(client, form)
    assert response.status_code == 302 and response["Location"] == "/account/api-key/"
    assert client.session["_auth_user_id"] == str(alice.pk)
    attempt = last_attempt()
    assert (attempt.method, attempt.outcome, attempt.user_id) == ("saml:one", "success", alice.pk)
    assert not OutstandingRequest.objects.exists()  # consumed


def test_replayed_response_is_refused(saml: SAMLIdP, alice: User) -> None:
    form = at_idp(Client(), "/accounts/login/social/saml/one")
    assert post_to_acs(Client(), form).status_code == 302
    again = post_to_acs(Client(), form)
    assert again.status_code == 400 and b"already used" in again.content
    assert (last_attempt().reason, last_attempt().method) == ("SSO_UNSOLICITED", "saml:one")


def test_unknown_user_is_refused_with_a_page(saml: SAMLIdP, saml_realm: Realm) -> None:
    response = post_to_acs(Client(), at_idp(Client(), "/accounts/login/social/saml/one"))
    assert response.status_code == 200 and b"no account for your email" in response.content
    assert last_attempt().reason == "NO_ACCOUNT"
    assert not User.objects.exists()


def test_auto_signup_creates_the_account(
    saml: SAMLIdP, saml_realm: Realm, settings: Settings
) -> None:
    settings.SOCIAL_AUTH_SAML_ENABLED_IDPS = {"one": saml.sp_config(auto_signup=True)}
    response = post_to_acs(Client(), at_idp(Client(), "/accounts/login/social/saml/one"))
    assert response.status_code == 302
    assert User.objects.get().full_name == "Alice Liddell"


def test_deactivated_user_is_refused(saml: SAMLIdP, alice: User) -> None:
    alice.is_active = False
    alice.save()
    response = post_to_acs(Client(), at_idp(Client(), "/accounts/login/social/saml/one"))
    assert b"deactivated" in response.content and last_attempt().reason == "USER_DEACTIVATED"


def test_realm_without_saml_refuses_to_start(saml: SAMLIdP, realm: Realm) -> None:
    response = Client().get("/accounts/login/social/saml/one")
    assert response.status_code == 403 and b"not enabled" in response.content


def test_bad_otp_is_zulips_json_error(saml: SAMLIdP, alice: User) -> None:
    response = Client().get("/accounts/login/social/saml/one?mobile_flow_otp=123")
    assert response.status_code == 400 and response.json()["result"] == "error"


def test_mobile_flow_ends_in_the_zulip_redirect(saml: SAMLIdP, alice: User) -> None:
    from keyhouse.web.otp import otp_decrypt_api_key

    otp = "ab" * 32
    form = at_idp(Client(), f"/accounts/login/social/saml/one?mobile_flow_otp={otp}")
    assert otp not in json.dumps(form)  # the OTP never travels through the IdP
    browser = Client()
    response = post_to_acs(browser, form)
    assert response.status_code == 302 and response["Location"].startswith("zulip://login?")
    query = parse_qs(urlparse(response["Location"]).query)
    alice.refresh_from_db()
    assert otp_decrypt_api_key(query["otp_encrypted_api_key"][0], otp) == alice.api_key
    assert "_auth_user_id" not in browser.session  # no web session for the app's flow
    # The OTP does not leak into a later web sign-in in the same browser (zulip#13560).
    later = post_to_acs(browser, at_idp(browser, "/accounts/login/social/saml/one"))
    assert later.status_code == 302 and not later["Location"].startswith("zulip://")


def test_desktop_flow_end_to_end(saml: SAMLIdP, alice: User) -> None:
    """desktop_flow_otp through SAML: the AES-GCM token page, redeemed once by the app."""
    otp = "1234abcd" * 8
    form = at_idp(Client(), f"/accounts/login/social/saml/one?desktop_flow_otp={otp}")
    assert otp not in json.dumps(form)
    browser = Client()
    token = decrypt_token(desktop_data(post_to_acs(browser, form)), otp)
    assert "_auth_user_id" not in browser.session  # the browser only carried the token
    app = Client()
    redeemed = app.get(f"/accounts/login/subdomain/{token}")
    assert redeemed.status_code == 302
    assert app.session["_auth_user_id"] == str(alice.pk)
    assert Client().get(f"/accounts/login/subdomain/{token}").status_code == 400  # once
    assert last_attempt().method == "saml:one"


# --- what a broken or hostile IdP sends ---------------------------------------------


def _refused(response: Any, code: str, text: bytes) -> None:
    assert response.status_code == 400, response.content[:300]
    assert text in response.content
    attempt = last_attempt()
    assert (attempt.outcome, attempt.reason, attempt.method) == ("failure", code, "saml:one")


def test_tampered_response_fails_its_signature(saml: SAMLIdP, alice: User) -> None:
    create_user(alice.realm, "mallory@example.com", "Mallory")
    form = at_idp(Client(), "/accounts/login/social/saml/one")
    form["SAMLResponse"] = tamper(form["SAMLResponse"], "alice@example.com", "mallory@example.com")
    _refused(post_to_acs(Client(), form), "SSO_BAD_SIGNATURE", b"could not be verified")


def test_unsigned_response_is_refused(saml: SAMLIdP, alice: User) -> None:
    saml.sign = False
    form = at_idp(Client(), "/accounts/login/social/saml/one")
    _refused(post_to_acs(Client(), form), "SSO_BAD_SIGNATURE", b"could not be verified")


def test_wrong_audience_is_refused(saml: SAMLIdP, alice: User) -> None:
    saml.audience = OTHER_SP
    form = at_idp(Client(), "/accounts/login/social/saml/one")
    _refused(post_to_acs(Client(), form), "SSO_WRONG_AUDIENCE", b"could not be verified")


def test_expired_assertion_is_refused(saml: SAMLIdP, alice: User) -> None:
    saml.lifetime_minutes = -30  # beyond python3-saml's allowed clock drift
    form = at_idp(Client(), "/accounts/login/social/saml/one")
    response = post_to_acs(Client(), form)
    assert response.status_code == 400 and b"expired" in response.content
    assert last_attempt().reason == "SSO_EXPIRED"


def test_response_to_another_request_is_refused(saml: SAMLIdP, alice: User) -> None:
    saml.in_response_to = "id-we-never-sent"
    form = at_idp(Client(), "/accounts/login/social/saml/one")
    _refused(post_to_acs(Client(), form), "SSO_UNSOLICITED", b"does not match")


def test_garbage_is_a_page_not_a_500(saml: SAMLIdP, alice: User) -> None:
    for body in ({"SAMLResponse": "%%%"}, {"SAMLResponse": "PGZvby8+"}, {}):
        response = Client().post("/complete/saml/", body)
        assert response.status_code == 400, body


def test_response_signed_with_another_key_is_refused(
    saml: SAMLIdP, idp2: SAMLIdP, alice: User, settings: Settings
) -> None:
    """The right Issuer, a well-formed signature, but not by the certificate configured."""
    settings.SOCIAL_AUTH_SAML_ENABLED_IDPS = {
        "one": saml.sp_config(x509cert=cert_body(idp2.cert_pem))
    }
    form = at_idp(Client(), "/accounts/login/social/saml/one")
    _refused(post_to_acs(Client(), form), "SSO_BAD_SIGNATURE", b"could not be verified")


def test_response_from_an_unconfigured_idp_is_refused(
    saml: SAMLIdP, idp2: SAMLIdP, alice: User
) -> None:
    idp2.reset()
    idp2.load_sp_metadata(Client().get("/saml/metadata.xml").content.decode())
    form = idp2.unsolicited(ACS, SP_ENTITY_ID, None)
    response = post_to_acs(Client(), form)
    assert response.status_code == 400 and b"could not be verified" in response.content
    assert (last_attempt().reason, last_attempt().method) == ("SSO_INVALID_RESPONSE", "saml")


def test_unknown_relay_state_token_is_unsolicited(saml: SAMLIdP, alice: User) -> None:
    form = at_idp(Client(), "/accounts/login/social/saml/one")
    form["RelayState"] = json.dumps({"state_token": "never-issued"})
    _refused(post_to_acs(Client(), form), "SSO_UNSOLICITED", b"does not match")


def test_in_response_to_a_request_never_sent_is_unsolicited(saml: SAMLIdP, alice: User) -> None:
    """No RelayState to find our record by: the InResponseTo alone must name a request of ours."""
    saml.in_response_to = "id-we-never-sent"
    form = at_idp(Client(), "/accounts/login/social/saml/one")
    del form["RelayState"]
    _refused(post_to_acs(Client(), form), "SSO_UNSOLICITED", b"does not match")


def test_answer_after_the_request_expired_is_unsolicited(saml: SAMLIdP, alice: User) -> None:
    form = at_idp(Client(), "/accounts/login/social/saml/one")
    OutstandingRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    _refused(post_to_acs(Client(), form), "SSO_UNSOLICITED", b"does not match")


def test_answer_from_another_idp_than_asked_is_unsolicited(
    saml: SAMLIdP, idp2: SAMLIdP, alice: User, settings: Settings
) -> None:
    """We asked IdP one; IdP two (configured too) answers that very request and RelayState."""
    settings.SOCIAL_AUTH_SAML_ENABLED_IDPS = {"one": saml.sp_config(), "two": idp2.sp_config()}
    idp2.reset()
    idp2.load_sp_metadata(Client().get("/saml/metadata.xml").content.decode())
    start = Client().get("/accounts/login/social/saml/one")
    relay = parse_qs(urlparse(start["Location"]).query)["RelayState"][0]
    asked = OutstandingRequest.objects.get()
    form = idp2.respond_to(asked.request_id, ACS, SP_ENTITY_ID, relay)
    response = post_to_acs(Client(), form)
    assert response.status_code == 400 and b"does not match" in response.content
    assert (last_attempt().reason, last_attempt().method) == ("SSO_UNSOLICITED", "saml:two")


# --- IdP-initiated ------------------------------------------------------------------


def test_idp_initiated_sign_in(saml: SAMLIdP, alice: User) -> None:
    client = Client()
    form = saml.unsolicited(ACS, SP_ENTITY_ID, json.dumps({"subdomain": ""}))
    response = post_to_acs(client, form)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)
    assert last_attempt().method == "saml:one"
    # The same unsolicited response, posted again, is a replay.
    assert post_to_acs(Client(), form).status_code == 400
    assert last_attempt().reason == "SSO_UNSOLICITED"


def test_idp_initiated_without_relay_state_signs_in_to_the_hosts_realm(
    saml: SAMLIdP, alice: User
) -> None:
    """Zulip's choose_subdomain: no RelayState subdomain means the realm of the host posted to."""
    client = Client()
    response = post_to_acs(client, saml.unsolicited(ACS, SP_ENTITY_ID, None))
    assert response.status_code == 302 and response["Location"] == "/account/api-key/"
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_idp_initiated_relay_state_carries_only_the_subdomain(saml: SAMLIdP, alice: User) -> None:
    """Zulip's get_relayed_params: an IdP-initiated RelayState gives ``subdomain`` and nothing
    else, so an OTP or ``next`` put there is ignored: no app flow is started by the IdP, and
    the key never leaves in a zulip:// redirect nobody asked for."""
    relay = json.dumps(
        {"subdomain": "", "mobile_flow_otp": "ab" * 32, "next": "/account/api-key/zuliprc"}
    )
    client = Client()
    response = post_to_acs(client, saml.unsolicited(ACS, SP_ENTITY_ID, relay))
    assert response.status_code == 302 and response["Location"] == "/account/api-key/"
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_idp_initiated_for_another_realm_hands_over_to_its_host(
    saml: SAMLIdP, external_host: str
) -> None:
    """Posted to the root host, RelayState naming "other": a one-time token for other's host
    (Zulip's redirect_and_log_into_subdomain), since the root host's cookie is not other's."""
    Realm.objects.create(subdomain="", name="Root", authentication_methods=["saml"])
    other = Realm.objects.create(subdomain="other", name="Other", authentication_methods=["saml"])
    bob = create_user(other, "alice@example.com", "Alice at Other")
    relay = json.dumps({"subdomain": "other"})
    response = post_to_acs(Client(), saml.unsolicited(ACS, SP_ENTITY_ID, relay))
    assert response.status_code == 302
    prefix = "http://other.example.org/accounts/login/subdomain/"
    assert response["Location"].startswith(prefix)
    browser = Client(HTTP_HOST="other.example.org")
    assert browser.get(urlparse(response["Location"]).path).status_code == 302
    assert browser.session["_auth_user_id"] == str(bob.pk)


def test_idp_initiated_for_a_realm_without_saml_is_refused(saml: SAMLIdP, alice: User) -> None:
    alice.realm.authentication_methods = ["email"]
    alice.realm.save()
    response = post_to_acs(Client(), saml.unsolicited(ACS, SP_ENTITY_ID, None))
    assert response.status_code == 403 and b"not enabled" in response.content
    assert (last_attempt().reason, last_attempt().method) == ("SSO_METHOD_DISABLED", "saml:one")


def test_idp_initiated_for_an_unknown_realm_is_refused(saml: SAMLIdP, alice: User) -> None:
    relay = json.dumps({"subdomain": "nosuchrealm"})
    response = post_to_acs(Client(), saml.unsolicited(ACS, SP_ENTITY_ID, relay))
    assert response.status_code == 403
    assert last_attempt().reason == "SSO_METHOD_DISABLED"


# --- two IdPs, limit_to_subdomains --------------------------------------------------


def test_limit_to_subdomains(
    saml: SAMLIdP, idp2: SAMLIdP, settings: Settings, external_host: str
) -> None:
    root = Realm.objects.create(subdomain="", name="Root", authentication_methods=["saml"])
    other = Realm.objects.create(subdomain="other", name="Other", authentication_methods=["saml"])
    create_user(root, "alice@example.com", "Alice")
    create_user(other, "alice@example.com", "Alice")
    settings.SOCIAL_AUTH_SAML_ENABLED_IDPS = {
        "one": saml.sp_config(limit_to_subdomains=[""]),
        "two": idp2.sp_config(limit_to_subdomains=["other"]),
    }
    idp2.reset()
    idp2.user.email = "alice@example.com"
    idp2.load_sp_metadata(Client().get("/saml/metadata.xml").content.decode())
    other_host = {"HTTP_HOST": "other.example.org"}
    # IdP two is not offered at the root, nor IdP one at "other".
    assert Client().get("/accounts/login/social/saml/two").status_code == 403
    assert Client().get("/accounts/login/social/saml/one", **other_host).status_code == 403
    # IdP two signs users in to "other".
    client = Client(**other_host)
    response = client.get("/accounts/login/social/saml/two")
    assert response.status_code == 302
    with urllib.request.urlopen(response["Location"], timeout=10) as answer:
        form = form_fields(answer.read().decode())
    assert form["__action__"] == "http://other.example.org/complete/saml/"
    assert client.post(path_and_query(form.pop("__action__")), form).status_code == 302
    # An unsolicited response from IdP one naming "other" is refused.
    bad = saml.unsolicited(
        "http://other.example.org/complete/saml/", SP_ENTITY_ID, json.dumps({"subdomain": "other"})
    )
    bad.pop("__action__")
    refused = Client(**other_host).post("/complete/saml/", bad)
    assert refused.status_code == 403
    assert (last_attempt().reason, last_attempt().method) == ("SSO_METHOD_DISABLED", "saml:one")


# --- IdP-initiated logout -----------------------------------------------------------


def _signed_in(saml: SAMLIdP) -> DjangoClient:
    client = Client()
    assert post_to_acs(client, at_idp(client, "/accounts/login/social/saml/one")).status_code == 302
    return client


def test_signed_logout_request_ends_sessions_and_rotates_the_key(
    saml: SAMLIdP, alice: User
) -> None:
    client = _signed_in(saml)
    old_key = alice.api_key
    url = saml.logout_request_url(ACS, SP_ENTITY_ID, "alice@example.com", signed=True)
    response = Client().get(path_and_query(url))
    assert response.status_code == 302
    assert response["Location"].startswith(saml.slo_url) and "SAMLResponse=" in response["Location"]
    assert not Session.objects.exists()
    alice.refresh_from_db()
    assert alice.api_key != old_key
    assert "_auth_user_id" not in client.session


def test_unsigned_logout_request_is_refused(saml: SAMLIdP, alice: User) -> None:
    _signed_in(saml)
    old_key = alice.api_key
    url = saml.logout_request_url(ACS, SP_ENTITY_ID, "alice@example.com", signed=False)
    response = Client().get(path_and_query(url))
    assert response.status_code == 400 and b"nobody was signed out" in response.content
    assert Session.objects.exists()
    alice.refresh_from_db()
    assert alice.api_key == old_key


def test_server_settings_and_login_page_list_each_idp_as_zulip(
    saml: SAMLIdP, saml_realm: Realm, settings: Settings
) -> None:
    """Zulip's SAMLAuthBackend.dict_representation: ``saml:<idp>``, first in the list."""
    settings.SOCIAL_AUTH_SAML_ENABLED_IDPS = {
        "one": {**saml.sp_config(), "display_name": "Corp SSO", "display_icon": "/corp.png"},
    }
    body = Client().get("/api/v1/server_settings").json()
    assert body["authentication_methods"]["saml"] is True
    assert body["external_authentication_methods"][0] == {
        "name": "saml:one",
        "display_name": "Corp SSO",
        "display_icon": "/corp.png",
        "login_url": "/accounts/login/social/saml/one",
        "signup_url": "/accounts/register/social/saml/one",
    }
    page = Client().get("/login/").content.decode()
    assert "/accounts/login/social/saml/one" in page and "Corp SSO" in page
    saml_realm.authentication_methods = ["email"]
    saml_realm.save()
    body = Client().get("/api/v1/server_settings").json()
    assert body["authentication_methods"]["saml"] is False
    assert body["external_authentication_methods"] == []


# --- SP-initiated logout --------------------------------------------------------------


def idp_redirect(url: str) -> str:
    """GET ``url`` at the real IdP and return where it redirects the browser (not followed:
    the SP's host, example.org, is this test's Django client, not a network address)."""
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.netloc, timeout=10)
    try:
        connection.request("GET", path_and_query(url))
        answer = connection.getresponse()
        body = answer.read()
        assert answer.status == 302, body[:500]
        return answer.getheader("Location") or ""
    finally:
        connection.close()


@pytest.fixture
def slo(saml: SAMLIdP, settings: Settings) -> SAMLIdP:
    settings.SOCIAL_AUTH_SAML_ENABLED_IDPS = {
        "one": saml.sp_config(sp_initiated_logout_enabled=True)
    }
    return saml


def _logout_at_idp(client: DjangoClient, idp: SAMLIdP) -> str:
    """Sign out at keyhouse; the IdP's LogoutResponse URL it sends the browser back with."""
    response = client.post("/accounts/logout/")
    assert response.status_code == 302, response.content[:300]
    location = response["Location"]
    assert location.startswith(idp.slo_url + "?")
    query = parse_qs(urlparse(location).query)
    assert {"SAMLRequest", "RelayState", "SigAlg", "Signature"} <= set(query)
    # The session ended before the browser left: an IdP that never answers changes nothing.
    assert "_auth_user_id" not in client.session
    back = idp_redirect(location)  # the IdP checked the LogoutRequest's signature
    assert back.startswith(ACS + "?") and "SAMLResponse=" in back
    return back


def _logout_refused_for(caplog: pytest.LogCaptureFixture, code: str) -> None:
    """The page is the same for every refusal; the log says which check failed."""
    refusals = [
        r.getMessage() for r in caplog.records if "LogoutResponse refused" in r.getMessage()
    ]
    assert refusals and code in refusals[-1], refusals


def test_sp_initiated_logout_round_trip(
    slo: SAMLIdP, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    other_browser = _signed_in(slo)
    client = _signed_in(slo)
    old_key = alice.api_key
    back = _logout_at_idp(client, slo)
    request = slo.logout_requests[-1]
    assert request.name_id.text == "alice@example.com"  # the NameID the IdP issued
    assert request.session_index and request.session_index[0].text  # and its SessionIndex
    response = client.get(path_and_query(back))
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert b"You have signed out." in client.get("/login/").content
    assert not OutstandingRequest.objects.exists()  # the LogoutRequest was answered
    # Only this browser's session ends (Zulip's SP-initiated logout); the key stays.
    assert other_browser.session["_auth_user_id"] == str(alice.pk)
    alice.refresh_from_db()
    assert alice.api_key == old_key
    # The same LogoutResponse again answers nothing outstanding.
    again = Client().get(path_and_query(back))
    assert again.status_code == 400 and b"could not be verified" in again.content
    _logout_refused_for(caplog, "SSO_UNSOLICITED")


def test_unsigned_logout_response_is_refused(
    slo: SAMLIdP, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    slo.sign_logout_response = False
    client = _signed_in(slo)
    back = _logout_at_idp(client, slo)
    assert "Signature=" not in back
    response = client.get(path_and_query(back))
    assert response.status_code == 400
    assert b"could not be verified" in response.content
    assert b"You are signed out" in response.content  # and it is true:
    assert "_auth_user_id" not in client.session
    _logout_refused_for(caplog, "SSO_BAD_SIGNATURE")


def test_forged_logout_response_signature_is_refused(
    slo: SAMLIdP, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    client = _signed_in(slo)
    back = _logout_at_idp(client, slo)
    parsed = urlparse(back)
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    signature = bytearray(base64.b64decode(query["Signature"]))
    signature[10] ^= 0xFF
    query["Signature"] = base64.b64encode(bytes(signature)).decode()
    response = client.get(f"{parsed.path}?{urlencode(query)}")
    assert response.status_code == 400 and b"could not be verified" in response.content
    _logout_refused_for(caplog, "SSO_BAD_SIGNATURE")


def test_logout_response_to_another_request_is_refused(
    slo: SAMLIdP, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    slo.logout_in_response_to = "id-we-never-sent"
    client = _signed_in(slo)
    response = client.get(path_and_query(_logout_at_idp(client, slo)))
    assert response.status_code == 400 and b"could not be verified" in response.content
    _logout_refused_for(caplog, "SSO_UNSOLICITED")


def test_logout_refused_by_the_idp_is_a_page(
    slo: SAMLIdP, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    slo.logout_status = STATUS_RESPONDER
    client = _signed_in(slo)
    response = client.get(path_and_query(_logout_at_idp(client, slo)))
    assert response.status_code == 400 and b"sign out there" in response.content
    _logout_refused_for(caplog, "not successful")


def test_garbage_logout_response_is_a_page_not_a_500(slo: SAMLIdP, alice: User) -> None:
    for query in ("SAMLResponse=%25%25", "SAMLResponse=PGZvby8%2B", "SAMLResponse="):
        response = Client().get(f"/complete/saml/?{query}")
        assert response.status_code == 400, query


def test_logout_is_local_when_the_idp_does_not_enable_it(saml: SAMLIdP, alice: User) -> None:
    client = _signed_in(saml)  # sp_initiated_logout_enabled is off by default, as in Zulip
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    assert not saml.logout_requests and not OutstandingRequest.objects.exists()


def test_logout_of_a_session_not_from_saml_is_local(slo: SAMLIdP, alice: User) -> None:
    client = Client()
    client.force_login(alice)  # as a password sign-in would
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    assert not slo.logout_requests


def test_logout_is_local_without_an_slo_url(slo: SAMLIdP, alice: User, settings: Settings) -> None:
    client = _signed_in(slo)
    settings.SOCIAL_AUTH_SAML_ENABLED_IDPS = {
        "one": slo.sp_config(sp_initiated_logout_enabled=True, slo_url="")
    }
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
