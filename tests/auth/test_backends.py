"""EmailAuthBackend: Zulip's return_data flags, hash upgrades, and equal hashing cost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.hashers import make_password
from pytest_django.fixtures import Settings

from keyhouse.auth.backends import EmailAuthBackend
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user, set_active
from keyhouse.users.hashers import KeyhouseArgon2PasswordHasher
from keyhouse.users.models import User
from tests.conftest import PASSWORD


def auth(realm: Realm, username: str, password: str) -> tuple[User | None, dict[str, Any]]:
    return_data: dict[str, Any] = {}
    user = EmailAuthBackend().authenticate(
        None, username=username, password=password, realm=realm, return_data=return_data
    )
    return user, return_data


@pytest.fixture
def verify_calls() -> Iterator[mock.MagicMock]:
    """Counts real Argon2 verifications (the hasher still runs)."""
    original = KeyhouseArgon2PasswordHasher.verify
    with mock.patch.object(
        KeyhouseArgon2PasswordHasher, "verify", autospec=True, side_effect=original
    ) as spy:
        yield spy


def test_success_and_wrong_password(realm: Realm, user: User) -> None:
    assert auth(realm, "hamlet@example.com", PASSWORD) == (user, {})
    assert auth(realm, "hamlet@example.com", PASSWORD + "x") == (None, {})
    assert auth(realm, "hamlet@example.com", "") == (None, {})


def test_every_failure_costs_exactly_one_verification(
    realm: Realm, user: User, verify_calls: mock.MagicMock
) -> None:
    """No user enumeration by timing: unknown, passwordless and inactive users hash too."""
    create_user(realm, "nopassword@example.com", "No Password")
    inactive = create_user(realm, "gone@example.com", "Gone", password=PASSWORD)
    set_active(inactive, False)
    for username in (
        "hamlet@example.com",  # wrong password
        "nobody@example.com",  # unknown
        "nopassword@example.com",  # unusable password
        "gone@example.com",  # deactivated
    ):
        verify_calls.reset_mock()
        auth(realm, username, "Wrong-Password-1")
        assert verify_calls.call_count == 1, username


def test_flags_in_zulips_words(realm: Realm, user: User) -> None:
    set_active(user, False)
    assert auth(realm, "hamlet@example.com", "wrong")[1]["inactive_user"] is True
    set_active(user, True)
    realm.deactivated = True
    realm.save()
    assert auth(realm, "hamlet@example.com", PASSWORD)[1] == {"inactive_realm": True}


def test_realm_methods(realm: Realm, user: User) -> None:
    realm.authentication_methods = ["dev"]
    realm.save()
    assert auth(realm, "hamlet@example.com", PASSWORD) == (None, {"password_auth_disabled": True})


def test_email_disabled_but_ldap_on(settings: Settings, realm: Realm, user: User) -> None:
    settings.AUTH_LDAP_SERVER_URI = "ldap://127.0.0.1:1"
    realm.authentication_methods = ["ldap"]
    realm.save()
    assert auth(realm, "hamlet@example.com", PASSWORD) == (None, {"email_auth_disabled": True})


def test_user_in_other_realm_flags_invalid_subdomain(realm: Realm, user: User) -> None:
    other = Realm.objects.create(subdomain="other", name="Other", authentication_methods=["email"])
    _, flags = auth(other, "hamlet@example.com", PASSWORD)
    assert flags["invalid_subdomain"] is True
    assert flags["matching_user_ids_in_different_realms"] == [{"realm_id": realm.id, "id": user.id}]


def test_pbkdf2_hash_upgraded_to_argon2_on_login(realm: Realm, user: User) -> None:
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save()
    assert auth(realm, "hamlet@example.com", PASSWORD)[0] == user
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$v=19$m=8,t=1,p=1$")


def test_weak_old_password_needs_reset(realm: Realm, user: User) -> None:
    user.password = make_password("abcd1234", hasher="pbkdf2_sha256")
    user.save()
    assert auth(realm, "hamlet@example.com", "abcd1234") == (None, {"password_reset_needed": True})
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")  # nothing rewritten
