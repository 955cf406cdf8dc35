"""Real Zulip clients against a real keyhouse: zulip-term logs in, python `zulip` uses the key.

The unit tests check the wire format; these check that the clients people actually run
accept it end to end (zulip-clients.md §6.8). zulip-term is typed at on a pty, as a
person would, with the login in a different case than the stored email.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from tests.e2e.harness import ARTIFACTS, FULL_NAME, Server, clean_env, create_user, keyhouse_cli

pytestmark = pytest.mark.e2e

DRIVER = Path(__file__).with_name("zt_pty_login.py")
REFUSED = "Incorrect Email(or Username) or Password!"
SAVED = "Generated API key saved at"
CRASHED = "Zulip Terminal has crashed!"

# Runs in the clients' venv: print get_profile() of a client built from a zuliprc.
PROFILE_SCRIPT = """
import json, sys, zulip
print(json.dumps(zulip.Client(config_file=sys.argv[1]).get_profile()))
"""


class ZtRun(NamedTuple):
    """One zulip-term login: the driver's exit code, what the terminal showed, the zuliprc."""

    returncode: int
    transcript: str
    zuliprc: Path


def run_zulip_term(
    clients_venv: Path,
    base_url: str,
    workdir: Path,
    attempts: list[tuple[str, str]],
    transcript: Path,
) -> ZtRun:
    """Type URL, then each (login, password) attempt, into zulip-term on a pty."""
    zuliprc = workdir / "zuliprc"
    credentials = [item for attempt in attempts for item in attempt]
    driver = [sys.executable, str(DRIVER), "--transcript", str(transcript), "--timeout", "90"]
    transcript.unlink(missing_ok=True)  # never read a previous run's transcript
    result = subprocess.run(
        # "--": a random password may start with "-" and must not read as an option.
        [
            *driver,
            "--",
            str(clients_venv / "bin" / "zulip-term"),
            base_url,
            str(zuliprc),
            *credentials,
        ],  # fmt: skip
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_env(HOME=str(workdir)),
        timeout=120,  # the driver bounds itself at 90 s; this bounds the driver
    )
    shown = transcript.read_text() if transcript.exists() else ""
    print(shown, result.stderr, sep="\n")  # pytest shows this when the test fails
    return ZtRun(result.returncode, shown, zuliprc)


def profile_from_zuliprc(clients_venv: Path, zuliprc: Path) -> dict[str, Any]:
    """`zulip.Client(config_file=zuliprc).get_profile()`, run by the real library."""
    result = subprocess.run(
        [str(clients_venv / "bin" / "python"), "-c", PROFILE_SCRIPT, str(zuliprc)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_env(HOME=str(zuliprc.parent)),  # no stray ~/.zuliprc
        timeout=60,
    )
    assert result.returncode == 0, f"zulip client failed:\n{result.stdout}{result.stderr}"
    profile: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return profile


def fetch_api_key(base_url: str, username: str, password: str) -> dict[str, Any]:
    """The key the server hands out, asked for directly (no client in between)."""
    response = httpx.post(
        f"{base_url}/api/v1/fetch_api_key",
        data={"username": username, "password": password},
        trust_env=False,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def write_zuliprc(path: Path, email: str, key: str, site: str) -> Path:
    """A hand-made zuliprc in zulip-term's exact format (mode 0600, as it requires)."""
    path.write_text(f"[api]\nemail={email}\nkey={key}\nsite={site}")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def alice_login(
    clients_venv: Path, keyhouse_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> ZtRun:
    """One zulip-term login as alice, typed in lower case; shared by the tests that only read it."""
    workdir = tmp_path_factory.mktemp("zt-alice")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return run_zulip_term(
        clients_venv,
        keyhouse_server.base_url,
        workdir,
        [(keyhouse_server.email.lower(), keyhouse_server.password)],
        ARTIFACTS / "zulip-term-login.txt",
    )


def test_zulip_term_login_writes_zuliprc(keyhouse_server: Server, alice_login: ZtRun) -> None:
    """zulip-term gets the server's key and stores it with the login as typed, privately."""
    typed_login = keyhouse_server.email.lower()
    assert typed_login != keyhouse_server.email  # the case really differs
    assert alice_login.returncode == 0
    assert SAVED in alice_login.transcript
    assert CRASHED not in alice_login.transcript

    mode = stat.S_IMODE(alice_login.zuliprc.stat().st_mode)
    assert mode == 0o600, oct(mode)
    base_url, email, password, _ = keyhouse_server
    key = fetch_api_key(base_url, email, password)["api_key"]
    assert len(key) == 32
    assert alice_login.zuliprc.read_text() == (
        f"[api]\nemail={typed_login}\nkey={key}\nsite={base_url}"
    )


def test_zulip_term_wrong_password_then_right(
    clients_venv: Path, keyhouse_server: Server, tmp_path: Path, artifact_dir: Path
) -> None:
    """A 401 makes zulip-term say so and ask again; the retry with the right password works."""
    login = keyhouse_server.email.lower()
    run = run_zulip_term(
        clients_venv,
        keyhouse_server.base_url,
        tmp_path,
        [(login, keyhouse_server.password + "-wrong"), (login, keyhouse_server.password)],
        artifact_dir / "transcript.txt",
    )
    assert run.returncode == 0
    assert run.transcript.count(REFUSED) == 1
    assert SAVED in run.transcript
    assert run.transcript.index(REFUSED) < run.transcript.index(SAVED)
    key = fetch_api_key(keyhouse_server.base_url, login, keyhouse_server.password)["api_key"]
    assert f"\nkey={key}\n" in run.zuliprc.read_text()


def test_zulip_client_uses_zuliprc(
    clients_venv: Path, keyhouse_server: Server, alice_login: ZtRun
) -> None:
    """The python library authenticates with zulip-term's zuliprc (login in the typed case)."""
    assert alice_login.returncode == 0, "zulip-term login failed; see its test"
    expected = fetch_api_key(
        keyhouse_server.base_url, keyhouse_server.email, keyhouse_server.password
    )
    profile = profile_from_zuliprc(clients_venv, alice_login.zuliprc)
    assert profile["result"] == "success", profile
    assert profile["email"] == keyhouse_server.email == expected["email"]
    assert profile["user_id"] == expected["user_id"]
    assert profile["full_name"] == FULL_NAME


def test_zulip_client_wrong_key(
    clients_venv: Path, keyhouse_server: Server, tmp_path: Path
) -> None:
    """A wrong key gets Zulip's error, which the library hands back rather than raising."""
    base_url, email, password, _ = keyhouse_server
    key = fetch_api_key(base_url, email, password)["api_key"]
    wrong = ("x" if key[0] != "x" else "y") * 32
    zuliprc = write_zuliprc(tmp_path / "zuliprc", email.lower(), wrong, base_url)
    profile = profile_from_zuliprc(clients_venv, zuliprc)
    assert profile["result"] == "error", profile
    assert profile["msg"] == "Invalid API key"
    assert profile["code"] == "UNAUTHORIZED"


def test_regenerated_key_invalidates_old_zuliprc(
    clients_venv: Path, keyhouse_server: Server, tmp_path: Path, artifact_dir: Path
) -> None:
    """After regenerate, the zuliprc zulip-term wrote stops working and the new key works.

    Uses its own user so the shared alice key stays valid for the other tests.
    """
    base_url, _, _, data_dir = keyhouse_server
    email, password = "Bob@Example.com", keyhouse_server.password[::-1]
    create_user(data_dir, email, "Bob Example", password)
    assert "Bob@Example.com" in keyhouse_cli(data_dir, "user", "list", "--realm", "")

    run = run_zulip_term(
        clients_venv,
        base_url,
        tmp_path,
        [(email.lower(), password)],
        artifact_dir / "transcript.txt",
    )
    assert run.returncode == 0
    old_key = fetch_api_key(base_url, email, password)["api_key"]
    assert f"\nkey={old_key}\n" in run.zuliprc.read_text()
    assert profile_from_zuliprc(clients_venv, run.zuliprc)["result"] == "success"

    response = httpx.post(
        f"{base_url}/api/v1/users/me/api_key/regenerate",
        auth=(email.lower(), old_key),
        trust_env=False,
    )
    assert response.status_code == 200, response.text
    new_key = response.json()["api_key"]
    assert len(new_key) == 32 and new_key != old_key

    stale = profile_from_zuliprc(clients_venv, run.zuliprc)
    assert stale["result"] == "error", stale
    assert stale["msg"] == "Invalid API key"
    assert stale["code"] == "UNAUTHORIZED"

    assert fetch_api_key(base_url, email, password)["api_key"] == new_key
    fresh = write_zuliprc(tmp_path / "zuliprc-new", email.lower(), new_key, base_url)
    profile = profile_from_zuliprc(clients_venv, fresh)
    assert profile["result"] == "success", profile
    assert profile["email"] == email
