"""The per-username budget: one per account however it is spelled (issue 12, D8)."""

from __future__ import annotations

import pytest

from keyhouse.auth.username_key import account_key, fold, username_key
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import User
from tests.conftest import PASSWORD

# Case, Turkish dotted capital I (PostgreSQL's lower() gives "i", Python's "i̇"),
# a combining dot, fullwidth letters and "@", a soft hyphen, outer spaces.
ALICE_SPELLINGS = [
    "alice@example.com",
    "ALICE@EXAMPLE.COM",
    "al\u0130ce@example.com",
    "ali\u0307ce@example.com",
    "\uff41\uff4c\uff49\uff43\uff45\uff20example.com",
    "al\u00adice@example.com",
    "  Alice@Example.com ",
]


@pytest.fixture
def alice(realm: Realm) -> User:
    return create_user(realm, "alice@example.com", "Alice", password=PASSWORD)


@pytest.mark.parametrize("spelling", ALICE_SPELLINGS)
def test_fold_gives_one_spelling(spelling: str) -> None:
    assert fold(spelling) == "alice@example.com"


@pytest.mark.parametrize("spelling", ALICE_SPELLINGS)
def test_every_spelling_of_an_account_is_its_key(realm: Realm, alice: User, spelling: str) -> None:
    assert username_key(realm, spelling) == account_key(alice) == f"{realm.id}:user:{alice.id}"


def test_an_unknown_name_has_one_key_for_every_spelling(realm: Realm, alice: User) -> None:
    spellings = ["zoe.ivy@example.com", "ZOE.IVY@example.com", "zoe.\u0130vy@example.com",
                 "zoe.i\u0307vy@example.com", "\uff5a\uff4f\uff45.ivy@example.com",
                 "zo\u00ade.ivy@example.com", " Zoe.Ivy@Example.com "]  # fmt: skip
    keys = {username_key(realm, spelling) for spelling in spellings}
    assert len(keys) == 1
    (key,) = keys
    assert key.startswith(f"{realm.id}:name:")
    assert "zoe" not in key  # hashed: a password typed as a username is not stored


def test_keys_are_per_account_and_per_realm(realm: Realm, alice: User) -> None:
    bob = create_user(realm, "bob@example.com", "Bob", password=PASSWORD)
    other = Realm.objects.create(subdomain="other", name="Other", authentication_methods=["email"])
    alice_there = create_user(other, "alice@example.com", "Alice", password=PASSWORD)
    assert username_key(realm, "bob@example.com") == account_key(bob) != account_key(alice)
    assert username_key(other, "ALICE@example.com") == account_key(alice_there)
    assert username_key(other, "zoe@example.com") != username_key(realm, "zoe@example.com")


def test_a_long_name_gives_a_short_key(realm: Realm) -> None:
    """The database store's key column holds 300 characters."""
    assert len(username_key(realm, "\ufdfa" * 4096)) < 100  # NFKD: 18 characters each
