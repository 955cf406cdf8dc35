"""Limits and the hashing pool hold on a real multi-worker server, for both stores."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import redis_or_fail
from tests.e2e.harness import ARTIFACTS, keyhouse_cli, start_server, stop

PASSWORD = "Tested-Across-Workers-3"
REDIS_URL = "redis://127.0.0.1:6379/14"


def start(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[object, str]:
    data_dir = tmp_path / "data"
    realm = f"{name} {secrets.token_hex(3)}"
    keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", realm, env=env)
    keyhouse_cli(data_dir, "user", "create", "--realm", "", "--email", "target@example.com",
                 "--full-name", "Target", "--password-stdin", stdin=PASSWORD, env=env)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return start_server(data_dir, realm, ARTIFACTS / f"{name}.log", env=env)


@pytest.fixture(params=["database", "redis"])
def store_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "redis":
        import redis

        redis.Redis.from_url(redis_or_fail(REDIS_URL)).flushdb()
        yield {"KEYHOUSE_REDIS_URL": REDIS_URL}
    else:
        yield {}


@pytest.mark.e2e
def test_username_limit_is_exact_under_concurrency(
    tmp_path: Path, store_env: dict[str, str]
) -> None:
    """20 simultaneous wrong guesses over 2 workers: exactly 5 are checked, 15 refused."""
    proc, base_url = start(tmp_path, "concurrent-limit", store_env)
    try:

        def attempt(_: int) -> int:
            with httpx.Client(trust_env=False, timeout=30) as client:
                return client.post(
                    f"{base_url}/api/v1/fetch_api_key",
                    data={"username": "target@example.com", "password": "wrong guess"},
                ).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = Counter(pool.map(attempt, range(20)))
        assert statuses == {401: 5, 429: 15}
    finally:
        stop(proc)


@pytest.mark.e2e
def test_api_keys_keep_working_during_a_password_flood(tmp_path: Path) -> None:
    """A flood of logins gets fast 503s beyond the pool; API-key requests all succeed."""
    env = {
        # Costly hashing and one slot, so 48 simultaneous logins are far beyond capacity.
        "KEYHOUSE_ARGON2_MEMORY_COST": "65536",
        "KEYHOUSE_ARGON2_TIME_COST": "3",
        "KEYHOUSE_HASHING_SLOTS": "1",
        "KEYHOUSE_RATE_LIMITING_AUTHENTICATE": "false",
    }
    proc, base_url = start(tmp_path, "flood", env)
    try:
        with httpx.Client(trust_env=False, timeout=30) as client:
            key = client.post(
                f"{base_url}/api/v1/fetch_api_key",
                data={"username": "target@example.com", "password": PASSWORD},
            ).json()["api_key"]

        def login(_: int) -> int:
            with httpx.Client(trust_env=False, timeout=60) as client:
                return client.post(
                    f"{base_url}/api/v1/fetch_api_key",
                    data={"username": "target@example.com", "password": PASSWORD},
                ).status_code

        def users_me(_: int) -> int:
            with httpx.Client(trust_env=False, timeout=60) as client:
                return client.get(
                    f"{base_url}/api/v1/users/me", auth=("target@example.com", key)
                ).status_code

        with ThreadPoolExecutor(max_workers=56) as pool:
            logins = pool.map(login, range(48))
            api = pool.map(users_me, range(8))
            login_statuses, api_statuses = Counter(logins), Counter(api)
        assert api_statuses == {200: 8}
        assert set(login_statuses) <= {200, 503}, login_statuses
        assert login_statuses[503] > 0 and login_statuses[200] > 0, login_statuses
    finally:
        stop(proc)
