"""The shared API-key cache: hits cost no query, and every change shows at once.

Runs against the real Redis (db 15, the tests' own), as servers would share it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from keyhouse.outages import DependencyUnavailable
from keyhouse.realms.models import Realm
from keyhouse.users import api_key_cache
from keyhouse.users.actions import create_user, regenerate_api_key, set_active
from keyhouse.users.models import Role, User
from tests.api.helpers import assert_unauthorized, json_body
from tests.conftest import PASSWORD, basic_auth, redis_cache, redis_or_fail, use_redis

ME = "/api/v1/users/me"
REGENERATE = "/api/v1/users/me/api_key/regenerate"


@pytest.fixture
def shared_redis(settings: Settings) -> redis.Redis:
    """Redis as KEYHOUSE_REDIS_URL sets it up: rate limits and the cache, emptied first."""
    url = redis_or_fail()
    use_redis(settings, url)
    client = redis.Redis.from_url(url)
    client.flushdb()
    return client


def me(client: Client, email: str, api_key: str, host: str = "testserver") -> HttpResponse:
    return client.get(ME, HTTP_HOST=host, **basic_auth(email, api_key))


def queries(call: Callable[[], HttpResponse]) -> tuple[HttpResponse, int]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    return response, len(captured)


def warm(client: Client, user: User, key: str | None = None) -> dict[str, Any]:
    """One call to fill the cache, a second that must be a hit."""
    key = key or user.api_key
    first = json_body(me(client, user.delivery_email, key), 200)
    with CaptureQueriesContext(connection) as captured:
        again = me(client, user.delivery_email, key)
    assert len(captured) == 0, captured.captured_queries
    assert json_body(again, 200) == first
    return first


# --- Hits ---------------------------------------------------------------------------


def test_second_call_needs_no_query(
    client: Client, user: User, shared_redis: redis.Redis, django_assert_num_queries: Any
) -> None:
    first = json_body(me(client, user.delivery_email, user.api_key), 200)
    with django_assert_num_queries(0):
        second = me(client, user.delivery_email, user.api_key)
    assert json_body(second, 200) == first
    assert first["user_id"] == user.id and first["full_name"] == "King Hamlet"


def test_email_case_does_not_matter(client: Client, user: User, shared_redis: redis.Redis) -> None:
    warm(client, user)
    response, count = queries(lambda: me(client, "HAMLET@example.COM", user.api_key))
    assert count == 0 and json_body(response, 200)["user_id"] == user.id


def test_redis_never_holds_the_key(client: Client, user: User, shared_redis: redis.Redis) -> None:
    warm(client, user)
    names = shared_redis.keys("*")
    assert any(b":apikey:entry:" in name for name in names)
    for name in names:
        assert user.api_key.encode() not in name
        if shared_redis.type(name) == b"string":
            assert user.api_key.encode() not in shared_redis.get(name)


def test_wrong_key_is_never_served_from_the_cache(
    client: Client, user: User, shared_redis: redis.Redis
) -> None:
    warm(client, user)
    assert_unauthorized(me(client, user.delivery_email, "A" * 32), "Invalid API key")
    other = create_user(user.realm, "other@example.com", "Other", password=PASSWORD)
    assert_unauthorized(me(client, other.delivery_email, user.api_key), "Invalid API key")


def test_cached_user_cannot_overwrite_uncached_fields(
    user: User, shared_redis: redis.Redis
) -> None:
    """The rebuilt user defers what the entry lacks: saving it keeps the password hash."""
    from keyhouse.api.basic_auth import user_for_api_key

    user_for_api_key(user.delivery_email, user.api_key)  # fill
    cached = user_for_api_key(user.delivery_email, user.api_key)
    assert cached is not None and "password" in cached.get_deferred_fields()
    for name in [*api_key_cache.USER_FIELDS, "api_key"]:
        assert getattr(cached, name) == getattr(user, name), name
    for name in api_key_cache.REALM_FIELDS:
        assert getattr(cached.realm, name) == getattr(user.realm, name), name
    cached.full_name = "Renamed"
    cached.save()
    user.refresh_from_db()
    assert user.full_name == "Renamed" and user.check_password(PASSWORD)


# --- Invalidation ---------------------------------------------------------------------


def test_regeneration_kills_the_cached_old_key(
    client: Client, user: User, shared_redis: redis.Redis
) -> None:
    old = user.api_key
    warm(client, user)
    response = client.post(REGENERATE, **basic_auth(user.delivery_email, old))
    new = json_body(response, 200)["api_key"]
    assert_unauthorized(me(client, user.delivery_email, old), "Invalid API key")
    assert json_body(me(client, user.delivery_email, new), 200)["user_id"] == user.id


def test_regeneration_elsewhere_kills_the_cached_old_key(
    client: Client, user: User, shared_redis: redis.Redis
) -> None:
    """As `keyhouse user regenerate-api-key` does: another process, another object."""
    old = user.api_key
    warm(client, user)
    new = regenerate_api_key(User.objects.get(pk=user.pk))
    assert_unauthorized(me(client, user.delivery_email, old), "Invalid API key")
    assert json_body(me(client, user.delivery_email, new), 200)["user_id"] == user.id


def test_deactivation_and_reactivation_show_at_once(
    client: Client, user: User, shared_redis: redis.Redis
) -> None:
    warm(client, user)
    set_active(User.objects.get(pk=user.pk), False)
    assert_unauthorized(me(client, user.delivery_email, user.api_key), "Account is deactivated")
    set_active(User.objects.get(pk=user.pk), True)
    assert json_body(me(client, user.delivery_email, user.api_key), 200)["is_active"] is True


def test_realm_deactivation_and_reactivation_show_at_once(
    client: Client, user: User, shared_redis: redis.Redis
) -> None:
    warm(client, user)
    realm = Realm.objects.get(pk=user.realm_id)
    realm.deactivated = True
    realm.save(update_fields=["deactivated"])
    response = me(client, user.delivery_email, user.api_key)
    assert_unauthorized(response, "This organization has been deactivated")
    realm.deactivated = False
    realm.save(update_fields=["deactivated"])
    assert json_body(me(client, user.delivery_email, user.api_key), 200)["user_id"] == user.id


def test_auth_method_change_drops_cached_realm(
    client: Client, user: User, shared_redis: redis.Redis
) -> None:
    from keyhouse.api.basic_auth import user_for_api_key

    warm(client, user)
    realm = Realm.objects.get(pk=user.realm_id)
    realm.authentication_methods = ["ldap"]
    realm.save(update_fields=["authentication_methods"])
    _, count = queries(lambda: me(client, user.delivery_email, user.api_key))
    assert count > 0  # a miss: read from the database again …
    cached = user_for_api_key(user.delivery_email, user.api_key)
    assert cached is not None and cached.realm.authentication_methods == ["ldap"]  # … and kept


def test_realm_subdomain_change_shows_at_once(
    client: Client, settings: Settings, user: User, shared_redis: redis.Redis
) -> None:
    settings.EXTERNAL_HOST = "example.org"
    realm = Realm.objects.create(subdomain="old", name="Old", authentication_methods=["email"])
    member = create_user(realm, "member@example.com", "Member", password=PASSWORD)
    assert me(client, member.delivery_email, member.api_key, "old.example.org").status_code == 200
    realm.subdomain = "new"
    realm.save()
    response = me(client, member.delivery_email, member.api_key, "old.example.org")
    assert_unauthorized(response, "Account is not associated with this subdomain")
    assert me(client, member.delivery_email, member.api_key, "new.example.org").status_code == 200


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("full_name", "Prince Hamlet", ("full_name", "Prince Hamlet")),
        ("role", Role.ADMINISTRATOR, ("is_admin", True)),
        ("is_bot", True, ("is_bot", True)),
        ("timezone", "Europe/Copenhagen", ("timezone", "Europe/Copenhagen")),
        ("avatar_version", 7, ("avatar_version", 7)),
    ],
)
def test_profile_changes_show_at_once(
    client: Client,
    user: User,
    shared_redis: redis.Redis,
    field: str,
    value: Any,
    shown: tuple[str, Any],
) -> None:
    warm(client, user)
    changed = User.objects.get(pk=user.pk)
    setattr(changed, field, value)
    changed.save(update_fields=[field])
    assert json_body(me(client, user.delivery_email, user.api_key), 200)[shown[0]] == shown[1]


def test_full_save_counts_as_a_change(
    client: Client, user: User, shared_redis: redis.Redis
) -> None:
    """The Django admin saves every field: that must invalidate too."""
    warm(client, user)
    changed = User.objects.get(pk=user.pk)
    changed.full_name = "Edited In Admin"
    changed.save()
    body = json_body(me(client, user.delivery_email, user.api_key), 200)
    assert body["full_name"] == "Edited In Admin"


def test_email_change_drops_entries_under_the_old_email(
    client: Client, user: User, shared_redis: redis.Redis
) -> None:
    warm(client, user)
    changed = User.objects.get(pk=user.pk)
    changed.delivery_email = "prince@example.com"
    changed.save(update_fields=["delivery_email"])
    assert_unauthorized(me(client, "Hamlet@Example.com", user.api_key), "Invalid API key")
    body = json_body(me(client, "prince@example.com", user.api_key), 200)
    assert body["delivery_email"] == "prince@example.com"


def test_deleted_user_is_gone_at_once(
    client: Client, user: User, shared_redis: redis.Redis
) -> None:
    warm(client, user)
    User.objects.get(pk=user.pk).delete()
    assert_unauthorized(me(client, user.delivery_email, user.api_key), "Invalid API key")


def test_unrelated_saves_keep_the_entry(
    client: Client, user: User, shared_redis: redis.Redis
) -> None:
    """A login's last_login or a re-hash must not empty the cache."""
    warm(client, user)
    changed = User.objects.get(pk=user.pk)
    changed.set_password("Another-Horse-88")
    changed.save(update_fields=["password", "last_login"])
    _, count = queries(lambda: me(client, user.delivery_email, user.api_key))
    assert count == 0


# --- Races and failures ------------------------------------------------------------


@pytest.mark.parametrize("tokens", ["absent", "present"])
def test_a_change_during_a_miss_is_not_cached_stale(
    user: User, shared_redis: redis.Redis, tokens: str
) -> None:
    """Another server changes the user between this lookup's read and its cache write."""
    from keyhouse.api.basic_auth import _user_for_api_key_from_db

    if tokens == "present":
        api_key_cache.invalidate_email(user.delivery_email)
        api_key_cache.invalidate_realms()
    else:
        shared_redis.flushdb()
    loads: list[User | None] = []

    def load_then_change(email: str, api_key: str) -> User | None:
        found = _user_for_api_key_from_db(email, api_key)
        set_active(User.objects.get(pk=user.pk), False)  # commits after our read
        loads.append(found)
        return found

    stale = api_key_cache.get_user(user.delivery_email, user.api_key, load_then_change)
    assert stale is not None and stale.is_active  # what the read saw …
    fresh = api_key_cache.get_user(
        user.delivery_email, user.api_key, lambda e, k: loads.append(None) or None
    )
    assert len(loads) == 2 and fresh is None  # … was not cached: the next call loads again


def test_without_redis_every_call_reads_the_database(
    client: Client, settings: Settings, user: User
) -> None:
    settings.REDIS_URL = ""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert not api_key_cache.enabled()
    for _ in range(2):
        response, count = queries(lambda: me(client, user.delivery_email, user.api_key))
        assert response.status_code == 200 and count > 0


def test_unreachable_cache_falls_back_to_the_database(
    client: Client, settings: Settings, user: User, shared_redis: redis.Redis
) -> None:
    settings.CACHES = redis_cache("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert api_key_cache.enabled()
    for _ in range(2):
        assert json_body(me(client, user.delivery_email, user.api_key), 200)["user_id"] == user.id
    # A revocation the cache cannot be told of is refused, not carried out halfway.
    with pytest.raises(DependencyUnavailable):
        set_active(User.objects.get(pk=user.pk), False)
    assert User.objects.get(pk=user.pk).is_active
    assert json_body(me(client, user.delivery_email, user.api_key), 200)["user_id"] == user.id
