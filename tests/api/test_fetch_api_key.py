"""POST /api/v1/fetch_api_key, checked against Zulip's behaviour (reference §1, §11).

Clients (zulip-terminal, the python library, the mobile app's password login)
branch on exact statuses, ``msg`` strings and ``code`` values, so the bodies are
compared whole, not probed for a key or two.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, make_password
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user, set_active
from keyhouse.users.models import User
from tests.api.helpers import json_body
from tests.conftest import PASSWORD
from tests.openapi import ZulipOpenAPI

URL = "/api/v1/fetch_api_key"
LDAP_URI = "ldap://ldap.invalid"

AUTH_FAILED = {
    "result": "error",
    "msg": "Your username or password is incorrect",
    "code": "AUTHENTICATION_FAILED",
}
USER_DEACTIVATED = {"result": "error", "msg": "Account is deactivated", "code": "USER_DEACTIVATED"}
REALM_DEACTIVATED = {
    "result": "error",
    "msg": "This organization has been deactivated",
    "code": "REALM_DEACTIVATED",
}
PASSWORD_AUTH_DISABLED = {
    "result": "error",
    "msg": "Password authentication is disabled in this organization",
    "code": "PASSWORD_AUTH_DISABLED",
}
PASSWORD_RESET_REQUIRED = {
    "result": "error",
    "msg": "Your password has been disabled and needs to be reset",
    "code": "PASSWORD_RESET_REQUIRED",
}
INVALID_SUBDOMAIN = {"result": "error", "msg": "Invalid subdomain", "code": "NONEXISTENT_SUBDOMAIN"}
INVALID_EMAIL = {"result": "error", "msg": "Enter a valid email address.", "code": "BAD_REQUEST"}


def missing(var_name: str) -> dict[str, Any]:
    return {
        "result": "error",
        "msg": f"Missing '{var_name}' argument",
        "var_name": var_name,
        "code": "REQUEST_VARIABLE_MISSING",
    }


def fetch(
    client: Client, username: str, password: str, host: str = "testserver", **extra: str
) -> HttpResponse:
    return client.post(URL, {"username": username, "password": password, **extra}, HTTP_HOST=host)


def success_body(user: User) -> dict[str, Any]:
    return {
        "result": "success",
        "msg": "",
        "api_key": user.api_key,
        "email": user.delivery_email,
        "user_id": user.id,
    }


def expected_argon2_prefix(settings: Settings) -> str:
    return (
        f"argon2$argon2id$v=19$m={settings.ARGON2_MEMORY_COST},"
        f"t={settings.ARGON2_TIME_COST},p={settings.ARGON2_PARALLELISM}$"
    )


# --- success -----------------------------------------------------------------


def test_success_returns_key_delivery_email_and_user_id(client: Client, user: User) -> None:
    """§1.7: exactly result, msg, api_key, email, user_id — nothing more."""
    response = fetch(client, user.delivery_email, PASSWORD)
    assert json_body(response, 200) == success_body(user)


def test_success_body_matches_zulip_openapi(
    client: Client, user: User, openapi_spec: ZulipOpenAPI
) -> None:
    """ApiKeyResponse forbids extra keys, so this also catches stray fields."""
    response = fetch(client, user.delivery_email, PASSWORD, zzz="1")
    assert response.status_code == 200
    openapi_spec.validate_success("post", URL, response.content)


def test_email_matched_case_insensitively_and_stored_spelling_returned(
    client: Client, user: User
) -> None:
    """Zulip looks up delivery_email case-insensitively; the reply carries the stored spelling."""
    assert user.delivery_email == "Hamlet@Example.com"
    for typed in ("hamlet@example.com", "HAMLET@EXAMPLE.COM", "hAmLeT@eXaMpLe.CoM"):
        body = json_body(fetch(client, typed, PASSWORD), 200)
        assert body["email"] == "Hamlet@Example.com"
        assert body["user_id"] == user.id


def test_same_key_on_every_fetch(client: Client, user: User) -> None:
    """§1.7: fetching never rotates the key, so several devices can log in."""
    keys = {
        json_body(fetch(client, user.delivery_email, PASSWORD), 200)["api_key"] for _ in range(3)
    }
    user.refresh_from_db()
    assert keys == {user.api_key}


def test_api_keys_have_zulip_format_and_are_unique(client: Client, realm: Realm) -> None:
    """§11.8: clients validate 32 characters of [A-Za-z0-9]; two users never share a key."""
    keys = []
    for n in range(5):
        person = create_user(realm, f"person{n}@example.com", f"Person {n}", password=PASSWORD)
        body = json_body(fetch(client, person.delivery_email, PASSWORD), 200)
        assert re.fullmatch(r"[A-Za-z0-9]{32}", body["api_key"])
        keys.append(body["api_key"])
    assert len(set(keys)) == len(keys)


def test_no_session_cookie(client: Client, user: User) -> None:
    """§1.8: an API-key fetch is sessionless; a cookie would be a second credential."""
    response = fetch(client, user.delivery_email, PASSWORD)
    assert response.status_code == 200
    assert not response.has_header("Set-Cookie")
    assert len(response.cookies) == 0


def test_failure_sends_no_challenge_or_cookie(client: Client, user: User) -> None:
    """Only UnauthorizedError carries WWW-Authenticate; fetch_api_key errors never do."""
    response = fetch(client, user.delivery_email, "wrong password")
    assert json_body(response, 401) == AUTH_FAILED
    assert not response.has_header("WWW-Authenticate")
    assert not response.has_header("Set-Cookie")


# --- parameters ----------------------------------------------------------------


def test_query_string_parameters_accepted(client: Client, user: User) -> None:
    """§1.2: request.GET is a fallback for both parameters."""
    response = client.post(
        f"{URL}?username={user.delivery_email}&password={PASSWORD}", HTTP_HOST="testserver"
    )
    assert json_body(response, 200) == success_body(user)


def test_multipart_and_urlencoded_bodies_accepted(client: Client, user: User) -> None:
    """Form-encoded and multipart bodies both fill request.POST."""
    response = client.post(
        URL, {"username": user.delivery_email, "password": PASSWORD}, HTTP_HOST="testserver"
    )  # the test client's default encoding is multipart
    assert json_body(response, 200) == success_body(user)
    response = client.post(
        URL,
        f"username={user.delivery_email}&password={PASSWORD}",
        content_type="application/x-www-form-urlencoded",
    )
    assert json_body(response, 200) == success_body(user)


def test_post_body_wins_over_query_string(client: Client, user: User) -> None:
    """POST is read first: the body's password decides, whatever the query says."""
    good_body = client.post(
        f"{URL}?password=wrong-password",
        {"username": user.delivery_email, "password": PASSWORD},
    )
    assert json_body(good_body, 200) == success_body(user)
    bad_body = client.post(
        f"{URL}?password={PASSWORD}",
        {"username": user.delivery_email, "password": "wrong-password"},
    )
    assert json_body(bad_body, 401) == AUTH_FAILED


def test_json_body_is_not_parsed(client: Client, user: User) -> None:
    """Zulip reads form fields only; a JSON body leaves username missing."""
    response = client.post(
        URL,
        {"username": user.delivery_email, "password": PASSWORD},
        content_type="application/json",
    )
    assert json_body(response, 400) == missing("username")


@pytest.mark.parametrize(
    ("data", "var_name"),
    [
        ({}, "username"),
        ({"password": PASSWORD}, "username"),
        ({"username": "hamlet@example.com"}, "password"),
    ],
)
def test_missing_parameter_first_in_signature_order(
    client: Client, user: User, data: dict[str, str], var_name: str
) -> None:
    """Only the first missing parameter is named, username before password."""
    assert json_body(client.post(URL, data), 400) == missing(var_name)


def test_missing_parameter_matches_openapi(
    client: Client, db: None, openapi_spec: ZulipOpenAPI
) -> None:
    openapi_spec.validate_component("MissingArgumentError", json_body(client.post(URL), 400))


def test_missing_parameter_checked_before_realm(
    client: Client, db: None, external_host: str
) -> None:
    """Parameters are parsed before the view body runs, so even an unknown host says 400."""
    response = client.post(URL, {"password": "x"}, HTTP_HOST=f"nowhere.{external_host}")
    assert json_body(response, 400) == missing("username")


def test_ignored_parameters_sorted_on_success(client: Client, user: User) -> None:
    """§1.11: unread parameters from body and query come back sorted; ``client`` never does."""
    response = client.post(
        f"{URL}?mmm=1&client=ZulipTerminal",
        {
            "username": user.delivery_email,
            "password": PASSWORD,
            "zeta": "1",
            "alpha": "2",
            "client": "website",
        },
    )
    assert json_body(response, 200) == {
        **success_body(user),
        "ignored_parameters_unsupported": ["alpha", "mmm", "zeta"],
    }


def test_client_parameter_alone_reports_nothing(client: Client, user: User) -> None:
    """With only ``client`` extra, the key is absent rather than an empty list."""
    response = client.post(
        URL, {"username": user.delivery_email, "password": PASSWORD, "client": "ZulipMobile"}
    )
    assert json_body(response, 200) == success_body(user)


def test_ignored_parameters_not_reported_on_error(client: Client, user: User) -> None:
    """Error bodies never carry ignored_parameters_unsupported."""
    response = fetch(client, user.delivery_email, "wrong password", foo="1")
    assert json_body(response, 401) == AUTH_FAILED


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "options"])
def test_only_post_allowed(client: Client, user: User, method: str) -> None:
    """§1.1: require_post's JSON 405, which has no ``code``."""
    response = getattr(client, method)(URL)
    assert json_body(response, 405) == {
        "result": "error",
        "msg": "Method Not Allowed",
        "allowed_methods": ["POST"],
    }
    assert response["Allow"] == "POST"


# --- username format -----------------------------------------------------------------


@pytest.mark.parametrize("username", ["hamlet", "", "hamlet@", "@example.com", "a b@example.com"])
def test_non_email_username_rejected_without_ldap(
    client: Client, user: User, username: str
) -> None:
    """§1.4: without LDAP the username must be an email; "" is present, so it is checked."""
    assert json_body(fetch(client, username, PASSWORD), 400) == INVALID_EMAIL


def test_non_email_username_allowed_when_realm_uses_ldap(
    client: Client, user: User, settings: Settings
) -> None:
    """LDAP takes bare usernames, so the format check is skipped; the login just fails."""
    settings.AUTH_LDAP_SERVER_URI = LDAP_URI
    user.realm.authentication_methods = ["email", "ldap"]
    user.realm.save()
    assert json_body(fetch(client, "hamlet", PASSWORD), 401) == AUTH_FAILED


# --- realm selection -------------------------------------------------------------------


def test_unknown_subdomain_is_404(client: Client, user: User, external_host: str) -> None:
    """§1.3: a host naming no realm is 404 NONEXISTENT_SUBDOMAIN, checked before the email."""
    for username in (user.delivery_email, "not-an-email"):
        response = fetch(client, username, PASSWORD, host=f"nowhere.{external_host}")
        assert json_body(response, 404) == INVALID_SUBDOMAIN


def test_missing_root_realm_is_404(client: Client, db: None) -> None:
    """Without EXTERNAL_HOST every host is the root realm; none exists here."""
    assert json_body(fetch(client, "hamlet@example.com", PASSWORD), 404) == INVALID_SUBDOMAIN


def test_subdomain_realm_with_port_and_root_alias(
    client: Client, other_realm: Realm, user: User, external_host: str
) -> None:
    """``other.example.org:9991`` is realm ``other``; ``www.`` is the root realm."""
    member = create_user(other_realm, "ophelia@example.com", "Ophelia", password=PASSWORD)
    response = fetch(client, "ophelia@example.com", PASSWORD, host=f"other.{external_host}:9991")
    assert json_body(response, 200) == success_body(member)
    response = fetch(client, user.delivery_email, PASSWORD, host=f"www.{external_host}")
    assert json_body(response, 200) == success_body(user)


def test_host_matched_case_insensitively(
    client: Client, other_realm: Realm, external_host: str
) -> None:
    """Host names are case-insensitive; Zulip lower-cases before matching."""
    member = create_user(other_realm, "ophelia@example.com", "Ophelia", password=PASSWORD)
    response = fetch(client, "ophelia@example.com", PASSWORD, host="Other.EXAMPLE.org")
    assert json_body(response, 200) == success_body(member)


def test_user_of_another_realm_is_404(
    client: Client, user: User, other_realm: Realm, external_host: str
) -> None:
    """§1.6 invalid_subdomain: the email exists in another realm; the password is irrelevant."""
    for password in (PASSWORD, "wrong password"):
        response = fetch(client, user.delivery_email, password, host=f"other.{external_host}")
        assert json_body(response, 404) == INVALID_SUBDOMAIN


# --- the failure table (§1.6), in order -------------------------------------------------


@pytest.mark.parametrize(
    "username", ["hamlet@example.com", "nobody@example.com"], ids=["wrong-password", "no-user"]
)
def test_wrong_password_or_unknown_user_is_generic_401(
    client: Client, user: User, username: str
) -> None:
    """No trailing period; an unknown user is indistinguishable from a wrong password."""
    assert json_body(fetch(client, username, "not the password"), 401) == AUTH_FAILED


def test_empty_password_is_401(client: Client, user: User) -> None:
    assert json_body(fetch(client, user.delivery_email, ""), 401) == AUTH_FAILED


def test_unusable_password_is_401(client: Client, user: User) -> None:
    """SSO/LDAP-only accounts have no usable password and cannot log in with one."""
    user.set_unusable_password()
    user.save()
    assert json_body(fetch(client, user.delivery_email, PASSWORD), 401) == AUTH_FAILED


@pytest.mark.parametrize("password", [PASSWORD, "wrong password"])
def test_deactivated_user(client: Client, user: User, password: str) -> None:
    """The account check runs before the password check, so the password does not matter."""
    set_active(user, False)
    assert json_body(fetch(client, user.delivery_email, password), 401) == USER_DEACTIVATED


def test_deactivated_user_with_empty_password_is_generic(client: Client, user: User) -> None:
    """EmailAuthBackend refuses "" before it even looks the user up."""
    set_active(user, False)
    assert json_body(fetch(client, user.delivery_email, ""), 401) == AUTH_FAILED


@pytest.mark.parametrize("password", [PASSWORD, "wrong password"])
def test_deactivated_realm(client: Client, user: User, password: str) -> None:
    """The spec's example says "is deactivated"; Zulip's code, which we follow, "has been"."""
    user.realm.deactivated = True
    user.realm.save()
    assert json_body(fetch(client, user.delivery_email, password), 401) == REALM_DEACTIVATED


def test_deactivation_bodies_match_openapi(
    client: Client, user: User, openapi_spec: ZulipOpenAPI
) -> None:
    """Exactly result, msg and code, as the spec's CodedError-based schemas demand."""
    set_active(user, False)
    body = json_body(fetch(client, user.delivery_email, PASSWORD), 401)
    openapi_spec.validate_component("UserDeactivatedError", body)
    user.realm.deactivated = True
    user.realm.save()
    body = json_body(fetch(client, user.delivery_email, PASSWORD), 401)
    openapi_spec.validate_component("RealmDeactivatedError", body)


def test_deactivated_realm_and_user_reports_realm(client: Client, user: User) -> None:
    """Zulip checks the realm first and stops there, so inactive_user is never set."""
    set_active(user, False)
    user.realm.deactivated = True
    user.realm.save()
    assert json_body(fetch(client, user.delivery_email, PASSWORD), 401) == REALM_DEACTIVATED


@pytest.mark.parametrize(
    ("methods", "dev_mode"),
    [([], False), (["dev"], True), (["ldap"], False)],
    ids=["no-methods", "dev-only", "ldap-not-configured"],
)
def test_password_auth_disabled(
    client: Client,
    user: User,
    settings: Settings,
    methods: list[str],
    dev_mode: bool,
) -> None:
    """Neither email nor a *server-configured* LDAP is on for the realm."""
    settings.DEV_MODE = dev_mode
    settings.AUTH_LDAP_SERVER_URI = ""
    user.realm.authentication_methods = methods
    user.realm.save()
    response = fetch(client, user.delivery_email, PASSWORD)
    assert json_body(response, 401) == PASSWORD_AUTH_DISABLED


def test_password_auth_disabled_beats_deactivated_user(client: Client, user: User) -> None:
    """The backend returns before the user lookup, so only this flag is ever set."""
    set_active(user, False)
    user.realm.authentication_methods = []
    user.realm.save()
    assert json_body(fetch(client, user.delivery_email, "x"), 401) == PASSWORD_AUTH_DISABLED


def test_dev_method_alongside_email_still_allows_password(
    client: Client, user: User, settings: Settings
) -> None:
    settings.DEV_MODE = True
    user.realm.authentication_methods = ["email", "dev"]
    user.realm.save()
    assert json_body(fetch(client, user.delivery_email, PASSWORD), 200) == success_body(user)


def test_ldap_only_realm_refuses_local_password(
    client: Client, user: User, settings: Settings
) -> None:
    """Password auth is on (via LDAP) but email is off: email_auth_disabled → generic 401."""
    settings.AUTH_LDAP_SERVER_URI = LDAP_URI
    user.realm.authentication_methods = ["ldap"]
    user.realm.save()
    assert json_body(fetch(client, user.delivery_email, PASSWORD), 401) == AUTH_FAILED


def test_weak_password_under_old_hasher_needs_reset(client: Client, user: User) -> None:
    """A correct password that today's policy would refuse cannot be re-hashed (§4.2 step 5)."""
    weak = "password"
    old_hash = make_password(weak, hasher="pbkdf2_sha256")
    user.password = old_hash
    user.save()
    body = json_body(fetch(client, user.delivery_email, weak), 401)
    assert body == PASSWORD_RESET_REQUIRED
    user.refresh_from_db()
    assert user.password == old_hash


def test_weak_old_hash_with_wrong_password_is_generic(client: Client, user: User) -> None:
    """The reset flag needs the right password; otherwise it would confirm a guess."""
    user.password = make_password("password", hasher="pbkdf2_sha256")
    user.save()
    assert json_body(fetch(client, user.delivery_email, "passw0rd"), 401) == AUTH_FAILED


# --- hashing ---------------------------------------------------------------------------


def test_pbkdf2_hash_upgraded_to_argon2_on_login(
    client: Client, user: User, settings: Settings
) -> None:
    """§10: old PBKDF2 hashes still log in and are re-hashed with the configured Argon2id."""
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save()
    assert user.password.startswith("pbkdf2_sha256$")
    assert json_body(fetch(client, user.delivery_email, PASSWORD), 200) == success_body(user)
    user.refresh_from_db()
    assert user.password.startswith(expected_argon2_prefix(settings))


def test_django_default_argon2_verifies_and_is_rehashed(
    client: Client, user: User, settings: Settings
) -> None:
    """Hashes imported from Zulip (Django's m=102400,t=2,p=8) verify, then move to ours.

    A wrong password must leave such a hash alone.
    """
    django_hasher = Argon2PasswordHasher()
    imported = django_hasher.encode(PASSWORD, django_hasher.salt())
    assert imported.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")
    user.password = imported
    user.save()

    assert json_body(fetch(client, user.delivery_email, "wrong password"), 401) == AUTH_FAILED
    user.refresh_from_db()
    assert user.password == imported

    assert json_body(fetch(client, user.delivery_email, PASSWORD), 200) == success_body(user)
    user.refresh_from_db()
    assert user.password.startswith(expected_argon2_prefix(settings))
    assert json_body(fetch(client, user.delivery_email, PASSWORD), 200) == success_body(user)


def test_current_hash_is_not_rewritten(client: Client, user: User, settings: Settings) -> None:
    """Hashes already at today's parameters stay as they are (no write per login)."""
    before = user.password
    assert before.startswith(expected_argon2_prefix(settings))
    assert json_body(fetch(client, user.delivery_email, PASSWORD), 200) == success_body(user)
    user.refresh_from_db()
    assert user.password == before
