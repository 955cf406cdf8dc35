"""The user model: per-realm case-insensitive emails, unusable passwords, hashing."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, make_password
from django.db import IntegrityError, transaction
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.actions import (
    UserActionError,
    change_password,
    create_user,
    regenerate_api_key,
)
from keyhouse.users.models import Role, User, lookups_remembered
from keyhouse.users.password_policy import PasswordTooWeakError
from tests.conftest import PASSWORD


def test_email_unique_per_realm_case_insensitively(realm: Realm, user: User) -> None:
    with pytest.raises(UserActionError):
        create_user(realm, "hamlet@EXAMPLE.com", "Other")
    # The database enforces it too, whatever code path writes.
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(realm=realm, delivery_email="HAMLET@example.COM", full_name="X")


def test_a_sign_in_looks_an_account_up_once(
    realm: Realm, user: User, django_assert_num_queries: Any
) -> None:
    """Inside lookups_remembered (the sign-in pipeline), a found account is not asked again;
    a name that reaches no one is asked every time (the first LDAP login creates it)."""
    with lookups_remembered():
        with django_assert_num_queries(1):
            first = User.objects.get_by_delivery_email("hamlet@example.com", realm)
            assert User.objects.get_by_delivery_email(" hamlet@example.com", realm) is first
        with django_assert_num_queries(2):
            assert User.objects.get_by_delivery_email("nobody@example.com", realm) is None
            assert User.objects.get_by_delivery_email("nobody@example.com", realm) is None
        created = create_user(realm, "nobody@example.com", "No Body")
        assert User.objects.get_by_delivery_email("nobody@example.com", realm) == created
    with django_assert_num_queries(1):  # outside: every lookup is a query
        User.objects.get_by_delivery_email("hamlet@example.com", realm)


def test_same_email_allowed_in_another_realm(user: User) -> None:
    other = Realm.objects.create(subdomain="other", name="Other", authentication_methods=["email"])
    twin = create_user(other, "hamlet@example.com", "Other Hamlet")
    assert twin.realm == other and twin.api_key != user.api_key


def test_lookup_is_case_insensitive_and_per_realm(realm: Realm, user: User) -> None:
    assert User.objects.get_by_delivery_email("  hAmLeT@example.COM ", realm) == user
    other = Realm.objects.create(subdomain="x", name="X")
    assert User.objects.get_by_delivery_email("hamlet@example.com", other) is None


def test_user_without_password_has_unusable_one(realm: Realm) -> None:
    user = create_user(realm, "sso@example.com", "SSO User")
    assert not user.has_usable_password()
    assert not user.check_password("")


def test_weak_password_refused_on_create_and_change(realm: Realm, user: User) -> None:
    with pytest.raises(PasswordTooWeakError):
        create_user(realm, "weak@example.com", "Weak", password="abcd1234")
    assert not User.objects.filter(delivery_email="weak@example.com").exists()
    with pytest.raises(PasswordTooWeakError):
        change_password(user, "123456")
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_passwords_hash_with_configured_argon2id(settings: Settings, user: User) -> None:
    assert user.password.startswith("argon2$argon2id$v=19$m=8,t=1,p=1$")
    settings.ARGON2_MEMORY_COST = 16
    settings.ARGON2_TIME_COST = 2
    change_password(user, "Another-Good-One-5")
    assert user.password.startswith("argon2$argon2id$v=19$m=16,t=2,p=1$")


def test_production_defaults_meet_owasp(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped defaults, read from settings.py rather than the test override."""
    import importlib

    import keyhouse.settings as shipped

    for name in (
        "KEYHOUSE_CONFIG",
        "KEYHOUSE_ARGON2_MEMORY_COST",
        "KEYHOUSE_ARGON2_TIME_COST",
        "KEYHOUSE_ARGON2_PARALLELISM",
    ):
        monkeypatch.delenv(name, raising=False)
    importlib.reload(shipped)
    assert shipped.ARGON2_MEMORY_COST >= 19456
    assert shipped.ARGON2_TIME_COST >= 2
    assert shipped.ARGON2_PARALLELISM >= 1
    assert shipped.PASSWORD_HASHERS[0] == "keyhouse.users.hashers.KeyhouseArgon2PasswordHasher"


def test_old_hashes_verify(realm: Realm) -> None:
    user = create_user(realm, "old@example.com", "Old")
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    assert user.check_password(PASSWORD)
    user.password = Argon2PasswordHasher().encode(PASSWORD, "saltsaltsalt")
    assert user.password.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")
    assert user.check_password(PASSWORD)
    assert not user.check_password(PASSWORD + "x")


def test_regenerate_api_key_changes_key(user: User) -> None:
    old = user.api_key
    new = regenerate_api_key(user)
    user.refresh_from_db()
    assert new != old and user.api_key == new


def test_roles_have_zulip_numbers() -> None:
    assert [int(r) for r in Role] == [100, 200, 300, 400, 600]
