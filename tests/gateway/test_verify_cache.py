"""A verify answered from the Redis API-key cache costs no database query, and sees changes at once.

Real Redis (KEYHOUSE_TEST_REDIS_URL, the tests' own database, emptied first), as
servers share it; the database is whichever this run uses (PostgreSQL in the
second pass of `make test`).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from keyhouse.users.actions import regenerate_api_key, set_active
from keyhouse.users.models import Role, User
from tests.api.helpers import json_body
from tests.conftest import basic_auth, redis_or_fail, use_redis
from tests.faults import ThrowawayRedis, throwaway_redis  # noqa: F401 - fixture

VERIFY = "/auth/verify"
FORWARDED = {
    "HTTP_X_ORIGINAL_URI": "/api/v1/messages?anchor=newest",
    "HTTP_X_ORIGINAL_METHOD": "GET",
    "HTTP_X_FORWARDED_HOST": "testserver",
    "HTTP_X_FORWARDED_PROTO": "https",
}


@pytest.fixture
def shared_redis(settings: Settings) -> redis.Redis:
    """Redis as KEYHOUSE_REDIS_URL sets it up: rate limits and the cache, emptied first."""
    url = redis_or_fail()
    use_redis(settings, url)
    client = redis.Redis.from_url(url)
    client.flushdb()
    return client


@pytest.fixture
def behind_nginx(settings: Settings) -> None:
    """As deployed: a trusted proxy asking, and rules to evaluate."""
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    settings.GATEWAY_RULES = [
        {"path": "/admin/", "roles": ["owner", "admin"]},
        {"path": "/api/", "bots": True},
    ]


def verify(client: Client, user: User, key: str | None = None, **extra: Any) -> HttpResponse:
    auth = basic_auth(user.delivery_email, key or user.api_key)
    response: HttpResponse = client.get(VERIFY, **{**FORWARDED, **auth, **extra})
    return response


def test_a_cached_verify_does_no_query(
    client: Client,
    user: User,
    shared_redis: redis.Redis,
    behind_nginx: None,
    django_assert_num_queries: Any,
) -> None:
    first = verify(client, user)
    assert first.status_code == 200
    with django_assert_num_queries(0):
        again = verify(client, user)
    assert again.status_code == 200
    assert {k: again[k] for k in ("Remote-User", "X-Keyhouse-User-Id", "X-Keyhouse-Role")} == {
        k: first[k] for k in ("Remote-User", "X-Keyhouse-User-Id", "X-Keyhouse-Role")
    }


def test_a_cached_rule_refusal_does_no_query(
    client: Client, user: User, shared_redis: redis.Redis, behind_nginx: None
) -> None:
    """The rules read only what the cache holds (realm, role, bot flag)."""
    admin_page = {"HTTP_X_ORIGINAL_URI": "/admin/"}
    verify(client, user, **admin_page)
    with CaptureQueriesContext(connection) as captured:
        response = verify(client, user, **admin_page)
    assert len(captured) == 0, captured.captured_queries
    assert response["X-Keyhouse-Status"] == "403"


def test_a_regenerated_key_is_refused_at_once(
    client: Client, user: User, shared_redis: redis.Redis, behind_nginx: None
) -> None:
    old = user.api_key
    verify(client, user)
    assert verify(client, user).status_code == 200  # cached
    new = regenerate_api_key(User.objects.get(pk=user.pk))
    refused = verify(client, user, key=old)
    assert refused["X-Keyhouse-Status"] == "401"
    assert '"msg":"Invalid API key"' in refused["X-Keyhouse-Error"]
    assert verify(client, user, key=new).status_code == 200


def test_deactivation_and_a_new_role_show_at_once(
    client: Client, user: User, shared_redis: redis.Redis, behind_nginx: None
) -> None:
    admin_page = {"HTTP_X_ORIGINAL_URI": "/admin/"}
    assert verify(client, user, **admin_page)["X-Keyhouse-Status"] == "403"
    fresh = User.objects.get(pk=user.pk)
    fresh.role = Role.ADMINISTRATOR
    fresh.save()
    assert verify(client, user, **admin_page).status_code == 200
    set_active(User.objects.get(pk=user.pk), False)
    response = verify(client, user)
    assert response["X-Keyhouse-Status"] == "401"
    assert '"msg":"Account is deactivated"' in response["X-Keyhouse-Error"]


def test_without_redis_every_verify_reads_the_database(
    client: Client, user: User, settings: Settings, behind_nginx: None
) -> None:
    """The cache is Redis only (users/api_key_cache.py); the database is then the truth."""
    settings.REDIS_URL = ""
    verify(client, user)
    with CaptureQueriesContext(connection) as captured:
        assert json_body(verify(client, user), 200)["user_id"] == user.id
    assert len(captured) >= 1


def test_redis_down_is_a_503_with_retry_after(
    client: Client,
    user: User,
    settings: Settings,
    behind_nginx: None,
    throwaway_redis: ThrowawayRedis,  # noqa: F811
) -> None:
    """The per-user limit fails closed (auth/ratelimit): the proxy passes the 503 on."""
    use_redis(settings, throwaway_redis.url)
    assert verify(client, user).status_code == 200
    throwaway_redis.kill()
    response = verify(client, user)
    assert response.status_code == 401 and response["X-Keyhouse-Status"] == "503"
    assert int(response["Retry-After"]) >= 1
    assert '"code":"SERVICE_UNAVAILABLE"' in response["X-Keyhouse-Error"]
    plain = client.get(VERIFY, **basic_auth(user.delivery_email, user.api_key))
    body = json_body(plain, 503)
    assert body["code"] == "SERVICE_UNAVAILABLE" and int(plain["Retry-After"]) >= 1
