"""The ``keyhouse`` command: the interface operators and scripts rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keyhouse.realms.models import Realm
from keyhouse.users.models import User

KEYHOUSE = Path(sys.executable).with_name("keyhouse")


def test_realm_lifecycle(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("realm", "create", "--subdomain", "", "--name", "Root")[0] == 0
    code, _, _ = cli(
        "realm", "create", "--subdomain", "chat", "--name", "Chat", "--auth-methods", "email,dev"
    )
    assert code == 0
    code, out, _ = cli("realm", "list", "--json")
    rows = json.loads(out)
    assert [(r["subdomain"], r["auth_methods"]) for r in rows] == [
        ("", ["email"]),
        ("chat", ["email", "dev"]),
    ]
    assert cli("realm", "deactivate", "--subdomain", "chat")[0] == 0
    assert Realm.objects.get(subdomain="chat").deactivated
    assert cli("realm", "reactivate", "--subdomain", "chat")[0] == 0
    assert not Realm.objects.get(subdomain="chat").deactivated
    assert cli("realm", "set-auth-methods", "--subdomain", "chat", "--auth-methods", "ldap")[0] == 0
    assert Realm.objects.get(subdomain="chat").authentication_methods == ["ldap"]
    code, out, _ = cli("realm", "list")
    assert code == 0 and "chat" in out and '""' in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("realm", "create", "--subdomain", "", "--name", "Again"), "already exists"),
        (("realm", "create", "--subdomain", "Bad_Sub!", "--name", "X"), "invalid subdomain"),
        (
            ("realm", "create", "--subdomain", "x", "--name", "X", "--auth-methods", "kerberos"),
            "unknown authentication method",
        ),
        (("realm", "deactivate", "--subdomain", "missing"), "no realm"),
        (("realm", "set-auth-methods", "--subdomain", "", "--auth-methods", "nope"), "unknown"),
    ],
)
def test_realm_errors_are_one_line(cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    cli("realm", "create", "--subdomain", "", "--name", "Root")
    code, out, err = cli(*args)
    assert code == 1
    assert message in err
    assert err.count("\n") == 1 and err.startswith("keyhouse: error: ")


def test_user_lifecycle(cli) -> None:  # type: ignore[no-untyped-def]
    cli("realm", "create", "--subdomain", "", "--name", "Root")
    code, out, err = cli(
        "user",
        "create",
        "--realm",
        "",
        "--email",
        "Ann@Example.com",
        "--full-name",
        "Ann",
        "--role",
        "admin",
        "--password-stdin",
        stdin="Sturdy-Pass-93\n",
    )
    assert (code, err) == (0, "")
    ann = User.objects.get(delivery_email="Ann@Example.com")
    assert ann.role == 200 and ann.check_password("Sturdy-Pass-93")

    assert (
        cli("user", "create", "--realm", "", "--email", "sso@example.com", "--full-name", "Sso")[0]
        == 0
    )
    assert not User.objects.get(delivery_email="sso@example.com").has_usable_password()

    assert (
        cli(
            "user",
            "set-password",
            "--realm",
            "",
            "--email",
            "ann@example.com",
            "--password-stdin",
            stdin="Another-Pass-55\r\n",
        )[0]
        == 0
    )
    ann.refresh_from_db()
    assert ann.check_password("Another-Pass-55")

    old_key = ann.api_key
    code, out, _ = cli("user", "regenerate-api-key", "--realm", "", "--email", "ann@example.com")
    ann.refresh_from_db()
    assert code == 0 and ann.api_key != old_key
    assert ann.api_key not in out and old_key not in out

    assert cli("user", "deactivate", "--realm", "", "--email", "ANN@example.com")[0] == 0
    ann.refresh_from_db()
    assert not ann.is_active
    assert cli("user", "reactivate", "--realm", "", "--email", "ann@example.com")[0] == 0
    ann.refresh_from_db()
    assert ann.is_active

    code, out, _ = cli("user", "list", "--realm", "", "--json")
    rows = json.loads(out)
    assert [(r["email"], r["role"], r["has_password"]) for r in rows] == [
        ("Ann@Example.com", "admin", True),
        ("sso@example.com", "member", False),
    ]
    assert "Another-Pass-55" not in out and ann.api_key not in out
    code, out, _ = cli("user", "list", "--realm", "")
    assert code == 0 and "Ann@Example.com" in out


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ("user", "create", "--realm", "nope", "--email", "a@example.com", "--full-name", "A"),
            "",
            "no realm",
        ),
        (
            ("user", "create", "--realm", "", "--email", "taken@EXAMPLE.com", "--full-name", "A"),
            "",
            "already exists",
        ),
        (
            ("user", "create", "--realm", "", "--email", "not-an-email", "--full-name", "A"),
            "",
            "invalid email",
        ),
        (
            (
                "user",
                "create",
                "--realm",
                "",
                "--email",
                "w@example.com",
                "--full-name",
                "W",
                "--password-stdin",
            ),
            "password\n",
            "too weak",
        ),
        (
            (
                "user",
                "create",
                "--realm",
                "",
                "--email",
                "w@example.com",
                "--full-name",
                "W",
                "--password-stdin",
            ),
            "",
            "no password",
        ),
        (
            (
                "user",
                "set-password",
                "--realm",
                "",
                "--email",
                "taken@example.com",
                "--password-stdin",
            ),
            "123456\n",
            "too weak",
        ),
        (("user", "deactivate", "--realm", "", "--email", "ghost@example.com"), "", "no user"),
    ],
)
def test_user_errors_are_one_line(cli, args: tuple[str, ...], stdin: str, message: str) -> None:  # type: ignore[no-untyped-def]
    cli("realm", "create", "--subdomain", "", "--name", "Root")
    cli(
        "user",
        "create",
        "--realm",
        "",
        "--email",
        "taken@example.com",
        "--full-name",
        "T",
        "--password-stdin",
        stdin="Sturdy-Pass-93",
    )
    code, _, err = cli(*args, stdin=stdin)
    assert code == 1
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "password\n" not in err and "123456" not in err


def test_works_on_empty_data_dir_as_a_real_process(tmp_path: Path) -> None:
    """A fresh install: the first command migrates on its own; errors never show tracebacks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYHOUSE_", "PYTEST_"))}
    env["KEYHOUSE_DATA_DIR"] = str(tmp_path / "data")

    def keyhouse(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KEYHOUSE), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    listed = keyhouse("realm", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    assert (tmp_path / "data" / "keyhouse.sqlite3").exists()
    bad = keyhouse("user", "list", "--realm", "missing")
    assert bad.returncode == 1
    assert bad.stderr == "keyhouse: error: no realm with subdomain 'missing'\n"
    usage = keyhouse("realm", "frobnicate")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
