"""No user enumeration: failures that differ only in account state look the same."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user, set_active
from keyhouse.users.hashers import KeyhouseArgon2PasswordHasher
from keyhouse.users.models import User
from tests.conftest import PASSWORD

URL = "/api/v1/fetch_api_key"


@pytest.fixture
def accounts(settings: Settings, realm: Realm, user: User) -> dict[str, str]:
    """One username per kind of failure, all in the root realm."""
    settings.EXTERNAL_HOST = "example.org"
    settings.RATE_LIMITING_AUTHENTICATE = False
    gone = create_user(realm, "gone@example.com", "Gone", password=PASSWORD)
    set_active(gone, False)
    elsewhere = Realm.objects.create(subdomain="other", name="O", authentication_methods=["email"])
    create_user(elsewhere, "elsewhere@example.com", "Elsewhere", password=PASSWORD)
    create_user(realm, "nopassword@example.com", "No Password")
    return {
        "wrong password": "hamlet@example.com",
        "unknown": "nobody@example.com",
        "deactivated": "gone@example.com",
        "other realm": "elsewhere@example.com",
        "no password": "nopassword@example.com",
    }


def answer(client: Client, username: str) -> tuple[int, bytes, frozenset[str]]:
    response = client.post(
        URL, {"username": username, "password": "Not-The-Password-1"}, HTTP_HOST="example.org"
    )
    return response.status_code, response.content, frozenset(response.headers) - {"Date"}


def test_hidden_account_state_is_indistinguishable(
    client: Client, settings: Settings, accounts: dict[str, str]
) -> None:
    settings.HIDE_ACCOUNT_STATE = True
    answers = {kind: answer(client, name) for kind, name in accounts.items()}
    assert len(set(answers.values())) == 1, answers
    status, body, _ = answers["unknown"]
    assert status == 401 and b'"AUTHENTICATION_FAILED"' in body


def test_zulip_compatible_default_reveals_state(client: Client, accounts: dict[str, str]) -> None:
    """Off by default, as Zulip: the client can tell a deactivated account."""
    assert answer(client, accounts["deactivated"])[0] == 401
    assert b"USER_DEACTIVATED" in answer(client, accounts["deactivated"])[1]
    assert answer(client, accounts["other realm"])[0] == 404


def test_every_kind_costs_one_verification(
    client: Client, settings: Settings, accounts: dict[str, str]
) -> None:
    settings.HIDE_ACCOUNT_STATE = True
    original = KeyhouseArgon2PasswordHasher.verify
    for kind, name in accounts.items():
        with mock.patch.object(
            KeyhouseArgon2PasswordHasher, "verify", autospec=True, side_effect=original
        ) as verify:
            answer(client, name)
        assert verify.call_count == 1, kind
