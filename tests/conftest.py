"""Shared fixtures: cheap hashing, a realm, users, and an HTTP client helper."""

from __future__ import annotations

import base64
import io
import os
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from keyhouse.cli import main as keyhouse_main
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import User

pytest_plugins = ["tests.ldap_fixtures"]

# --- `make test-fast`: what needs no service -------------------------------------
# A test needs services (slapd, a Redis, a PostgreSQL cluster, Chromium, nginx, a running
# keyhouse) when it lives in one of these folders, uses one of these fixtures, or
# says so with @pytest.mark.services. `make test-fast` runs `-m "not services"`.
SERVICE_DIRS = {"e2e", "browser", "db", "proxy"}
SERVICE_FIXTURES = {
    "slapd",
    "slapd_server",
    "throwaway_redis",
    "throwaway_postgres",
    "shared_redis",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "services: needs slapd, Redis, PostgreSQL or a browser (not in test-fast)"
    )
    config.addinivalue_line("markers", "slow: starts and kills real servers (not in test-fast)")


def _needs_services(item: pytest.Item) -> bool:
    parts = Path(str(item.path)).relative_to(Path(__file__).parent).parts
    if len(parts) > 1 and parts[0] in SERVICE_DIRS:
        return True
    if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("ratelimit_store") == "redis"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _needs_services(item):
            item.add_marker(pytest.mark.services)


# --- end test-fast ---

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


EXTERNAL_HOST = "example.org"


@pytest.fixture
def external_host(settings: Settings) -> str:
    """Turn on subdomain routing: realm ``x`` lives at ``x.example.org``."""
    settings.EXTERNAL_HOST = EXTERNAL_HOST
    return EXTERNAL_HOST


@pytest.fixture
def other_realm(realm: Realm, external_host: str) -> Realm:
    """A second, subdomain realm next to the root one, with email logins on."""
    return Realm.objects.create(
        subdomain="other", name="Other Org", authentication_methods=["email"]
    )


def age(user: User, seconds: float = 3600) -> User:
    """Backdate the account: Zulip sends no login email in an account's first minute."""
    user.date_joined = timezone.now() - timedelta(seconds=seconds)
    user.save(update_fields=["date_joined"])
    return user


@pytest.fixture
def old_user(user: User) -> User:
    return age(user)


@pytest.fixture
def no_pruning(settings: Settings) -> None:
    """Audit counts must not depend on a random prune (AUDIT_PRUNE_EVERY)."""
    settings.AUDIT_PRUNE_EVERY = 0


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: None) -> Cli:
    """Run ``keyhouse ARGS`` in-process with ``stdin``: (exit code, stdout, stderr)."""

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()  # drop anything printed before this command
        code = keyhouse_main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


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


def redis_cache(url: str) -> dict[str, Any]:
    """CACHES as keyhouse sets it for a Redis URL (settings.py)."""
    return {
        "default": {
            "BACKEND": "keyhouse.cache_backend.KeyhouseRedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "keyhouse",
        }
    }


def use_redis(settings: Settings, url: str) -> None:
    """keyhouse configured as KEYHOUSE_REDIS_URL would: the limits and the cache in Redis."""
    settings.REDIS_URL = url
    settings.CACHES = redis_cache(url)


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
