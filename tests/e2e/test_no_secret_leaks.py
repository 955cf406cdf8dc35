"""Secrets never leak: after a whole session, no log line, error body or file holds one."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import ARTIFACTS, keyhouse_cli, start_server, stop


@pytest.mark.e2e
def test_passwords_and_keys_appear_nowhere(tmp_path: Path) -> None:
    password = "Leak-Canary-" + secrets.token_hex(8)
    wrong = "Wrong-Canary-" + secrets.token_hex(8)
    env = {"KEYHOUSE_LOG_LEVEL": "DEBUG"}
    data_dir = tmp_path / "data"
    realm = f"leaks {secrets.token_hex(3)}"
    outputs = [
        keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", realm, env=env),
        keyhouse_cli(data_dir, "user", "create", "--realm", "", "--email", "canary@example.com",
                     "--full-name", "Canary", "--password-stdin", stdin=password, env=env),
    ]  # fmt: skip
    log = ARTIFACTS / "leaks.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    proc, base_url = start_server(data_dir, realm, log, env=env)
    error_bodies: list[str] = []
    keys: list[str] = []
    try:
        with httpx.Client(trust_env=False, timeout=30, base_url=base_url) as client:

            def note(response: httpx.Response) -> httpx.Response:
                if response.status_code >= 400:
                    error_bodies.append(response.text + str(response.headers))
                return response

            fetch = "/api/v1/fetch_api_key"
            note(client.post(fetch, data={"username": "canary@example.com", "password": wrong}))
            # Credentials in the query string, as Zulip allows: the access log keeps no query.
            r = note(client.post(f"{fetch}?username=canary@example.com&password={password}"))
            keys.append(r.json()["api_key"])
            note(client.get("/api/v1/users/me", auth=("canary@example.com", keys[0] + "x")))
            note(client.get("/api/v1/users/me", auth=("canary@example.com", keys[0][::-1])))
            note(client.get("/api/v1/users/me", auth=("someone@example.com", keys[0])))
            note(client.get("/api/v1/users/me", auth=("canary@example.com", keys[0])))
            r = note(client.post("/api/v1/users/me/api_key/regenerate",
                                 auth=("canary@example.com", keys[0])))  # fmt: skip
            keys.append(r.json()["api_key"])
            note(client.get("/api/v1/users/me", auth=("canary@example.com", keys[0])))
            note(client.post(fetch, data={"username": "nobody@example.com", "password": password}))
            note(
                client.post(fetch, data={"username": "canary@example.com", "password": "p" * 5000})
            )
            note(client.get(f"/api/v1/nope?password={password}&api_key={keys[1]}"))
        outputs.append(keyhouse_cli(data_dir, "user", "list", "--realm", "", "--json", env=env))
        outputs.append(
            keyhouse_cli(
                data_dir,
                "user",
                "regenerate-api-key",
                "--realm",
                "",
                "--email",
                "canary@example.com",
                env=env,
            )  # fmt: skip
        )
        outputs.append(keyhouse_cli(data_dir, "audit", "list", "--json", env=env))
    finally:
        stop(proc)

    server_log = log.read_text(errors="replace")
    assert "POST /api/v1/fetch_api_key" in server_log  # the log did record the session
    database = b"".join(p.read_bytes() for p in data_dir.glob("keyhouse.sqlite3*"))
    for secret in (password, wrong, *keys):
        assert secret not in server_log
        assert not any(secret in body for body in error_bodies)
        assert not any(secret in out for out in outputs)
    for plaintext in (password, wrong):  # keys are stored by design; passwords never
        assert plaintext.encode() not in database
