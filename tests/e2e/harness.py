"""Start and stop a real ``keyhouse serve``, and run its CLI, for the e2e tests.

Everything here talks to keyhouse over HTTP or through its CLI, never through the
ORM, so the e2e tests need no Django test database: the server owns its data dir.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CLIENTS_VENV = REPO_ROOT / ".venv-clients"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"
KEYHOUSE = Path(sys.executable).with_name("keyhouse")

EMAIL = "Alice@Example.com"  # mixed case on purpose: logins must match it case-insensitively
FULL_NAME = "Alice Example"
# The HTTP server `keyhouse serve` runs in these tests (server_env passes it on).
SERVED_BY = os.environ.get("KEYHOUSE_SERVER") or "gunicorn"
STARTUP_TIMEOUT = 60.0
SHUTDOWN_GRACE = 15.0


class Server(NamedTuple):
    """What a test needs to reach the running server and its one user."""

    base_url: str
    email: str
    password: str
    data_dir: Path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: no pytest, keyhouse or zulip leftovers.

    PYTEST_* variables hang zulip-term 0.7.0; inherited KEYHOUSE_* settings (a
    database URL, an external host) would point the server elsewhere; ZULIP_*
    variables override a zuliprc; a proxy would intercept loopback requests.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "KEYHOUSE_", "ZULIP_", "PROMETHEUS_"))
        and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Cheap hashing unless a test says otherwise (``extra`` overrides).

    ``KEYHOUSE_SERVER`` is passed on: ``KEYHOUSE_SERVER=granian pytest tests/e2e``
    runs every served test under granian instead of gunicorn.
    """
    env = {
        "KEYHOUSE_DATA_DIR": str(data_dir),
        "KEYHOUSE_ARGON2_MEMORY_COST": "1024",
        "KEYHOUSE_ARGON2_TIME_COST": "1",
    }
    if os.environ.get("KEYHOUSE_SERVER"):
        env["KEYHOUSE_SERVER"] = os.environ["KEYHOUSE_SERVER"]
    env.update(extra)
    return clean_env(**env)


def keyhouse_cli(
    data_dir: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> str:
    """Run ``keyhouse ARGS`` against ``data_dir``; fail the test with its output if it fails."""
    result = subprocess.run(
        [str(KEYHOUSE), *args],
        input=stdin,
        env=server_env(data_dir, **(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        command = " ".join(args)
        pytest.fail(
            f"keyhouse {command} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def create_realm(data_dir: Path, name: str) -> None:
    keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", name,
                 "--auth-methods", "email")  # fmt: skip


def create_user(data_dir: Path, email: str, full_name: str, password: str) -> None:
    keyhouse_cli(data_dir, "user", "create", "--realm", "", "--email", email,
                 "--full-name", full_name, "--password-stdin", stdin=password)  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers: TERM the process group, KILL it if it lingers."""
    for sig, grace in ((signal.SIGTERM, SHUTDOWN_GRACE), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    try:  # the master may be gone while a worker of its group is not
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _serving(proc: subprocess.Popen[bytes], base_url: str, realm_name: str) -> bool:
    """True once *our* server answers server_settings; False if it exited first.

    The realm name is checked so that a stranger who grabbed the port in between
    cannot pass for our server.
    """
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                response = client.get(f"{base_url}/api/v1/server_settings")
                if response.status_code == 200 and response.json()["realm_name"] == realm_name:
                    return True
            except (httpx.TransportError, ValueError, KeyError):
                pass
            time.sleep(0.1)
    stop(proc)
    pytest.fail(f"keyhouse serve did not answer within {STARTUP_TIMEOUT:.0f}s (log: {ARTIFACTS})")


def start_server(
    data_dir: Path,
    realm_name: str,
    log: Path,
    env: dict[str, str] | None = None,
    port: int | None = None,
    workers: int = 2,
) -> tuple[subprocess.Popen[bytes], str]:
    """``keyhouse serve --workers 2`` (or ``workers``) on a free loopback port, in its own
    process group."""
    for _attempt in range(3):  # the free port may be taken before the server binds it
        chosen = port or free_port()
        base_url = f"http://127.0.0.1:{chosen}"
        with log.open("ab") as log_fh:
            proc = subprocess.Popen(
                [
                    str(KEYHOUSE),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(chosen),
                    "--workers",
                    str(workers),
                ],  # fmt: skip
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                env=server_env(data_dir, **(env or {})),
                start_new_session=True,  # its own process group, so stop() gets the workers
            )
        if _serving(proc, base_url, realm_name):
            return proc, base_url
        stop(proc)
    pytest.fail(f"keyhouse serve kept exiting at startup; log:\n{log.read_text()}")
