"""The ``keyhouse`` command's surface: every documented command parses; --debug."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from keyhouse.cli import main

REPO = Path(__file__).resolve().parents[1]
DOCUMENTED_IN = [REPO / "README.md", REPO / "docs" / "operations.md", REPO / "docs" / "ldap.md"]


def documented_commands() -> list[tuple[list[str], list[str], str]]:
    """(command words, --flags, source line) for each ``keyhouse ...`` line of a sh block."""
    found = []
    for doc in DOCUMENTED_IN:
        in_block = False
        for line in doc.read_text().splitlines():
            if line.startswith("```"):
                in_block = not in_block
                continue
            if not (in_block and line.startswith("keyhouse ")):
                continue
            usage = line.split("#", 1)[0]
            words = [w for w in usage.split()[1:3] if re.fullmatch(r"[a-z0-9|-]+", w)]
            flags = re.findall(r"--[a-z][a-z0-9-]*", usage)
            group, *rest = words
            for name in rest[0].split("|") if rest else [None]:
                found.append(([group, name] if name else [group], flags, line))
    return found


COMMANDS = documented_commands()


def test_the_docs_list_every_group() -> None:
    """Guards the scan above: a README rewrite that hides the commands fails here."""
    assert {words[0] for words, _, _ in COMMANDS} >= {
        "serve",
        "realm",
        "user",
        "audit",
        "admin",
        "ldap",
    }
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize(
    ("words", "flags", "line"), COMMANDS, ids=[" ".join(w) for w, _, _ in COMMANDS]
)
def test_documented_command_parses(
    words: list[str], flags: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*words, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0, line
    assert out.startswith(f"usage: keyhouse {' '.join(words)} "), out
    for flag in flags:
        assert flag in out, f"{flag} of {line!r} is not in `keyhouse {' '.join(words)} --help`"


@pytest.fixture
def broken_data_dir(tmp_path: Path) -> dict[str, str]:
    """A data dir whose database is not a database: a real unexpected failure."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "keyhouse.sqlite3").write_bytes(b"this is not an SQLite database\n" * 200)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYHOUSE_", "PYTEST_"))}
    env["KEYHOUSE_DATA_DIR"] = str(data)
    return env


def keyhouse(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyhouse.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


ONE_LINE = "keyhouse: error: DatabaseError: file is not a database\n"


def test_unexpected_error_is_one_line(broken_data_dir: dict[str, str]) -> None:
    done = keyhouse(broken_data_dir, "realm", "list")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", ONE_LINE)


@pytest.mark.parametrize(
    ("args", "extra_env"),
    [
        (("--debug", "realm", "list"), {}),
        (("realm", "list"), {"KEYHOUSE_LOG_LEVEL": "DEBUG"}),
        (("realm", "list"), {"KEYHOUSE_LOG_LEVEL": "debug"}),
    ],
)
def test_debug_adds_the_traceback(
    broken_data_dir: dict[str, str], args: tuple[str, ...], extra_env: dict[str, str]
) -> None:
    done = keyhouse({**broken_data_dir, **extra_env}, *args)
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):\n"), done.stderr
    assert "keyhouse/cli/" in done.stderr  # the frames that led there are shown
    assert done.stderr.endswith(ONE_LINE)  # and the one line stays the last one


def test_debug_changes_nothing_else(broken_data_dir: dict[str, str], tmp_path: Path) -> None:
    """An operator's mistake stays one line with --debug: it is not a bug to trace."""
    env = {**broken_data_dir, "KEYHOUSE_DATA_DIR": str(tmp_path / "fresh")}
    done = keyhouse(env, "--debug", "user", "list", "--realm", "missing")
    assert (done.returncode, done.stderr) == (
        1,
        "keyhouse: error: no realm with subdomain 'missing'\n",
    )
    assert keyhouse(env, "--debug", "realm", "list", "--json").stdout == "[]\n"
