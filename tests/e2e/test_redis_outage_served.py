"""A real ``keyhouse serve`` (2 workers) on a throwaway Redis that is paused, killed and
restarted from a snapshot (issue 12, A): what clients and operators see.

The figures it measures are written to test-artifacts/e2e/redis-outage.json and
quoted in docs/security.md ("Outages of Redis and PostgreSQL").
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import (
    ARTIFACTS,
    EMAIL,
    FULL_NAME,
    KEYHOUSE,
    create_realm,
    create_user,
    server_env,
    start_server,
    stop,
)
from tests.faults import ThrowawayRedis, throwaway_redis  # noqa: F401 - fixture

PASSWORD = "outage-test-passphrase-41"
REALM = "Outage Test"


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@pytest.fixture
def served(tmp_path: Path, throwaway_redis: ThrowawayRedis) -> Iterator[tuple[str, Path, str]]:  # noqa: F811
    data = tmp_path / "data"
    env = {"KEYHOUSE_REDIS_URL": throwaway_redis.url}
    create_realm(data, REALM)
    create_user(data, EMAIL, FULL_NAME, PASSWORD)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "redis-outage-server.log"
    log.write_bytes(b"")
    proc, base_url = start_server(data, REALM, log, env=env)
    try:
        yield base_url, data, str(log)
    finally:
        stop(proc)


def cli(data: Path, redis_url: str, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [str(KEYHOUSE), *args],
        env=server_env(data, KEYHOUSE_REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.monotonic() - started


def test_redis_paused_killed_and_restored_from_a_snapshot(
    served: tuple[str, Path, str],
    throwaway_redis: ThrowawayRedis,  # noqa: F811
) -> None:
    base_url, data, log = served
    figures: dict[str, Any] = {}
    http = httpx.Client(base_url=base_url, trust_env=False, timeout=30)

    def login() -> httpx.Response:
        return http.post("/api/v1/fetch_api_key", data={"username": EMAIL, "password": PASSWORD})

    def me(key: str) -> httpx.Response:
        return http.get("/api/v1/users/me", auth=(EMAIL, key))

    key = login().json()["api_key"]
    for _ in range(3):
        assert me(key).status_code == 200

    # --- Paused (SIGSTOP): a hung Redis ------------------------------------------
    throwaway_redis.pause()
    answers = [timed(lambda: me(key)) for _ in range(20)]
    logins = [timed(login) for _ in range(5)]
    assert {r.status_code for r, _ in answers + logins} == {503}
    for response, _ in answers + logins:
        assert response.json()["code"] == "SERVICE_UNAVAILABLE" and response.headers["Retry-After"]
    durations = sorted(d for _, d in answers)
    figures["paused_users_me"] = {
        "slowest_s": round(durations[-1], 3),
        "median_s": round(durations[len(durations) // 2], 4),
    }
    assert durations[-1] < 3.0  # one socket timeout per worker at most (was 2-4 s each)
    assert durations[len(durations) // 2] < 0.5  # the breaker answers at once
    result, took = cli(data, throwaway_redis.url, "user", "regenerate-api-key",
                       "--realm", "", "--email", EMAIL)  # fmt: skip
    figures["paused_cli_regenerate"] = {"exit": result.returncode, "seconds": round(took, 2)}
    assert result.returncode == 1 and "nothing was changed" in result.stderr

    # --- Resumed: nothing was revoked, so the key still works ----------------------
    throwaway_redis.resume()
    started = time.monotonic()
    while me(key).status_code != 200:
        assert time.monotonic() - started < 10
        time.sleep(0.1)
    figures["resume_to_first_200_s"] = round(time.monotonic() - started, 2)

    # --- Restarted from a snapshot taken before a revocation ----------------------
    for _ in range(2):
        assert me(key).status_code == 200  # cached under the current Redis process
    throwaway_redis.snapshot()
    regenerated = http.post("/api/v1/users/me/api_key/regenerate", auth=(EMAIL, key))
    assert regenerated.status_code == 200
    new_key = regenerated.json()["api_key"]
    assert me(key).status_code == 401
    throwaway_redis.kill()
    throwaway_redis.start()  # the snapshot holds the old key's entry and its token
    statuses = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = me(key).status_code
        statuses.append(status)
        if status != 503:
            break
        time.sleep(0.2)
    figures["snapshot_restore_old_key_statuses"] = statuses
    assert statuses[-1] == 401 and 200 not in statuses
    assert me(new_key).status_code == 200

    # --- Down (killed, nothing listening) -----------------------------------------
    throwaway_redis.kill()
    answers = [timed(lambda: me(new_key)) for _ in range(20)]
    assert {r.status_code for r, _ in answers} == {503}
    durations = sorted(d for _, d in answers)
    figures["down_users_me"] = {"slowest_s": round(durations[-1], 3),
                                "median_s": round(durations[len(durations) // 2], 4)}  # fmt: skip
    assert durations[-1] < 3.0

    text = Path(log).read_text(errors="replace")
    figures["outage_log_lines"] = text.count("redis unavailable")
    assert "Traceback" not in text and " 500 " not in text
    # Logged when a worker's breaker opens, not per request: 25 + 20 requests above.
    assert figures["outage_log_lines"] <= 10
    (ARTIFACTS / "redis-outage.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
