"""Shared fixtures: cheap hashing, a realm, users, and an HTTP client helper."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import User

pytest_plugins = ["tests.ldap_fixtures"]

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
PASSWORD = "Correct-Horse-77"


@pytest.fixture(autouse=True)
def cheap_argon2(settings: Settings) -> None:
    """Argon2id still, but with the smallest parameters: tests time logic, not hashing."""
    settings.ARGON2_TIME_COST = 1
    settings.ARGON2_MEMORY_COST = 8
    settings.ARGON2_PARALLELISM = 1
    settings.EMAIL_IN_BACKGROUND = False  # mails land in django.core.mail.outbox at once


@pytest.fixture
def realm(db: None) -> Realm:
    return Realm.objects.create(subdomain="", name="Test Org", authentication_methods=["email"])


@pytest.fixture
def user(realm: Realm) -> User:
    return create_user(realm, "Hamlet@Example.com", "King Hamlet", password=PASSWORD)


def basic_auth(email: str, api_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{email}:{api_key}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


REDIS_TEST_URL = os.environ.get("KEYHOUSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_or_fail(url: str = REDIS_TEST_URL) -> str:
    """The test Redis must answer: `make test` starts one (.ci/ensure-services.sh)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis at {url} does not answer ({exc}); run `make services`")
    return url


# --- PostgreSQL + Redis run (Makefile `test`, second pass) -------------------------
RUN_REDIS_URL = os.environ.get("KEYHOUSE_REDIS_URL", "")


@pytest.fixture(autouse=True)
def fresh_run_redis() -> None:
    """The Redis db named by KEYHOUSE_REDIS_URL belongs to the test run: it is emptied
    before each test, as the database is rolled back after each, so no rate-limit log
    or cached API-key lookup leaks from one test (or an earlier run) into the next."""
    if RUN_REDIS_URL:
        import redis

        redis.Redis.from_url(RUN_REDIS_URL, socket_connect_timeout=2).flushdb()


# --- end PostgreSQL + Redis run ---


@pytest.fixture(autouse=True)
def closed_breakers() -> Iterator[None]:
    """Each test starts with every dependency believed up: an outage a fault test
    caused must not turn the next test's calls into 503s."""
    from keyhouse.redis_client import reset_breakers

    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture(params=["database", "redis"])
def ratelimit_store(request: pytest.FixtureRequest, settings: Settings, db: None) -> str:
    """Run a test once per rate-limit store: one semantics, two stores."""
    if request.param == "redis":
        import redis

        settings.REDIS_URL = redis_or_fail()
        redis.Redis.from_url(settings.REDIS_URL).flushdb()  # db 15 is the tests' own
    else:
        settings.REDIS_URL = ""
    return request.param
