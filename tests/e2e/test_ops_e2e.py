"""A real two-worker ``keyhouse serve``: metrics add up over workers, SIGTERM drains.

Both need gunicorn's real processes: a scrape reaches one worker, so only a count
that includes the other worker's requests proves the multiprocess mode; and only
a real master can be sent SIGTERM while a worker is busy.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import ARTIFACTS, keyhouse_cli, start_server, stop

PASSWORD = "Ops-Tested-Password-5"
EMAIL = "ops@example.com"
ROUTE = "/api/v1/server_settings"
GRACEFUL_TIMEOUT = 20.0  # ops/serve.py


def start(
    tmp_path: Path, name: str, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str, Path]:
    data_dir = tmp_path / "data"
    realm = f"{name} {secrets.token_hex(3)}"
    keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", realm, env=env)
    keyhouse_cli(data_dir, "user", "create", "--realm", "", "--email", EMAIL,
                 "--full-name", "Ops", "--password-stdin", stdin=PASSWORD, env=env)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"{name}.log"
    log.unlink(missing_ok=True)
    proc, base_url = start_server(data_dir, realm, log, env=env)
    return proc, base_url, log


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One server for the module's tests: JSON logs, two workers."""
    tmp_path = tmp_path_factory.mktemp("ops-json")
    proc, base_url, log = start(tmp_path, "ops-json", {"KEYHOUSE_LOG_FORMAT": "json"})
    try:
        yield base_url, log
    finally:
        stop(proc)


def requests_total(metrics_text: str) -> float:
    """keyhouse_http_requests_total for successful GETs of ROUTE, from a scrape."""
    pattern = (
        r'^keyhouse_http_requests_total\{code="",method="GET",'
        rf'route="{re.escape(ROUTE)}",status="2xx"\}} (\S+)$'
    )
    match = re.search(pattern, metrics_text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def access_lines(log: Path, prefix: str) -> list[dict[str, object]]:
    entries = []
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue  # gunicorn's own boot/shutdown lines stay plain text
        entry = json.loads(line)
        if entry.get("logger") == "keyhouse.access" and str(entry["request_id"]).startswith(prefix):
            entries.append(entry)
    return entries


@pytest.mark.e2e
def test_metrics_count_every_workers_requests(json_server: tuple[str, Path]) -> None:
    """N requests served by both workers; one scrape (one worker) reports all N."""
    base_url, log = json_server
    prefix = f"e2e-{secrets.token_hex(4)}-"
    with httpx.Client(trust_env=False, timeout=10) as client:
        before = requests_total(client.get(f"{base_url}/metrics").text)

    def fetch(i: int) -> int:
        # A connection of its own each, so that either worker may accept it.
        with httpx.Client(trust_env=False, timeout=10) as client:
            headers = {"X-Request-ID": f"{prefix}{i}"}
            return client.get(f"{base_url}{ROUTE}", headers=headers).status_code

    sent = 0
    pids: set[object] = set()
    for _batch in range(5):  # which worker accepts is the kernel's choice: retry a little
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(fetch, range(sent, sent + 40))) == {200}
        sent += 40
        time.sleep(0.2)  # let the log lines reach the file
        pids = {e["pid"] for e in access_lines(log, prefix)}
        if len(pids) == 2:
            break
    assert len(pids) == 2, f"all {sent} requests went to one worker; nothing proven"
    assert len(access_lines(log, prefix)) == sent

    with httpx.Client(trust_env=False, timeout=10) as client:
        response = client.get(f"{base_url}/metrics")
    assert response.status_code == 200
    assert requests_total(response.text) - before == sent
    assert "keyhouse_hashing_queue_length" in response.text


@pytest.mark.e2e
def test_json_logs_have_request_ids_and_no_secrets(json_server: tuple[str, Path]) -> None:
    """Credentials in the query string, the body and the Authorization header stay out."""
    base_url, log = json_server
    prefix = f"e2e-{secrets.token_hex(4)}-"
    with httpx.Client(trust_env=False, timeout=10) as client:
        response = client.post(
            f"{base_url}/api/v1/fetch_api_key",
            params={"username": EMAIL, "password": PASSWORD},
            headers={"X-Request-ID": f"{prefix}login"},
        )
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == f"{prefix}login"
        api_key = response.json()["api_key"]
        me = client.get(
            f"{base_url}/api/v1/users/me",
            auth=(EMAIL, api_key),
            headers={"X-Request-ID": f"{prefix}me"},
        )
        assert me.status_code == 200
        generated = client.get(f"{base_url}/health").headers["X-Request-ID"]
    time.sleep(0.2)  # let the log lines reach the file
    by_id = {e["request_id"]: e for e in access_lines(log, prefix)}
    assert by_id[f"{prefix}login"]["route"] == "/api/v1/fetch_api_key"
    assert by_id[f"{prefix}me"]["route"] == "/api/v1/users/me"
    assert by_id[f"{prefix}me"]["status"] == 200
    assert access_lines(log, generated)  # a made-up id is logged too
    text = log.read_text()
    for secret in (PASSWORD, api_key, "Authorization", "Basic "):
        assert secret not in text


@pytest.mark.e2e
def test_sigterm_lets_an_inflight_login_finish(tmp_path: Path) -> None:
    """SIGTERM to the master mid-login: the login still gets its 200, the server exits 0."""
    env = {
        # 0.5–1 s per verification (the user's hash is made with these parameters).
        "KEYHOUSE_ARGON2_MEMORY_COST": "65536",
        "KEYHOUSE_ARGON2_TIME_COST": "8",
        "KEYHOUSE_RATE_LIMITING_AUTHENTICATE": "false",
    }
    proc, base_url, _log = start(tmp_path, "ops-graceful", env)
    try:
        result: dict[str, object] = {}

        def login() -> None:
            with httpx.Client(trust_env=False, timeout=30) as client:
                try:
                    response = client.post(
                        f"{base_url}/api/v1/fetch_api_key",
                        data={"username": EMAIL, "password": PASSWORD},
                    )
                    result["status"] = response.status_code
                    result["body"] = response.json()
                except httpx.HTTPError as exc:
                    result["error"] = repr(exc)
                result["at"] = time.monotonic()

        thread = threading.Thread(target=login)
        thread.start()
        time.sleep(0.2)  # the request is accepted and hashing
        os.kill(proc.pid, signal.SIGTERM)  # the gunicorn master only, as systemd does
        signalled_at = time.monotonic()
        thread.join(30)

        assert "error" not in result, result
        assert result["status"] == 200
        assert result["body"]["api_key"]  # type: ignore[index]
        assert result["at"] > signalled_at, "the login ended before SIGTERM: nothing proven"
        assert proc.wait(timeout=GRACEFUL_TIMEOUT) == 0
        assert time.monotonic() - signalled_at < GRACEFUL_TIMEOUT
    finally:
        stop(proc)
