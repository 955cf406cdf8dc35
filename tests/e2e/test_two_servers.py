"""Two real servers sharing one PostgreSQL database and one Redis act as one.

Each server has its own data dir (so its own secret key and nothing else in
common): what they share is exactly what ``KEYHOUSE_DATABASE_URL`` and
``KEYHOUSE_REDIS_URL`` name, as on a fleet behind a load balancer.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests.conftest import redis_or_fail
from tests.e2e.harness import ARTIFACTS, KEYHOUSE, keyhouse_cli, server_env, start_server, stop

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/11"
PASSWORD = "Shared-By-Two-Servers-8"


class Fleet(NamedTuple):
    a: str  # base URLs
    b: str
    data_dir: Path  # server A's, where the CLI runs too
    env: dict[str, str]


def _admin_connection():  # type: ignore[no-untyped-def]
    try:
        import psycopg
    except ImportError:
        pytest.fail("psycopg is missing: `make test` installs the postgres extra")
    try:
        return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {POSTGRES_ADMIN_URL} does not answer ({exc}); run `make services`"
        )


@pytest.fixture(scope="module")
def shared_env() -> Iterator[dict[str, str]]:
    """A throwaway database (dropped at the end) and an emptied Redis db."""
    import redis

    redis.Redis.from_url(redis_or_fail(REDIS_URL)).flushdb()
    name = f"keyhouse_e2e_{secrets.token_hex(6)}"
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "KEYHOUSE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}",
            "KEYHOUSE_REDIS_URL": REDIS_URL,
        }
    finally:
        with _admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, shared_env: dict[str, str]) -> Iterator[Fleet]:
    data_a = tmp_path_factory.mktemp("server-a")
    data_b = tmp_path_factory.mktemp("server-b")
    realm = f"Fleet {secrets.token_hex(3)}"
    keyhouse_cli(data_a, "realm", "create", "--subdomain", "", "--name", realm,
                 "--auth-methods", "email", env=shared_env)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proc_a, url_a = start_server(data_a, realm, ARTIFACTS / "fleet-a.log", env=shared_env)
    try:
        proc_b, url_b = start_server(data_b, realm, ARTIFACTS / "fleet-b.log", env=shared_env)
        try:
            yield Fleet(url_a, url_b, data_a, shared_env)
        finally:
            stop(proc_b)
    finally:
        stop(proc_a)


def new_user(fleet: Fleet) -> str:
    email = f"Person-{secrets.token_hex(4)}@Example.com"
    keyhouse_cli(fleet.data_dir, "user", "create", "--realm", "", "--email", email,
                 "--full-name", "Fleet Person", "--password-stdin", stdin=PASSWORD,
                 env=fleet.env)  # fmt: skip
    return email


def login(base_url: str, email: str, password: str = PASSWORD) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=30) as client:
        return client.post(
            f"{base_url}/api/v1/fetch_api_key", data={"username": email, "password": password}
        )


def users_me(base_url: str, email: str, api_key: str) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=30) as client:
        return client.get(f"{base_url}/api/v1/users/me", auth=(email, api_key))


def assert_refused(response: httpx.Response, msg: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["msg"] == msg


def cached_entries() -> int:
    import redis

    return len(redis.Redis.from_url(REDIS_URL).keys("keyhouse:*:apikey:entry:*"))


@pytest.mark.e2e
def test_login_limit_is_shared(fleet: Fleet) -> None:
    """Wrong passwords alternated between the servers: 5 are checked, the 6th refused on both."""
    email = new_user(fleet)
    statuses = [login(url, email, "Wrong-Guess-123").status_code for url in [fleet.a, fleet.b] * 3]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    assert login(fleet.a, email, "Wrong-Guess-123").status_code == 429
    assert login(fleet.a, email).status_code == 429  # even the right password, as in Zulip


@pytest.mark.e2e
def test_regenerated_key_on_one_server_is_dead_on_the_other(fleet: Fleet) -> None:
    email = new_user(fleet)
    old = login(fleet.a, email).json()["api_key"]
    before = cached_entries()
    for _ in range(2):  # B caches the old key, then answers from its cache
        assert users_me(fleet.b, email, old).status_code == 200
    assert cached_entries() == before + 1

    with httpx.Client(trust_env=False, timeout=30) as client:
        response = client.post(f"{fleet.a}/api/v1/users/me/api_key/regenerate", auth=(email, old))
    new = response.json()["api_key"]
    assert new != old

    assert_refused(users_me(fleet.b, email, old), "Invalid API key")
    assert_refused(users_me(fleet.a, email, old), "Invalid API key")
    assert users_me(fleet.b, email, new).json()["email"] == email
    assert users_me(fleet.a, email, new).status_code == 200


@pytest.mark.e2e
def test_user_deactivation_shows_on_both_at_once(fleet: Fleet) -> None:
    email = new_user(fleet)
    key = login(fleet.b, email).json()["api_key"]
    for url in (fleet.a, fleet.b, fleet.a, fleet.b):  # both caches warm
        assert users_me(url, email, key).status_code == 200

    keyhouse_cli(fleet.data_dir, "user", "deactivate", "--realm", "", "--email", email,
                 env=fleet.env)  # fmt: skip
    for url in (fleet.a, fleet.b):
        assert_refused(users_me(url, email, key), "Account is deactivated")

    keyhouse_cli(fleet.data_dir, "user", "reactivate", "--realm", "", "--email", email,
                 env=fleet.env)  # fmt: skip
    for url in (fleet.a, fleet.b):
        assert users_me(url, email, key).json()["is_active"] is True


@pytest.mark.e2e
def test_realm_deactivation_shows_on_both_at_once(fleet: Fleet) -> None:
    email = new_user(fleet)
    key = login(fleet.a, email).json()["api_key"]
    for url in (fleet.a, fleet.b, fleet.a, fleet.b):
        assert users_me(url, email, key).status_code == 200

    keyhouse_cli(fleet.data_dir, "realm", "deactivate", "--subdomain", "", env=fleet.env)
    try:
        for url in (fleet.a, fleet.b):
            assert_refused(users_me(url, email, key), "This organization has been deactivated")
    finally:
        keyhouse_cli(fleet.data_dir, "realm", "reactivate", "--subdomain", "", env=fleet.env)
    for url in (fleet.a, fleet.b):
        assert users_me(url, email, key).status_code == 200


@pytest.mark.e2e
def test_servers_starting_together_migrate_once(tmp_path: Path, shared_env: dict[str, str]) -> None:
    """Every command migrates first; on a fresh shared database only one may do it."""
    name = f"keyhouse_e2e_{secrets.token_hex(6)}"
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {
            **shared_env,
            "KEYHOUSE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}",
        }
        procs = [
            subprocess.Popen(
                [str(KEYHOUSE), "realm", "list", "--json"],
                env=server_env(tmp_path / f"data-{i}", **env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(3)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
        assert [(code, out.strip()) for code, out, _ in results] == [(0, "[]")] * 3, results
    finally:
        with _admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
