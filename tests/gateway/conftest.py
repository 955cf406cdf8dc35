"""The gateway's real stack: `keyhouse serve` (with its own Redis), an echoing upstream, proxies.

Started once per session, only by the tests that ask for them (test_nginx.py,
test_caddy.py, test_clients.py); the unit tests of this folder need none of it.
keyhouse is configured as docs/gateway.md says (the proxies are trusted, one
rule), through its CLI and a config file, never through the ORM: the server
owns its data dir.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import KEYHOUSE, REPO_ROOT, keyhouse_cli, start_server, stop
from tests.faults import ThrowawayRedis
from tests.gateway.proxies import Caddy, Nginx
from tests.gateway.upstream import EchoServer

ARTIFACTS = REPO_ROOT / "test-artifacts" / "gateway"
CONFIG = """\
TRUSTED_PROXIES = ["127.0.0.1/32"]
USE_X_FORWARDED_HOST = true
# A budget small enough for a test to exhaust it (api_by_user, per user).
RATE_LIMITING_RULES = { api_by_user = [[60, 40]] }

[[GATEWAY_RULES]]
path = "/admin/"
roles = ["owner", "admin"]
"""


@dataclass
class Keyhouse:
    """The running server, and how to reach its CLI with the server's own settings."""

    base_url: str
    data_dir: Path
    env: dict[str, str]
    realm_name: str
    password: str

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def cli(self, *args: str, stdin: str = "") -> str:
        return keyhouse_cli(self.data_dir, *args, stdin=stdin, env=self.env)

    def add_user(self, email: str, full_name: str, role: str = "member") -> str:
        """A user with the shared password; returns the email."""
        self.cli("user", "create", "--realm", "", "--email", email, "--full-name", full_name,
                 "--role", role, "--password-stdin", stdin=self.password)  # fmt: skip
        return email


@pytest.fixture(scope="session")
def gateway_keyhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyhouse]:
    """`keyhouse serve --workers 2` with a throwaway Redis: the API-key cache and limits on."""
    if not KEYHOUSE.exists():
        pytest.fail(f"{KEYHOUSE} not found: run `make .venv/.installed`")
    base = tmp_path_factory.mktemp("gateway")
    redis_dir = base / "redis"
    redis_dir.mkdir()
    redis = ThrowawayRedis(dir=redis_dir)
    redis.start()
    config = base / "keyhouse.toml"
    config.write_text(CONFIG)
    env = {"KEYHOUSE_REDIS_URL": redis.url, "KEYHOUSE_CONFIG": str(config)}
    data_dir = base / "data"
    realm_name = f"Gateway {secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)  # passes the strength policy; safe to type on a tty
    server = Keyhouse("", data_dir, env, realm_name, password)
    server.cli(
        "realm", "create", "--subdomain", "", "--name", realm_name, "--auth-methods", "email"
    )
    server.cli("realm", "set", "--subdomain", "", "--gateway-sessions", "on")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "keyhouse.log"
    log.unlink(missing_ok=True)
    proc, server.base_url = start_server(data_dir, realm_name, log, env=env)
    try:
        yield server
    finally:
        stop(proc)
        redis.stop()


@pytest.fixture(scope="session")
def upstream() -> Iterator[EchoServer]:
    server = EchoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nginx(
    gateway_keyhouse: Keyhouse, upstream: EchoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nginx]:
    """Debian's nginx running docs/gateway.md's recipe, in front of keyhouse and the upstream."""
    proxy = Nginx(dir=tmp_path_factory.mktemp("nginx"))
    proxy.start(gateway_keyhouse.port, upstream.port)
    try:
        yield proxy
    finally:
        proxy.stop()
        _keep_log(proxy.dir / "error.log", "nginx-error.log")


@pytest.fixture(scope="session")
def caddy(
    gateway_keyhouse: Keyhouse, upstream: EchoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Caddy]:
    proxy = Caddy(dir=tmp_path_factory.mktemp("caddy"))
    try:
        proxy.start(gateway_keyhouse.port, upstream.port)
    except FileNotFoundError as exc:
        from tests.ci import missing

        missing(str(exc))
    try:
        yield proxy
    finally:
        proxy.stop()
        _keep_log(proxy.log, "caddy.log")


def _keep_log(path: Path, name: str) -> None:
    if path.exists():
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / name).write_bytes(path.read_bytes())
