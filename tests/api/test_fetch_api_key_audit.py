"""fetch_api_key leaves exactly one audit entry per login attempt, and never the password."""

from __future__ import annotations

import importlib

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from pytest_django.fixtures import Settings

from keyhouse.auth.hashing_gate import HashingOverloaded
from keyhouse.auth.models import LoginAttempt
from keyhouse.auth.ratelimit import RateLimited
from keyhouse.realms.models import Realm
from keyhouse.users.actions import set_active
from keyhouse.users.models import User
from tests.conftest import PASSWORD

URL = "/api/v1/fetch_api_key"
IP = "203.0.113.42"
AGENT = "ZulipTerminal/0.7.0 (Linux; python 3.11)"
WRONG_PASSWORD = "Not-The-Password-913"

view_module = importlib.import_module("keyhouse.api.views.fetch_api_key")
pipeline_module = importlib.import_module("keyhouse.auth.pipeline")


pytestmark = pytest.mark.usefixtures("no_pruning")


def fetch(client: Client, data: dict[str, str], host: str = "testserver") -> HttpResponse:
    return client.post(URL, data, HTTP_HOST=host, REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT)


def entry_fields(entry: LoginAttempt) -> dict[str, object]:
    return {
        "realm_id": entry.realm_id,
        "subdomain": entry.subdomain,
        "username": entry.username,
        "user_id": entry.user_id,
        "client_ip": entry.client_ip,
        "user_agent": entry.user_agent,
        "method": entry.method,
        "outcome": entry.outcome,
        "reason": entry.reason,
    }


def expected(realm: Realm, username: str, user_id: int | None, outcome: str, reason: str) -> dict:
    return {
        "realm_id": realm.id,
        "subdomain": realm.subdomain,
        "username": username,
        "user_id": user_id,
        "client_ip": IP,
        "user_agent": AGENT,
        "method": "password",
        "outcome": outcome,
        "reason": reason,
    }


def assert_no_password_stored(*passwords: str) -> None:
    """Every column of every entry, read back from the database, free of any password."""
    for entry in LoginAttempt.objects.all():
        for field in LoginAttempt._meta.concrete_fields:
            value = str(getattr(entry, field.attname))
            for password in passwords:
                assert password not in value, (field.name, value)


def test_success_is_recorded_with_username_as_typed(
    client: Client, realm: Realm, user: User
) -> None:
    response = fetch(client, {"username": "HAMLET@example.COM", "password": PASSWORD})
    assert response.status_code == 200
    [entry] = LoginAttempt.objects.all()
    assert entry_fields(entry) == expected(realm, "HAMLET@example.COM", user.id, "success", "")


def test_wrong_password_is_recorded_against_the_account(
    client: Client, realm: Realm, user: User
) -> None:
    response = fetch(client, {"username": "hamlet@example.com", "password": WRONG_PASSWORD})
    assert response.status_code == 401
    [entry] = LoginAttempt.objects.all()
    assert entry_fields(entry) == expected(
        realm, "hamlet@example.com", user.id, "failure", "AUTHENTICATION_FAILED"
    )


def test_unknown_user_is_recorded_without_a_user(client: Client, realm: Realm, user: User) -> None:
    response = fetch(client, {"username": "Ghost@Example.com", "password": PASSWORD})
    assert response.status_code == 401
    [entry] = LoginAttempt.objects.all()
    assert entry_fields(entry) == expected(
        realm, "Ghost@Example.com", None, "failure", "AUTHENTICATION_FAILED"
    )


def test_deactivated_user_is_recorded_with_its_code(
    client: Client, realm: Realm, user: User
) -> None:
    set_active(user, False)
    response = fetch(client, {"username": "hamlet@example.com", "password": PASSWORD})
    assert response.json()["code"] == "USER_DEACTIVATED"
    [entry] = LoginAttempt.objects.all()
    assert entry_fields(entry) == expected(
        realm, "hamlet@example.com", user.id, "failure", "USER_DEACTIVATED"
    )


def test_deactivated_realm_is_recorded_with_its_code(
    client: Client, realm: Realm, user: User
) -> None:
    realm.deactivated = True
    realm.save()
    fetch(client, {"username": "hamlet@example.com", "password": PASSWORD})
    assert LoginAttempt.objects.get().reason == "REALM_DEACTIVATED"


def test_subdomain_realm_is_recorded_and_other_realms_users_not_linked(
    client: Client, user: User, other_realm: Realm, external_host: str
) -> None:
    fetch(client, {"username": "hamlet@example.com", "password": PASSWORD}, "other.example.org")
    entry = LoginAttempt.objects.get()
    assert (entry.realm_id, entry.subdomain, entry.user_id, entry.reason) == (
        other_realm.id,
        "other",
        None,
        "NONEXISTENT_SUBDOMAIN",
    )


def test_one_entry_per_attempt(client: Client, realm: Realm, user: User) -> None:
    fetch(client, {"username": "hamlet@example.com", "password": WRONG_PASSWORD})
    fetch(client, {"username": "hamlet@example.com", "password": PASSWORD})
    outcomes = list(LoginAttempt.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["failure", "success"]


@pytest.mark.parametrize(
    ("data", "host", "status"),
    [
        ({"password": PASSWORD}, "testserver", 400),
        ({"username": "hamlet@example.com"}, "testserver", 400),
        ({"username": "not an email", "password": PASSWORD}, "testserver", 400),
        ({"username": "hamlet@example.com", "password": PASSWORD}, "nowhere.example.org", 404),
    ],
    ids=["no-username", "no-password", "bad-email", "unknown-realm"],
)
def test_requests_refused_before_authentication_write_nothing(
    client: Client,
    user: User,
    external_host: str,
    data: dict[str, str],
    host: str,
    status: int,
) -> None:
    response = fetch(client, data, host)
    assert response.status_code == status
    assert LoginAttempt.objects.count() == 0


def test_password_is_in_no_column(client: Client, realm: Realm, user: User) -> None:
    fetch(client, {"username": "hamlet@example.com", "password": PASSWORD})
    fetch(client, {"username": "hamlet@example.com", "password": WRONG_PASSWORD})
    fetch(client, {"username": "ghost@example.com", "password": WRONG_PASSWORD})
    assert LoginAttempt.objects.count() == 3
    assert_no_password_stored(PASSWORD, WRONG_PASSWORD)


@pytest.mark.parametrize(
    ("exc", "outcome", "reason"),
    [
        (RateLimited(3.0), "rate_limited", "RATE_LIMIT_HIT"),
        (HashingOverloaded(1.0), "overloaded", "SERVER_OVERLOADED"),
        (KeyError("bug"), "failure", "INTERNAL_ERROR"),
    ],
)
def test_aborted_authentication_is_recorded_and_reraised(
    realm: Realm,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    exc: Exception,
    outcome: str,
    reason: str,
) -> None:
    def authenticate_attempt(*args: object) -> None:
        raise exc

    monkeypatch.setattr(pipeline_module, "authenticate_attempt", authenticate_attempt)
    request = RequestFactory().post(
        URL,
        {"username": "hamlet@example.com", "password": PASSWORD},
        REMOTE_ADDR=IP,
        HTTP_USER_AGENT=AGENT,
    )
    with pytest.raises(type(exc)) as raised:
        view_module.fetch_api_key(request)
    assert raised.value is exc
    [entry] = LoginAttempt.objects.all()
    assert entry_fields(entry) == expected(realm, "hamlet@example.com", user.id, outcome, reason)


def test_real_rate_limit_is_recorded(
    client: Client, realm: Realm, user: User, settings: Settings
) -> None:
    settings.REDIS_URL = ""  # the database store: no service needed
    for _ in range(5):
        fetch(client, {"username": "hamlet@example.com", "password": WRONG_PASSWORD})
    response = fetch(client, {"username": "hamlet@example.com", "password": PASSWORD})
    assert response.status_code == 429
    recorded = LoginAttempt.objects.order_by("id").values_list("outcome", "reason", "user_id")
    assert list(recorded) == [("failure", "AUTHENTICATION_FAILED", user.id)] * 5 + [
        ("rate_limited", "RATE_LIMIT_HIT", user.id)
    ]


def test_true_reason_recorded_when_hidden_from_the_client(
    client: Client, realm: Realm, user: User, settings: Settings
) -> None:
    """HIDE_ACCOUNT_STATE masks the answer, not what the operator sees."""
    settings.HIDE_ACCOUNT_STATE = True
    user.is_active = False
    user.save()
    response = fetch(client, {"username": "hamlet@example.com", "password": PASSWORD})
    assert response.json()["code"] == "AUTHENTICATION_FAILED"
    assert LoginAttempt.objects.get().reason == "USER_DEACTIVATED"
