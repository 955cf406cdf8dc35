"""Configuration: defaults < the TOML file named by KEYHOUSE_CONFIG < KEYHOUSE_* variables.

Precedence and parsing are the loader's (keyhouse/config_keys.py), a pure function
tested directly; one child process checks that settings.py assembles Django's
settings from it, and that importing the settings creates no file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from keyhouse.config_keys import KEYS, ConfigError, load_values

ROOT = Path(__file__).resolve().parents[1]


def values(toml: str = "", **env: str) -> dict[str, Any]:
    return load_values(env, tomllib.loads(toml), "keyhouse.toml")


# --- precedence ------------------------------------------------------------------


def test_defaults() -> None:
    v = values()
    assert v["EXTERNAL_HOST"] == "" and v["ARGON2_MEMORY_COST"] == 19456
    assert v["ZULIP_FEATURE_LEVEL"] == 371 and v["ZULIP_MERGE_BASE"] == "10.0"
    assert v["TRUSTED_PROXIES"] == [] and v["HIDE_ACCOUNT_STATE"] is False
    assert v["ALLOWED_HOSTS"] == ["*"] and v["DATABASE_URL"] == ""
    assert v["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert v["DEFAULT_FROM_EMAIL"] == "keyhouse <noreply@localhost>"
    assert v["EMAIL_USE_TLS"] is True and v["LOG_FORMAT"] == "plain"


def test_every_key_has_a_value() -> None:
    assert set(values()) == {key.name for key in KEYS}


def test_file_beats_defaults() -> None:
    v = values(
        'EXTERNAL_HOST = "Avianforum.ca"\nARGON2_MEMORY_COST = 47104\n'
        "TRUSTED_PROXIES = ['10.0.0.0/8']\nHIDE_ACCOUNT_STATE = true\n"
        "[RATE_LIMITING_RULES]\nauthenticate_by_username = [[600, 3]]\n"
    )
    assert v["EXTERNAL_HOST"] == "avianforum.ca" and v["ARGON2_MEMORY_COST"] == 47104
    assert v["TRUSTED_PROXIES"] == ["10.0.0.0/8"] and v["HIDE_ACCOUNT_STATE"] is True
    assert v["RATE_LIMITING_RULES"] == {"authenticate_by_username": [[600, 3]]}


def test_environment_beats_file() -> None:
    v = values(
        'EXTERNAL_HOST = "file.example"\nZULIP_FEATURE_LEVEL = 300\n',
        KEYHOUSE_EXTERNAL_HOST="env.example",
        KEYHOUSE_ZULIP_FEATURE_LEVEL="400",
    )
    assert v["EXTERNAL_HOST"] == "env.example" and v["ZULIP_FEATURE_LEVEL"] == 400


@pytest.mark.parametrize(
    ("name", "file_value", "env_value", "expected"),
    [
        # These read their variable only as the default, so the file won (issue #13).
        ("ALLOWED_HOSTS", '["file.example"]', "a.example, b.example", ["a.example", "b.example"]),
        ("TRUSTED_PROXIES", '["10.0.0.0/8"]', "192.0.2.1/32", ["192.0.2.1/32"]),
        ("METRICS_ALLOWED_IPS", '["10.0.0.0/8"]', "::1,127.0.0.1", ["::1", "127.0.0.1"]),
    ],
)
def test_list_variables_beat_the_file_too(
    name: str, file_value: str, env_value: str, expected: list[str]
) -> None:
    assert values(f"{name} = {file_value}\n", **{f"KEYHOUSE_{name}": env_value})[name] == expected
    assert values(f"{name} = {file_value}\n")[name] == tomllib.loads(f"x = {file_value}")["x"]


def test_every_variable_beats_the_file() -> None:
    """The one precedence holds for every key that has a variable, whatever its type."""
    examples: dict[type, tuple[str, str, Any]] = {
        str: ('"from-file"', "from-env", "from-env"),
        int: ("7", "9", 9),
        float: ("7.5", "9.5", 9.5),
        bool: ("false", "true", True),
        list: ('["file"]', "env", ["env"]),
    }
    for key in KEYS:
        if key.env is None:
            continue
        toml, raw, expected = examples[key.type]
        if key.name == "LOG_FORMAT":
            toml, raw, expected = '"plain"', "json", "json"
        if key.name == "SERVER":
            toml, raw, expected = '"gunicorn"', "granian", "granian"
        got = values(f"{key.name} = {toml}\n", **{key.env: raw})[key.name]
        assert got == (expected.upper() if key.name == "LOG_LEVEL" else expected), key.name


def test_derived_defaults_follow_the_final_values() -> None:
    v = values('ZULIP_VERSION = "11.2"\nEMAIL_USE_SSL = true\n', KEYHOUSE_EMAIL_HOST="smtp.x")
    assert v["ZULIP_MERGE_BASE"] == "11.2"
    assert v["EMAIL_USE_TLS"] is False
    assert v["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    v = values(KEYHOUSE_EXTERNAL_HOST="Example.ORG ", KEYHOUSE_ZULIP_MERGE_BASE="10.0-1")
    assert v["DEFAULT_FROM_EMAIL"] == "keyhouse <noreply@example.org>"
    assert v["ZULIP_MERGE_BASE"] == "10.0-1"


def test_defaults_are_not_shared_between_loads() -> None:
    values()["ROOT_SUBDOMAIN_ALIASES"].append("mutated")
    assert values()["ROOT_SUBDOMAIN_ALIASES"] == ["www"]


# --- parsing of variables ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("Yes", True), (" on ", True),
     ("0", False), ("false", False), ("no", False), ("OFF", False), ("", False)],
)  # fmt: skip
def test_boolean_variables(raw: str, expected: bool) -> None:
    assert values(KEYHOUSE_DEV_MODE=raw)["DEV_MODE"] is expected


@pytest.mark.parametrize(
    ("env", "raw", "words"),
    [
        ("KEYHOUSE_DEV_MODE", "ture", "KEYHOUSE_DEV_MODE must be one of 1, true"),
        ("KEYHOUSE_ZULIP_FEATURE_LEVEL", "abc", "KEYHOUSE_ZULIP_FEATURE_LEVEL must be an integer"),
        ("KEYHOUSE_ARGON2_TIME_COST", "2.5", "KEYHOUSE_ARGON2_TIME_COST must be an integer"),
        ("KEYHOUSE_HASHING_MAX_WAIT", "soon", "KEYHOUSE_HASHING_MAX_WAIT must be a number"),
        ("KEYHOUSE_LOG_FORMAT", "xml", 'LOG_FORMAT must be "plain" or "json"'),
        ("KEYHOUSE_SERVER", "uwsgi", 'SERVER must be "gunicorn" or "granian"'),
    ],
)
def test_wrong_variables_are_refused_in_one_line(env: str, raw: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        values(**{env: raw})
    assert words in str(caught.value) and raw not in str(caught.value).replace(words, "")


def test_list_variables_are_comma_separated() -> None:
    assert values(KEYHOUSE_ALLOWED_HOSTS=" a.example ,,b.example,")["ALLOWED_HOSTS"] == [
        "a.example",
        "b.example",
    ]
    assert values(KEYHOUSE_TRUSTED_PROXIES="")["TRUSTED_PROXIES"] == []


def test_numbers_from_the_file_are_floats_where_seconds() -> None:
    v = values("LDAP_CONNECT_TIMEOUT = 4\n", KEYHOUSE_DATABASE_STATEMENT_TIMEOUT="1.5")
    assert v["LDAP_CONNECT_TIMEOUT"] == 4.0 and isinstance(v["LDAP_CONNECT_TIMEOUT"], float)
    assert v["DATABASE_STATEMENT_TIMEOUT"] == 1.5


def test_wrong_file_types_are_refused() -> None:
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES must be an array, not a string"):
        values('TRUSTED_PROXIES = "10.0.0.0/8"\n')


# --- settings.py, in a child process ---------------------------------------------------


def child_env(tmp_path: Path, toml: str, **env: str) -> dict[str, str]:
    config = tmp_path / "keyhouse.toml"
    config.write_text(toml)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KEYHOUSE_", "PYTEST_"))}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    clean.update(
        KEYHOUSE_DATA_DIR=str(tmp_path / "data"),
        KEYHOUSE_CONFIG=str(config),
        PYTHONPATH=str(ROOT / "src"),
        **env,
    )
    return clean


PROBE = (
    "import json, keyhouse.settings as s; print(json.dumps({"
    "'rules': s.RATE_LIMITING_RULES, 'host': s.EXTERNAL_HOST, 'hosts': s.ALLOWED_HOSTS,"
    "'db': s.DATABASES['default']['ENGINE'],"
    "'db_options': s.DATABASES['default'].get('OPTIONS', {})}))"
)


def test_settings_assemble_djangos_settings_from_the_values(tmp_path: Path) -> None:
    env = child_env(
        tmp_path,
        'EXTERNAL_HOST = "File.example"\nALLOWED_HOSTS = ["file.example"]\n'
        "DATABASE_CONNECT_TIMEOUT = 5\n"
        "[RATE_LIMITING_RULES]\nauthenticate_by_username = [[600, 3]]\n",
        KEYHOUSE_ALLOWED_HOSTS="env.example",
        KEYHOUSE_DATABASE_URL="postgresql://u@127.0.0.1:5432/x?options=-c%20search_path%3Dkh",
        KEYHOUSE_DATABASE_STATEMENT_TIMEOUT="1.5",
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    s = json.loads(out)
    assert s["rules"]["authenticate_by_username"] == [[600, 3]]
    assert s["rules"]["api_by_user"] == [[60, 200]]  # untouched defaults stay
    assert s["host"] == "file.example" and s["hosts"] == ["env.example"]
    assert s["db"] == "keyhouse.db.postgresql"  # bounded waits (keyhouse/db/postgresql/)
    options = s["db_options"]
    assert options["connect_timeout"] == 5
    # The URL's own startup options stay; the timeout comes last, so it wins.
    assert options["options"] == "-c search_path=kh -c statement_timeout=1500"
    assert options["keepalives"] == 1 and options["keepalives_idle"] == 30


def test_importing_the_settings_creates_nothing(tmp_path: Path) -> None:
    """Files are made at start-up (django.setup: keyhouse/apps.py), never by an import."""
    env = child_env(tmp_path, "")
    code = (
        "import keyhouse.settings as s, os, django; "
        "assert not os.path.exists(s.DATA_DIR), 'made by the import'; "
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'keyhouse.settings'; django.setup(); "
        "print(sorted(os.listdir(s.DATA_DIR)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.replace("'", '"')) == ["emails", "keyhouse.sqlite3", "secret_key"]


def test_no_module_changes_settings_at_run_time() -> None:
    """Settings are the loader's values; run-time state lives in its own module."""
    import ast

    offenders = []
    for path in sorted((ROOT / "src" / "keyhouse").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and getattr(target.value, "id", "") == "settings"
                ):
                    offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setattr":
                first = node.args[0] if node.args else None
                if getattr(first, "id", "") == "settings":
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
