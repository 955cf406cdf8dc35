"""Prepared queries (keyhouse/prepared.py): the hot lookups, compiled once per connection.

They skip Django's compiler, so nothing but these tests checks that they still
build what the ORM would: the same instances, field for field and type for type,
with the related realm filled in, and the values of each call bound, not the
first call's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from keyhouse.prepared import PreparedQuery
from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import _BY_SUBDOMAIN, get_realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import _BY_EMAIL, _BY_EMAIL_IN_REALM, Role, User

# Kept on the connection object itself (django.db.connection is only a proxy to it).
CACHE_ATTR = "_keyhouse_prepared_queries"


def field_values(obj: models.Model) -> dict[str, tuple[type, Any]]:
    """Every concrete column's value and its Python type, as the instance holds them."""
    return {
        f.attname: (type(getattr(obj, f.attname)), getattr(obj, f.attname))
        for f in type(obj)._meta.concrete_fields
    }


def assert_same_instances(prepared: list[Any], orm: list[Any]) -> None:
    """Same rows in the same order, same field values and types, same loaded state."""
    assert [o.pk for o in prepared] == [o.pk for o in orm]
    for got, want in zip(prepared, orm, strict=True):
        assert field_values(got) == field_values(want)
        assert got._state.db == want._state.db
        assert got._state.adding is False
        assert got.get_deferred_fields() == set()  # no field loads lazily later


@pytest.fixture
def other_realm(realm: Realm) -> Realm:
    """A realm that differs from the root one in every column, including JSON and booleans."""
    return Realm.objects.create(
        subdomain="other",
        name="Other Org",
        description="Second **realm**",
        deactivated=True,
        authentication_methods=["email", "ldap", "dev"],
    )


@pytest.fixture
def twin(other_realm: Realm) -> User:
    """Hamlet's address in the other realm, with every column unlike the fixture user's."""
    twin = create_user(other_realm, "hamlet@example.com", "Other Hamlet", role=Role.ADMINISTRATOR)
    twin.is_bot = True
    twin.is_active = False
    twin.timezone = "Europe/Oslo"
    twin.avatar_version = 7
    twin.enable_login_emails = False
    twin.date_joined = datetime(2021, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    twin.save()
    return twin


def test_user_lookups_equal_the_orm_field_for_field(user: User, twin: User) -> None:
    """Converters matter: SQLite hands back text for datetimes and JSON, ints for booleans."""
    for email in ("hamlet@example.com", "othello@example.com"):
        assert_same_instances(
            User.objects.all_with_email(email),
            list(User.objects.with_email(email).order_by("pk")),
        )
    for realm in (user.realm, twin.realm):
        found = User.objects.get_by_delivery_email("hamlet@example.com", realm)
        want = User.objects.with_email("hamlet@example.com").get(realm=realm)
        assert found is not None
        assert_same_instances([found], [want])
        assert_same_instances([found.realm], [want.realm])


def test_values_arrive_as_python_types(twin: User) -> None:
    found = User.objects.get_by_delivery_email("hamlet@example.com", twin.realm)
    assert found is not None
    assert found.date_joined == datetime(2021, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    assert timezone.is_aware(found.date_joined)
    assert found.is_bot is True and found.is_active is False
    assert found.realm.authentication_methods == ["email", "ldap", "dev"]
    assert found.realm.deactivated is True
    assert timezone.is_aware(found.realm.date_created)


def test_realm_lookup_equals_the_orm(realm: Realm, other_realm: Realm) -> None:
    for subdomain in ("", "other"):
        found = get_realm(subdomain)
        assert found is not None
        assert_same_instances([found], [Realm.objects.get(subdomain=subdomain)])
    assert get_realm("nowhere") is None


def test_related_realm_comes_with_the_user_in_one_query(
    user: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    """select_related survives: reading ``user.realm`` on every request must not query again."""
    with django_assert_num_queries(1):
        found = User.objects.get_by_delivery_email("hamlet@example.com", user.realm)
        assert found is not None
        assert found.realm.name == "Test Org"
        assert found.realm.authentication_methods == ["email"]
    with django_assert_num_queries(1):
        [listed] = User.objects.all_with_email("hamlet@example.com")
        assert listed.realm.subdomain == ""


def test_each_call_binds_its_own_values(user: User, twin: User) -> None:
    """The SQL is built once; a leftover first-call value would answer every later call."""
    root, other = user.realm, twin.realm
    for _ in range(2):  # alternate, so no call can lean on the previous one's values
        assert User.objects.get_by_delivery_email("hamlet@example.com", root) == user
        assert User.objects.get_by_delivery_email("hamlet@example.com", other) == twin
        assert get_realm("") == root
        assert get_realm("other") == other
    create_user(root, "ophelia@example.com", "Ophelia")
    assert [u.delivery_email for u in User.objects.all_with_email("ophelia@example.com")] == [
        "ophelia@example.com"
    ]
    assert User.objects.all_with_email("hamlet@example.com") == [user, twin]  # by pk
    assert User.objects.all_with_email("nobody@example.com") == []


@pytest.mark.parametrize(
    "typed",
    ["hamlet@example.com", "HAMLET@EXAMPLE.COM", "  hAmLeT@eXaMpLe.cOm\t", "\nHamlet@Example.com "],
)
def test_email_case_and_surrounding_space_ignored(user: User, typed: str) -> None:
    assert User.objects.get_by_delivery_email(typed, user.realm) == user
    assert User.objects.all_with_email(typed) == [user]


def test_nul_in_email_finds_no_one_without_a_query(
    user: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    """PostgreSQL refuses NUL in a text parameter with an error, so it must not get there."""
    with django_assert_num_queries(0):
        assert User.objects.get_by_delivery_email("hamlet@example.com\x00", user.realm) is None
        assert User.objects.all_with_email("hamlet\x00@example.com") == []


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda email: User.objects.filter(delivery_email="fixed"), id="ignored"),
        pytest.param(
            lambda email: User.objects.filter(delivery_email=email.upper()), id="transformed"
        ),
        pytest.param(
            lambda email: User.objects.filter(delivery_email__contains=email), id="wrapped"
        ),
    ],
)
def test_argument_not_reaching_the_sql_as_a_parameter_is_refused(
    db: None, build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Such a query would answer every call with the compile-time value: refuse it at first use."""
    monkeypatch.delitem(connections[DEFAULT_DB_ALIAS].__dict__, CACHE_ATTR, raising=False)
    query = PreparedQuery(User, build, str)
    for _ in range(2):  # and not cache the failure as a success
        with pytest.raises(ValueError, match="not a query parameter"):
            query.all("hamlet@example.com")
    assert query not in connections[DEFAULT_DB_ALIAS].__dict__.get(CACHE_ATTR, {})


def test_ignored_int_argument_is_refused(db: None) -> None:
    query = PreparedQuery(User, lambda email, realm_id: User.objects.with_email(email), str, int)
    with pytest.raises(ValueError, match="not a query parameter"):
        query.first("hamlet@example.com", 1)


def test_compiled_once_per_connection_and_reused(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(connections[DEFAULT_DB_ALIAS].__dict__, CACHE_ATTR, raising=False)
    User.objects.all_with_email("hamlet@example.com")
    cache = connections[DEFAULT_DB_ALIAS].__dict__[CACHE_ATTR]
    assert set(cache) == {_BY_EMAIL}
    compiled = cache[_BY_EMAIL]
    User.objects.get_by_delivery_email("hamlet@example.com", user.realm)
    get_realm("")
    assert set(cache) == {_BY_EMAIL, _BY_EMAIL_IN_REALM, _BY_SUBDOMAIN}
    User.objects.all_with_email("other@example.com")
    assert cache[_BY_EMAIL] is compiled  # not recompiled
    assert "other@example.com" not in compiled.params  # values are bound per call, not kept
