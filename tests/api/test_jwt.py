"""POST /api/v1/jwt/fetch_api_key, as Zulip's JWTFetchAPIKeyTest checks it, and more.

Tokens are signed here with PyJWT (tests/jwt_tokens.py), as the integrating
application signs them. Each refusal is checked byte for byte against Zulip's
body (zerver/views/auth.py: get_email_and_realm_from_jwt_authentication_request,
jwt_fetch_api_key), and for its one audit entry where it is a sign-in attempt.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from prometheus_client import REGISTRY
from pytest_django.fixtures import Settings

from keyhouse.auth.models import LoginAttempt
from keyhouse.ops import metrics  # noqa: F401 - connects the signal receivers
from keyhouse.realms.actions import set_realm_active
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user, set_active
from keyhouse.users.models import User
from tests.api.helpers import json_body
from tests.conftest import PASSWORD, basic_auth
from tests.jwt_tokens import (
    KEY,
    OTHER_KEY,
    configure,
    expired,
    forged_hmac_token,
    rsa_keys,
    token,
)
from tests.openapi import ZulipOpenAPI

URL = "/api/v1/jwt/fetch_api_key"
EMAIL = "hamlet@example.com"  # the user's address in another case: matched as Zulip does

BAD_TOKEN = {"result": "error", "msg": "Bad JSON web token", "code": "BAD_REQUEST"}
NOT_ENABLED = {
    "result": "error",
    "msg": "JWT authentication is not enabled for this organization",
    "code": "BAD_REQUEST",
}
NO_TOKEN = {"result": "error", "msg": "No JSON web token passed in request", "code": "BAD_REQUEST"}
NO_EMAIL = {
    "result": "error",
    "msg": "No email specified in JSON web token claims",
    "code": "BAD_REQUEST",
}
WRONG = {
    "result": "error",
    "msg": "Your username or password is incorrect",
    "code": "AUTHENTICATION_FAILED",
}
INVALID_SUBDOMAIN = {"result": "error", "msg": "Invalid subdomain", "code": "NONEXISTENT_SUBDOMAIN"}


@pytest.fixture(autouse=True)
def jwt_enabled(settings: Settings, no_pruning: None) -> None:
    configure(settings)


def post(client: Client, data: dict[str, str] | None = None, **extra: Any) -> HttpResponse:
    response: HttpResponse = client.post(URL, data or {}, **extra)
    return response


def attempts() -> list[tuple[str, str, str, str]]:
    return list(
        LoginAttempt.objects.order_by("id").values_list("method", "username", "outcome", "reason")
    )


# --- success ------------------------------------------------------------------------


def test_success_is_zulips_body(client: Client, user: User, openapi_spec: ZulipOpenAPI) -> None:
    """Zulip's answer is {api_key, email}: unlike fetch_api_key, no user_id."""
    response = post(client, {"token": token({"email": EMAIL})})
    body = json_body(response, 200)
    assert list(body) == ["result", "msg", "api_key", "email"]
    assert body == {
        "result": "success",
        "msg": "",
        "api_key": user.api_key,
        "email": "Hamlet@Example.com",
    }
    openapi_spec.validate_component("ApiKeyResponse", body)
    assert attempts() == [("jwt", EMAIL, "success", "")]


def test_the_key_works_on_users_me(client: Client, user: User) -> None:
    body = json_body(post(client, {"token": token({"email": EMAIL})}), 200)
    me = Client().get("/api/v1/users/me", **basic_auth(body["email"], body["api_key"]))
    assert json_body(me, 200)["user_id"] == user.id


def test_include_profile_false_is_the_default(client: Client, user: User) -> None:
    body = json_body(
        post(client, {"token": token({"email": EMAIL}), "include_profile": "false"}), 200
    )
    assert "user" not in body


def test_include_profile_gives_the_user_as_users_me_does(
    client: Client, user: User, openapi_spec: ZulipOpenAPI
) -> None:
    """Zulip's get_users_for_api(include_custom_profile_fields=False): users/me's user row,
    without profile_data and max_message_id (those are users/me's additions)."""
    body = json_body(
        post(client, {"token": token({"email": EMAIL}), "include_profile": "true"}), 200
    )
    assert list(body) == ["result", "msg", "api_key", "email", "user"]
    me = json_body(
        Client().get("/api/v1/users/me", **basic_auth(user.delivery_email, user.api_key)), 200
    )
    expected = {
        k: v for k, v in me.items() if k not in ("result", "msg", "profile_data", "max_message_id")
    }
    assert body["user"] == expected
    assert list(body["user"]) == list(expected)  # Zulip's field order too
    openapi_spec.validate_component(
        "ApiKeyResponse", {k: v for k, v in body.items() if k != "user"}
    )
    users_me = openapi_spec.document["paths"]["/users/me"]["get"]["responses"]["200"]
    schema = users_me["content"]["application/json"]["schema"]
    from openapi_schema_validator import OAS30Validator

    OAS30Validator({**schema, "components": openapi_spec.document["components"]}).validate(
        {"result": "success", "msg": "", **body["user"]}
    )


@pytest.mark.parametrize(
    ("value", "msg"),
    [
        ("yes", 'Argument "include_profile" is not valid JSON.'),
        ("", 'Argument "include_profile" is not valid JSON.'),
        ("NaN", 'Argument "include_profile" is not valid JSON.'),
        ("1", "include_profile is not a boolean"),
        ('"true"', "include_profile is not a boolean"),
    ],
)
def test_include_profile_must_be_a_json_boolean(
    client: Client, user: User, value: str, msg: str
) -> None:
    """Zulip's REQ(json_validator=check_bool), checked before anything else."""
    body = json_body(post(client, {"include_profile": value}, HTTP_HOST="nowhere.example.org"), 400)
    assert body == {"result": "error", "msg": msg, "code": "BAD_REQUEST"}


def test_unknown_parameters_are_reported(client: Client, user: User) -> None:
    body = json_body(
        post(client, {"token": token({"email": EMAIL}), "zeta": "1", "alpha": "2", "client": "x"}),
        200,
    )
    assert body["ignored_parameters_unsupported"] == ["alpha", "zeta"]
    assert list(body)[-1] == "ignored_parameters_unsupported"


def test_token_in_the_query_string_works_as_zulips_req(client: Client, user: User) -> None:
    response = client.post(f"{URL}?token={token({'email': EMAIL})}")
    assert json_body(response, 200)["api_key"] == user.api_key


def test_new_login_email_is_sent(client: Client, old_user: User) -> None:
    json_body(post(client, {"token": token({"email": EMAIL})}), 200)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["Hamlet@Example.com"]


def test_works_whatever_password_methods_the_realm_has(
    client: Client, realm: Realm, user: User
) -> None:
    """Zulip's JWT goes through ZulipDummyBackend: no realm authentication method gates it."""
    realm.authentication_methods = []
    realm.save()
    assert json_body(post(client, {"token": token({"email": EMAIL})}), 200)["api_key"]


def test_asymmetric_keys(client: Client, user: User, settings: Settings) -> None:
    private, public = rsa_keys()
    configure(settings, key=public, algorithms=["RS256"])
    response = post(client, {"token": token({"email": EMAIL}, private, "RS256")})
    assert json_body(response, 200)["api_key"] == user.api_key


def test_metrics_count_jwt_attempts(client: Client, user: User) -> None:
    def count(outcome: str, reason: str) -> float:
        labels = {"method": "jwt", "outcome": outcome, "reason": reason}
        return REGISTRY.get_sample_value("keyhouse_login_attempts_total", labels) or 0.0

    before_ok, before_bad = count("success", ""), count("failure", "JWT_BAD_SIGNATURE")
    post(client, {"token": token({"email": EMAIL})})
    post(client, {"token": token({"email": EMAIL}, OTHER_KEY)})
    assert count("success", "") == before_ok + 1
    assert count("failure", "JWT_BAD_SIGNATURE") == before_bad + 1


# --- refusals: the realm and the configuration -----------------------------------------


def test_unknown_host_is_invalid_subdomain(client: Client, user: User, external_host: str) -> None:
    response = post(client, {"token": token({"email": EMAIL})}, HTTP_HOST="nowhere.example.org")
    assert json_body(response, 404) == INVALID_SUBDOMAIN
    assert attempts() == []


def test_realm_without_a_key(client: Client, user: User, settings: Settings) -> None:
    """Zulip's test_jwt_key_not_found_failure: checked before the token (none is sent)."""
    configure(settings, subdomain="other")
    assert json_body(post(client), 400) == NOT_ENABLED
    assert json_body(post(client, {"token": token({"email": EMAIL})}), 400) == NOT_ENABLED
    assert attempts() == []  # a configuration state, not a sign-in attempt


def test_no_keys_at_all(client: Client, user: User, settings: Settings) -> None:
    settings.JWT_AUTH_KEYS = {}
    assert json_body(post(client, {"token": "x"}), 400) == NOT_ENABLED


def test_each_realm_has_its_own_key(
    client: Client, user: User, other_realm: Realm, settings: Settings
) -> None:
    othello = create_user(other_realm, "othello@example.com", "Othello", password=PASSWORD)
    settings.JWT_AUTH_KEYS = {
        "": {"key": KEY, "algorithms": ["HS256"]},
        "other": {"key": OTHER_KEY, "algorithms": ["HS256"]},
    }
    on_other = {"HTTP_HOST": "other.example.org"}
    ok = post(client, {"token": token({"email": "othello@example.com"}, OTHER_KEY)}, **on_other)
    assert json_body(ok, 200)["api_key"] == othello.api_key
    # The root realm's key does not open the other realm.
    root_signed = post(client, {"token": token({"email": "othello@example.com"})}, **on_other)
    assert json_body(root_signed, 400) == BAD_TOKEN


# --- refusals: the token ---------------------------------------------------------------


@pytest.mark.parametrize("data", [{}, {"token": ""}], ids=["absent", "empty"])
def test_missing_token(client: Client, user: User, data: dict[str, str]) -> None:
    assert json_body(post(client, data), 400) == NO_TOKEN
    assert attempts() == []


def test_garbage_token(client: Client, user: User) -> None:
    assert json_body(post(client, {"token": "bad_jwt_token"}), 400) == BAD_TOKEN
    assert attempts() == [("jwt", "", "failure", "JWT_MALFORMED")]


def test_bad_signature(client: Client, user: User) -> None:
    response = post(client, {"token": token({"email": EMAIL}, OTHER_KEY)})
    assert json_body(response, 400) == BAD_TOKEN
    # Audited under the account the token claims, as a wrong password under its username.
    [entry] = LoginAttempt.objects.all()
    assert (entry.method, entry.username, entry.reason) == ("jwt", EMAIL, "JWT_BAD_SIGNATURE")
    assert entry.user_id == user.id


def test_expired_token(client: Client, user: User) -> None:
    assert json_body(post(client, {"token": expired(EMAIL)}), 400) == BAD_TOKEN
    assert attempts() == [("jwt", EMAIL, "failure", "JWT_EXPIRED")]


def test_not_yet_valid_token(client: Client, user: User) -> None:
    early = token({"email": EMAIL, "nbf": int(time.time()) + 3600})
    assert json_body(post(client, {"token": early}), 400) == BAD_TOKEN
    assert attempts() == [("jwt", EMAIL, "failure", "JWT_NOT_YET_VALID")]


def test_token_with_an_audience_is_refused_as_by_zulip(client: Client, user: User) -> None:
    """Zulip passes no audience to PyJWT, which then refuses any token naming one."""
    with_aud = token({"email": EMAIL, "aud": "someone"})
    assert json_body(post(client, {"token": with_aud}), 400) == BAD_TOKEN
    assert attempts() == [("jwt", EMAIL, "failure", "JWT_INVALID")]


def test_other_hmac_algorithm_is_refused(client: Client, user: User) -> None:
    """Only the configured algorithms: an HS512 token, right key, against ["HS256"]."""
    response = post(client, {"token": token({"email": EMAIL}, KEY * 2, "HS512")})
    assert json_body(response, 400) == BAD_TOKEN
    assert attempts() == [("jwt", EMAIL, "failure", "JWT_WRONG_ALGORITHM")]


def test_alg_none_is_refused(client: Client, user: User) -> None:
    unsigned = token({"email": EMAIL}, None, "none")
    assert unsigned.endswith(".")  # really unsigned
    assert json_body(post(client, {"token": unsigned}), 400) == BAD_TOKEN
    assert attempts() == [("jwt", EMAIL, "failure", "JWT_WRONG_ALGORITHM")]


def test_algorithm_confusion_is_refused(client: Client, user: User, settings: Settings) -> None:
    """The realm trusts an RS256 public key; the attacker HMAC-signs with that public key."""
    private, public = rsa_keys()
    configure(settings, key=public, algorithms=["RS256"])
    forged = forged_hmac_token({"email": EMAIL}, public)
    assert json_body(post(client, {"token": forged}), 400) == BAD_TOKEN
    # The same realm signs its real users in (the configuration is not simply broken).
    assert json_body(post(client, {"token": token({"email": EMAIL}, private, "RS256")}), 200)
    assert [a[3] for a in attempts()] == ["JWT_WRONG_ALGORITHM", ""]


def test_public_key_as_hmac_secret_in_a_key_file_is_a_server_error_not_a_sign_in(
    client: Client, user: User, settings: Settings, tmp_path: Path
) -> None:
    """config_keys refuses a PEM key for HS256; a key_file is read at use, so PyJWT's
    own refusal is the last line: the forged token signs no one in, and no traceback."""
    _, public = rsa_keys()
    key_file = tmp_path / "jwt.pem"
    key_file.write_text(public)
    configure(settings, key_file=str(key_file), algorithms=["HS256"])
    forged = forged_hmac_token({"email": EMAIL}, public)
    body = json_body(post(client, {"token": forged}), 500)
    assert body == {"result": "error", "msg": "Internal server error"}
    assert attempts() == [("jwt", EMAIL, "failure", "JWT_KEY_UNUSABLE")]


def test_missing_email_claim(client: Client, user: User) -> None:
    assert json_body(post(client, {"token": token({"bar": "baz"})}), 400) == NO_EMAIL
    assert json_body(post(client, {"token": token({"email": None})}), 400) == NO_EMAIL
    assert [a[3] for a in attempts()] == ["JWT_NO_EMAIL", "JWT_NO_EMAIL"]


def test_token_too_long_is_refused_before_anything(client: Client, user: User) -> None:
    body = json_body(post(client, {"token": "a" * 5000}), 400)
    assert body["msg"] == "token is too long (limit: 4096 characters)"
    assert attempts() == []


# --- refusals: the account -------------------------------------------------------------


@pytest.mark.parametrize("email", ["", "nobody@example.com"], ids=["empty", "unknown"])
def test_no_such_user(client: Client, user: User, email: str) -> None:
    assert json_body(post(client, {"token": token({"email": email})}), 401) == WRONG
    assert attempts() == [("jwt", email, "failure", "AUTHENTICATION_FAILED")]


@pytest.mark.parametrize("claim", [42, ["hamlet@example.com"], {"a": 1}, "ham\x00let@example.com"])
def test_unusable_email_claim_is_no_user_not_a_500(client: Client, user: User, claim: Any) -> None:
    assert json_body(post(client, {"token": token({"email": claim})}), 401) == WRONG


def test_deactivated_user(client: Client, user: User) -> None:
    set_active(user, False)
    body = json_body(post(client, {"token": token({"email": EMAIL})}), 401)
    assert body == {"result": "error", "msg": "Account is deactivated", "code": "USER_DEACTIVATED"}


def test_deactivated_user_is_told_even_with_hide_account_state(
    client: Client, user: User, settings: Settings
) -> None:
    """A valid token proves who this is (as an IdP's answer): there is nothing to hide."""
    settings.HIDE_ACCOUNT_STATE = True
    set_active(user, False)
    assert json_body(post(client, {"token": token({"email": EMAIL})}), 401)["code"] == (
        "USER_DEACTIVATED"
    )


def test_deactivated_realm(client: Client, realm: Realm, user: User) -> None:
    set_realm_active(realm, False)
    body = json_body(post(client, {"token": token({"email": EMAIL})}), 401)
    assert body == {
        "result": "error",
        "msg": "This organization has been deactivated",
        "code": "REALM_DEACTIVATED",
    }


def test_user_of_another_realm(client: Client, user: User, other_realm: Realm) -> None:
    """Zulip's test_invalid_realm_for_user_failure: 404 Invalid subdomain."""
    create_user(other_realm, "othello@example.com", "Othello", password=PASSWORD)
    response = post(client, {"token": token({"email": "othello@example.com"})})
    assert json_body(response, 404) == INVALID_SUBDOMAIN


# --- the key file ------------------------------------------------------------------------


def test_key_file_is_read_at_each_sign_in(
    client: Client, user: User, settings: Settings, tmp_path: Path
) -> None:
    key_file = tmp_path / "jwt.key"
    key_file.write_text(KEY + "\n")
    configure(settings, key_file=str(key_file), algorithms=["HS256"])
    assert json_body(post(client, {"token": token({"email": EMAIL})}), 200)
    key_file.write_text(OTHER_KEY)  # rotated: no restart needed
    assert json_body(post(client, {"token": token({"email": EMAIL})}), 400) == BAD_TOKEN
    assert json_body(post(client, {"token": token({"email": EMAIL}, OTHER_KEY)}), 200)


@pytest.mark.parametrize("content", [None, "too-short"], ids=["missing", "weak"])
def test_unusable_key_file_is_a_logged_server_error(
    client: Client,
    user: User,
    settings: Settings,
    tmp_path: Path,
    content: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key_file = tmp_path / "jwt.key"
    if content is not None:
        key_file.write_text(content)
    configure(settings, key_file=str(key_file), algorithms=["HS256"])
    body = json_body(post(client, {"token": token({"email": EMAIL})}), 500)
    assert body == {"result": "error", "msg": "Internal server error"}
    assert attempts() == [("jwt", EMAIL, "failure", "JWT_KEY_UNUSABLE")]
    assert any("JWT_AUTH_KEYS" in r.getMessage() for r in caplog.records)
    assert not any(KEY in r.getMessage() or "too-short" in r.getMessage() for r in caplog.records)


# --- rate limits, like password logins ------------------------------------------------------


def assert_rate_limited(response: HttpResponse) -> None:
    body = json_body(response, 429)
    assert list(body) == ["result", "msg", "code", "retry-after"]
    assert (body["msg"], body["code"]) == ("API usage exceeded rate limit", "RATE_LIMIT_HIT")
    assert 0 < body["retry-after"] <= 1800
    assert float(response["Retry-After"]) == body["retry-after"]


def test_forged_tokens_spend_the_claimed_accounts_budget(
    client: Client, user: User, ratelimit_store: str
) -> None:
    """Five refused tokens claiming hamlet, then even a valid token is Zulip's 429."""
    for _ in range(5):
        assert post(client, {"token": token({"email": EMAIL}, OTHER_KEY)}).status_code == 400
    assert_rate_limited(post(client, {"token": token({"email": EMAIL})}))
    # Password logins for the same account share the budget: one limit per account.
    assert_rate_limited(
        client.post("/api/v1/fetch_api_key", {"username": EMAIL, "password": PASSWORD})
    )
    assert attempts()[-2][2:] == ("rate_limited", "RATE_LIMIT_HIT")


def test_success_clears_the_accounts_history(
    client: Client, user: User, ratelimit_store: str
) -> None:
    for _ in range(4):
        post(client, {"token": expired(EMAIL)})
    assert json_body(post(client, {"token": token({"email": EMAIL})}), 200)
    for _ in range(5):
        assert post(client, {"token": expired(EMAIL)}).status_code == 400
    assert post(client, {"token": expired(EMAIL)}).status_code == 429


def test_per_ip_limit(client: Client, user: User, settings: Settings, ratelimit_store: str) -> None:
    settings.RATE_LIMITING_RULES = {**settings.RATE_LIMITING_RULES,
                                    "authenticate_by_ip": [(60, 3)]}  # fmt: skip
    sprayer = {"REMOTE_ADDR": "203.0.113.9"}
    for i in range(3):
        post(client, {"token": token({"email": f"victim{i}@example.com"}, OTHER_KEY)}, **sprayer)
    assert_rate_limited(post(client, {"token": token({"email": EMAIL})}, **sprayer))
    assert json_body(post(client, {"token": token({"email": EMAIL})}), 200)  # loopback: exempt
