"""Timing does not reveal accounts: medians on a real server, real Argon2 parameters.

Statistical, not a wall-clock threshold: the kinds are interleaved and only their
medians are compared with each other, so a slow or busy machine slows all alike.
"""

from __future__ import annotations

import secrets
import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import ARTIFACTS, keyhouse_cli, start_server, stop

PASSWORD = "Timing-Is-Everything-4"
ROUNDS = 25
TOLERANCE = 1.25  # the slowest median may exceed the fastest by at most 25 %


@pytest.mark.e2e
def test_failure_medians_match(tmp_path: Path) -> None:
    env = {
        "KEYHOUSE_ARGON2_MEMORY_COST": "19456",  # the shipped defaults: hashing dominates
        "KEYHOUSE_ARGON2_TIME_COST": "2",
        "KEYHOUSE_HIDE_ACCOUNT_STATE": "true",
        "KEYHOUSE_RATE_LIMITING_AUTHENTICATE": "false",
    }
    data_dir = tmp_path / "data"
    realm = f"timing {secrets.token_hex(3)}"
    keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", realm, env=env)
    for email in ("known@example.com", "gone@example.com"):
        keyhouse_cli(data_dir, "user", "create", "--realm", "", "--email", email,
                     "--full-name", "T", "--password-stdin", stdin=PASSWORD, env=env)  # fmt: skip
    keyhouse_cli(data_dir, "user", "deactivate", "--realm", "", "--email", "gone@example.com",
                 env=env)  # fmt: skip
    keyhouse_cli(data_dir, "user", "create", "--realm", "", "--email", "sso@example.com",
                 "--full-name", "S", env=env)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proc, base_url = start_server(data_dir, realm, ARTIFACTS / "timing.log", env=env)
    kinds = {
        "wrong password": "known@example.com",
        "unknown": "nobody@example.com",
        "deactivated": "gone@example.com",
        "no usable password": "sso@example.com",
    }
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    bodies: dict[str, set[tuple[int, bytes]]] = {kind: set() for kind in kinds}
    try:
        with httpx.Client(trust_env=False, timeout=30) as client:
            url = f"{base_url}/api/v1/fetch_api_key"
            for _ in range(3):  # warm both workers up
                client.post(url, data={"username": "known@example.com", "password": "x1"})
            for _ in range(ROUNDS):
                for kind, username in kinds.items():
                    started = time.perf_counter()
                    r = client.post(url, data={"username": username, "password": "Guess-123!"})
                    samples[kind].append(time.perf_counter() - started)
                    bodies[kind].add((r.status_code, r.content))
    finally:
        stop(proc)
    assert len({frozenset(b) for b in bodies.values()}) == 1, bodies
    medians = {kind: statistics.median(s) for kind, s in samples.items()}
    (ARTIFACTS / "timing-medians.txt").write_text(
        "\n".join(f"{k}: {v * 1000:.1f} ms" for k, v in medians.items()) + "\n"
    )
    assert max(medians.values()) <= TOLERANCE * min(medians.values()), medians
