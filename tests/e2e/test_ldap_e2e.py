"""LDAP end to end: a real `keyhouse serve` reading its LDAP settings from a TOML file,
a real slapd, zulip-term typed at on a pty, and the `keyhouse ldap` commands.

The in-process tests (tests/auth/test_ldap_*.py) check the semantics; these check that
the pieces fit when deployed as an operator would: config file, CLI, gunicorn workers,
a client that reads server_settings to decide what to ask for, and a directory that
goes away and comes back.
"""

from __future__ import annotations

import atexit
import json
import secrets
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests.e2e.harness import (
    ARTIFACTS,
    KEYHOUSE,
    keyhouse_cli,
    server_env,
    start_server,
    stop,
)
from tests.e2e.test_real_clients import CRASHED, SAVED, fetch_api_key, run_zulip_term
from tests.ldap_fixtures import keyhouse_ldap_config, ready, toml_text
from tests.ldap_server import HAMLET_PASSWORD, OPHELIA_PASSWORD, Slapd, user_dn

pytestmark = pytest.mark.e2e

OUTAGE = {
    "result": "error",
    "msg": "The login directory is not reachable right now; try again in a few minutes",
    "code": "LDAP_UNAVAILABLE",
}


class LdapKeyhouse(NamedTuple):
    """A running server whose only login method is LDAP, and how to reach its CLI."""

    base_url: str
    data_dir: Path
    env: dict[str, str]
    log: Path


@pytest.fixture(scope="module")
def ldap_keyhouse(
    slapd_server: Slapd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LdapKeyhouse]:
    """`keyhouse serve` configured by a TOML file, as docs/ldap.md tells operators to.

    Module-scoped, so it is started once; it needs only the session's slapd to be
    running (its URI never changes), and each test asks for `slapd` to get it running
    and holding the base data.
    """
    ready(slapd_server)
    workdir = tmp_path_factory.mktemp("keyhouse-ldap")
    config = workdir / "keyhouse.toml"
    config.write_text(toml_text(keyhouse_ldap_config(slapd_server, "append_domain")))
    config.chmod(0o600)  # it holds the bind password
    env = {"KEYHOUSE_CONFIG": str(config)}
    data_dir = workdir / "data"
    realm_name = f"LDAP E2E {secrets.token_hex(4)}"
    keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", realm_name,
                 "--auth-methods", "ldap", env=env)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "ldap-server.log"
    log.unlink(missing_ok=True)
    proc, base_url = start_server(data_dir, realm_name, log, env=env)
    atexit.register(stop, proc)  # a second line of defence if teardown never runs
    try:
        yield LdapKeyhouse(base_url, data_dir, env, log)
    finally:
        stop(proc)


def post_login(base_url: str, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/v1/fetch_api_key",
        data={"username": username, "password": password},
        trust_env=False,
        timeout=30,
    )


def test_zulip_term_logs_in_with_ldap_username(
    clients_venv: Path, ldap_keyhouse: LdapKeyhouse, slapd: Slapd, tmp_path: Path,
    artifact_dir: Path,
) -> None:  # fmt: skip
    """server_settings makes zulip-term ask for a Username; the bare LDAP name works."""
    base_url = ldap_keyhouse.base_url
    settings = httpx.get(f"{base_url}/api/v1/server_settings", trust_env=False).json()
    assert settings["require_email_format_usernames"] is False
    assert settings["email_auth_enabled"] is False
    assert settings["authentication_methods"]["ldap"] is True

    run = run_zulip_term(
        clients_venv, base_url, tmp_path, [("hamlet", HAMLET_PASSWORD)],
        artifact_dir / "transcript.txt",
    )  # fmt: skip
    assert run.returncode == 0
    assert "Username: " in run.transcript
    assert "Email: " not in run.transcript  # neither "Email: " nor "Email or Username: "
    assert SAVED in run.transcript and CRASHED not in run.transcript

    mode = stat.S_IMODE(run.zuliprc.stat().st_mode)
    assert mode == 0o600, oct(mode)
    body = fetch_api_key(base_url, "hamlet@example.com", HAMLET_PASSWORD)
    assert body["email"] == "hamlet@example.com"
    assert len(body["api_key"]) == 32
    assert run.zuliprc.read_text() == (
        f"[api]\nemail=hamlet\nkey={body['api_key']}\nsite={base_url}"
    )


def test_ldap_commands_against_the_servers_data(ldap_keyhouse: LdapKeyhouse, slapd: Slapd) -> None:
    """`keyhouse ldap test` and `ldap sync` read the same config file and data dir."""
    data_dir, env = ldap_keyhouse.data_dir, ldap_keyhouse.env
    shown = json.loads(keyhouse_cli(data_dir, "ldap", "test", "ophelia", env=env))
    assert (shown["ldap_username"], shown["dn"]) == ("ophelia", user_dn("ophelia"))
    assert (shown["email"], shown["full_name"]) == ("ophelia@example.com", "Ophelia")
    assert shown["attributes"]["mail"] == ["ophelia@example.com"]
    assert "userPassword" not in shown["attributes"]
    assert shown["keyhouse_user"] is None

    response = post_login(ldap_keyhouse.base_url, "ophelia", OPHELIA_PASSWORD)
    assert response.status_code == 200, response.text
    user_id = response.json()["user_id"]
    shown = json.loads(keyhouse_cli(data_dir, "ldap", "test", "ophelia", env=env))
    assert shown["keyhouse_user"] == {"user_id": user_id, "is_active": True}

    users = json.loads(keyhouse_cli(data_dir, "user", "list", "--realm", "", "--json", env=env))
    assert user_id in [u["user_id"] for u in users]
    out = keyhouse_cli(data_dir, "ldap", "sync", env=env)
    assert out.splitlines() == [
        f"0 renamed, 0 deactivated, 0 reactivated, 0 not found, {len(users)} unchanged"
    ]


def test_directory_outage_and_recovery(ldap_keyhouse: LdapKeyhouse, slapd: Slapd) -> None:
    """Down: a prompt 503 that costs no attempts, logged without the password. Back: logins."""
    base_url, log = ldap_keyhouse.base_url, ldap_keyhouse.log
    before = post_login(base_url, "hamlet", HAMLET_PASSWORD)
    assert before.status_code == 200, before.text

    slapd.stop()
    for _ in range(6):  # one more than the per-username limit (5 in 30 minutes)
        started = time.monotonic()
        response = post_login(base_url, "hamlet", HAMLET_PASSWORD)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.json() == OUTAGE
        assert response.headers["Retry-After"] == "30"
        assert elapsed < 2.0, f"took {elapsed:.1f}s"  # below LDAP_CONNECT_TIMEOUT: no waiting

    text = log.read_text(errors="replace")
    assert f"LDAP directory unavailable at {slapd.uri} (search_for_user_dn): SERVER_DOWN" in text
    assert HAMLET_PASSWORD not in text

    # The operator's tools say so too, and change nothing.
    result = subprocess.run(
        [str(KEYHOUSE), "ldap", "sync"],
        env=server_env(ldap_keyhouse.data_dir, **ldap_keyhouse.env),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[-1] == (
        "keyhouse: error: LDAP directory unavailable (SERVER_DOWN); nothing was changed"
    )

    slapd.start()
    after = post_login(base_url, "hamlet", HAMLET_PASSWORD)
    assert after.status_code == 200, after.text  # the six 503s were not counted
    assert after.json()["api_key"] == before.json()["api_key"]
    assert HAMLET_PASSWORD not in log.read_text(errors="replace")
