"""The data dir: created on first use, 0700, its files 0600, whatever the umask (data_dir.py).

Everything runs the installed ``keyhouse`` in a child process with an operator's
usual umask (022), as an install would (issue #12, B5 and D9).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import KEYHOUSE, create_realm, create_user, server_env, start_server, stop

pytestmark = pytest.mark.skipif(not KEYHOUSE.exists(), reason="keyhouse is not installed")

EMAIL = "modes@example.com"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def operator_umask() -> Iterator[None]:
    """Children inherit umask 022: what keyhouse creates would be 0755/0644 unless it sees to it."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def run_keyhouse(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEYHOUSE), *args],
        env=server_env(data_dir, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("secret_key", ["", "a-secret-key-from-the-environment"])
def test_cli_creates_a_missing_data_dir(
    tmp_path: Path, operator_umask: None, secret_key: str
) -> None:
    """With the secret key set, nothing made the data dir: "unable to open database file"."""
    data_dir = tmp_path / "not" / "yet" / "there"
    extra = {"KEYHOUSE_SECRET_KEY": secret_key} if secret_key else {}
    result = run_keyhouse(data_dir, "realm", "list", **extra)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "keyhouse.sqlite3") == 0o600


def test_everything_in_the_data_dir_is_private(tmp_path: Path, operator_umask: None) -> None:
    """A served login's database (and its -wal and -shm) and its mail are for our user only."""
    data_dir = tmp_path / "data"
    realm_name = f"Modes {secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    create_realm(data_dir, realm_name)
    create_user(data_dir, EMAIL, "Modes Test", password)
    with sqlite3.connect(data_dir / "keyhouse.sqlite3") as db:  # not "just created": mail it
        db.execute("UPDATE users_user SET date_joined = '2020-01-01 00:00:00'")
    db.close()
    proc, base_url = start_server(data_dir, realm_name, tmp_path / "server.log")
    try:
        response = httpx.post(
            f"{base_url}/api/v1/fetch_api_key",
            data={"username": EMAIL, "password": password},
            trust_env=False,
        )
        assert response.status_code == 200, response.text
        emails = data_dir / "emails"
        deadline = time.monotonic() + 10  # the new-login mail goes out from a thread
        while time.monotonic() < deadline and not any(emails.glob("*")):
            time.sleep(0.05)
        db = data_dir / "keyhouse.sqlite3"
        paths = {
            data_dir: 0o700,
            data_dir / "secret_key": 0o600,
            db: 0o600,
            db.with_name(db.name + "-wal"): 0o600,  # the server is running: they exist
            db.with_name(db.name + "-shm"): 0o600,
            emails: 0o700,
        }
        mails = list(emails.glob("*"))
        assert mails, "the new-login mail was not written"
        paths.update(dict.fromkeys(mails, 0o600))
        assert {str(p): oct(mode(p)) for p in paths} == {str(p): oct(m) for p, m in paths.items()}
    finally:
        stop(proc)


def test_an_older_world_readable_data_dir_is_tightened(
    tmp_path: Path, operator_umask: None
) -> None:
    """A data dir made by an earlier version (0755, files 0644) is private after any command."""
    data_dir = tmp_path / "data"
    assert run_keyhouse(data_dir, "realm", "list").returncode == 0
    db = data_dir / "keyhouse.sqlite3"
    loose = [db, db.with_name(db.name + "-wal"), data_dir / "secret_key"]
    loose[1].touch()
    (data_dir / "emails").mkdir(exist_ok=True)
    for path in loose:
        path.chmod(0o644)
    for path in (data_dir, data_dir / "emails"):
        path.chmod(0o755)
    result = run_keyhouse(data_dir, "realm", "list")
    assert result.returncode == 0, result.stderr
    assert [oct(mode(p)) for p in (data_dir, data_dir / "emails")] == ["0o700", "0o700"]
    # SQLite removes the -wal when its last connection closes: gone is private too.
    assert [oct(mode(p)) for p in loose if p.exists()] == ["0o600"] * len(
        [p for p in loose if p.exists()]
    )
    assert loose[0].exists() and loose[2].exists()
