"""LDAP logins through fetch_api_key against a real slapd (reference §1.4–1.6, §4.3)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user, set_active
from keyhouse.users.models import User
from tests.api.helpers import json_body
from tests.conftest import PASSWORD
from tests.ldap_fixtures import configure_ldap
from tests.ldap_server import HAMLET_PASSWORD, OPHELIA_PASSWORD, Slapd

URL = "/api/v1/fetch_api_key"
GENERIC_401 = {
    "result": "error",
    "msg": "Your username or password is incorrect",
    "code": "AUTHENTICATION_FAILED",
}


@pytest.fixture
def email_attr(settings: Settings, slapd: Slapd) -> Slapd:
    configure_ldap(settings, slapd, "email_attr")
    return slapd


def login(client: Client, username: str, password: str, **extra: Any) -> dict[str, Any]:
    response = client.post(URL, {"username": username, "password": password}, **extra)
    body = response.json()
    body["_status"] = response.status_code
    return body


def test_first_login_creates_the_user(
    client: Client, ldap_realm: Realm, append_domain: Slapd
) -> None:
    body = login(client, "hamlet", HAMLET_PASSWORD)
    assert body["_status"] == 200, body
    user = User.objects.get(pk=body["user_id"])
    assert (user.delivery_email, user.full_name, user.realm) == (
        "hamlet@example.com", "King Hamlet", ldap_realm
    )  # fmt: skip
    assert not user.has_usable_password()
    assert body["email"] == "hamlet@example.com" and body["api_key"] == user.api_key
    # The second login finds the same user; so does the email form of the username.
    assert login(client, "hamlet", HAMLET_PASSWORD)["user_id"] == user.id
    assert login(client, "Hamlet@Example.com", HAMLET_PASSWORD)["user_id"] == user.id
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("hamlet", "wrong-password"),
        ("hamlet", ""),
        ("hamlet", HAMLET_PASSWORD[:-1]),  # a prefix of the right one
        ("hamlet@other.example", HAMLET_PASSWORD),  # outside LDAP_APPEND_DOMAIN
        ("nosuchuser", HAMLET_PASSWORD),
    ],
)
def test_refusals_are_generic(
    client: Client, ldap_realm: Realm, append_domain: Slapd, username: str, password: str
) -> None:
    body = login(client, username, password)
    assert body.pop("_status") == 401
    assert body == GENERIC_401
    assert User.objects.count() == 0


def test_reverse_email_search(client: Client, ldap_realm: Realm, email_attr: Slapd) -> None:
    by_email = login(client, "ophelia@example.com", OPHELIA_PASSWORD)
    assert by_email["_status"] == 200 and by_email["email"] == "ophelia@example.com"
    assert login(client, "ophelia", OPHELIA_PASSWORD)["user_id"] == by_email["user_id"]


def test_ambiguous_email_is_refused(
    client: Client, ldap_realm: Realm, email_attr: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.ldap_server import SHARED_EMAIL, SHARED_PASSWORD

    with caplog.at_level(logging.WARNING, logger="keyhouse.auth.ldap"):
        assert login(client, SHARED_EMAIL, SHARED_PASSWORD)["_status"] == 401
    assert f"Multiple users with email {SHARED_EMAIL} found in LDAP." in caplog.messages


def test_entry_without_email_attribute(
    client: Client, ldap_realm: Realm, email_attr: Slapd
) -> None:
    from tests.ldap_server import NOMAIL_PASSWORD

    assert login(client, "nomail", NOMAIL_PASSWORD)["_status"] == 401
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("attr_map", "attrs"),
    [
        ({"userAccountControl": "userAccountControl"}, {"user_account_control": 514}),
        ({"deactivated": "keyhouseDeactivated"}, {"deactivated": "TRUE"}),
        ({"deactivated": "keyhouseDeactivated"}, {"deactivated": "yes"}),
    ],
)
def test_disabled_in_directory(
    client: Client, settings: Settings, ldap_realm: Realm, append_domain: Slapd,
    attr_map: dict[str, str], attrs: dict[str, Any],
) -> None:  # fmt: skip
    settings.AUTH_LDAP_USER_ATTR_MAP = {"full_name": "cn", **attr_map}
    append_domain.modify("hamlet", **attrs)
    assert login(client, "hamlet", HAMLET_PASSWORD)["_status"] == 401
    enabled = {k: (512 if k == "user_account_control" else "FALSE") for k in attrs}
    append_domain.modify("hamlet", **enabled)
    assert login(client, "hamlet", HAMLET_PASSWORD)["_status"] == 200


def test_org_membership(client: Client, settings: Settings, append_domain: Slapd, db: None) -> None:
    settings.EXTERNAL_HOST = "example.org"
    Realm.objects.create(subdomain="zulip", name="Z", authentication_methods=["ldap"])
    settings.AUTH_LDAP_USER_ATTR_MAP = {"full_name": "cn", "org_membership": "keyhouseOrg"}
    host = {"HTTP_HOST": "zulip.example.org"}
    assert login(client, "hamlet", HAMLET_PASSWORD, **host)["_status"] == 401  # none
    append_domain.modify("hamlet", orgs=["testWrongRealm"])
    assert login(client, "hamlet", HAMLET_PASSWORD, **host)["_status"] == 401
    append_domain.modify("hamlet", orgs=["other", "zulip"])
    assert login(client, "hamlet", HAMLET_PASSWORD, **host)["_status"] == 200


def test_advanced_realm_access_control(
    client: Client, settings: Settings, ldap_realm: Realm, append_domain: Slapd
) -> None:
    settings.ROOT_SUBDOMAIN_ALIASES = ["www"]
    settings.AUTH_LDAP_ADVANCED_REALM_ACCESS_CONTROL = {"": [{"keyhouseOrg": "staff"}]}
    assert login(client, "hamlet", HAMLET_PASSWORD)["_status"] == 401
    append_domain.modify("hamlet", orgs=["staff"])
    assert login(client, "hamlet", HAMLET_PASSWORD)["_status"] == 200


def test_keyhouse_deactivated_user_is_refused(
    client: Client, ldap_realm: Realm, append_domain: Slapd
) -> None:
    user = User.objects.get(pk=login(client, "hamlet", HAMLET_PASSWORD)["user_id"])
    set_active(user, False)
    body = login(client, "hamlet", HAMLET_PASSWORD)
    assert body.pop("_status") == 401 and body == GENERIC_401  # LDAP-only realm: generic


def test_email_and_ldap_together(client: Client, ldap_realm: Realm, append_domain: Slapd) -> None:
    ldap_realm.authentication_methods = ["email", "ldap"]
    ldap_realm.save()
    local = create_user(ldap_realm, "local@example.com", "Local", password=PASSWORD)
    assert login(client, "local@example.com", PASSWORD)["user_id"] == local.id
    assert login(client, "hamlet", HAMLET_PASSWORD)["_status"] == 200
    # The email backend ran first and knows the deactivated account: Zulip's answer.
    set_active(local, False)
    assert login(client, "local@example.com", PASSWORD)["code"] == "USER_DEACTIVATED"


def test_ldap_disabled_for_realm_means_email_format(
    client: Client, realm: Realm, append_domain: Slapd
) -> None:
    body = login(client, "hamlet", HAMLET_PASSWORD)
    assert (body["_status"], body["msg"]) == (400, "Enter a valid email address.")


def test_server_settings_follow_ldap(
    client: Client, settings: Settings, ldap_realm: Realm, append_domain: Slapd
) -> None:
    body = json_body(client.get("/api/v1/server_settings"), 200)
    assert body["authentication_methods"]["ldap"] is True
    assert body["authentication_methods"]["password"] is True
    assert body["email_auth_enabled"] is False
    assert body["require_email_format_usernames"] is False
    settings.LDAP_APPEND_DOMAIN = None
    settings.LDAP_EMAIL_ATTR = None
    assert json_body(client.get("/api/v1/server_settings"), 200)["require_email_format_usernames"]


def test_rate_limit_counts_each_attempt_once(
    client: Client, ldap_realm: Realm, append_domain: Slapd
) -> None:
    ldap_realm.authentication_methods = ["email", "ldap"]
    ldap_realm.save()
    for _ in range(5):
        assert login(client, "hamlet@example.com", "wrong")["_status"] == 401
    assert login(client, "hamlet@example.com", HAMLET_PASSWORD)["_status"] == 429


# --- directory outages ------------------------------------------------------------------

OUTAGE = {
    "result": "error",
    "msg": "The login directory is not reachable right now; try again in a few minutes",
    "code": "LDAP_UNAVAILABLE",
}


@pytest.mark.parametrize("failure", ["stopped", "hung"])
def test_outage_is_a_prompt_503_that_costs_no_attempts(
    client: Client, settings: Settings, ldap_realm: Realm, append_domain: Slapd, failure: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    configure_ldap(settings, append_domain, "append_domain", LDAP_OPERATION_TIMEOUT=1)
    (append_domain.stop if failure == "stopped" else append_domain.pause)()
    with caplog.at_level(logging.ERROR, logger="keyhouse.auth.ldap"):
        for _ in range(6):  # more than the username limit allows
            response = client.post(URL, {"username": "hamlet", "password": HAMLET_PASSWORD})
            assert json_body(response, 503) == OUTAGE
            assert response["Retry-After"] == "30"
    assert any("LDAP directory unavailable" in m for m in caplog.messages)
    assert all(HAMLET_PASSWORD not in r.getMessage() for r in caplog.records)
    (append_domain.start if failure == "stopped" else append_domain.resume)()
    assert login(client, "hamlet", HAMLET_PASSWORD)["_status"] == 200


# hamlet by uid, email, case and fullwidth (slapd matches all these), and an accented
# look-alike that folds to the same name.
HAMLET_SPELLINGS = ["hamlet", "HAMLET", "hamlet@example.com", "Hamlet@Example.COM",
                    "\uff48\uff41\uff4d\uff4c\uff45\uff54", "ha\u0301mlet"]  # fmt: skip


@pytest.mark.parametrize("created", [False, True], ids=["first-login", "existing-user"])
def test_rate_limit_is_one_budget_for_every_spelling(
    client: Client, ldap_realm: Realm, append_domain: Slapd, created: bool
) -> None:
    """With LDAP_APPEND_DOMAIN, "hamlet" and "hamlet@example.com" are one account."""
    ldap_realm.authentication_methods = ["email", "ldap"]
    ldap_realm.save()
    if created:
        assert login(client, "hamlet", HAMLET_PASSWORD)["_status"] == 200
    for name in HAMLET_SPELLINGS[:5]:
        assert login(client, name, "wrong")["_status"] == 401, name
    for name in HAMLET_SPELLINGS:
        assert login(client, name, HAMLET_PASSWORD)["_status"] == 429, name
