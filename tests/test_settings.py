"""Configuration: defaults < the TOML file named by KEYHOUSE_CONFIG < KEYHOUSE_* variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = (
    "import json, keyhouse.settings as s; print(json.dumps({"
    "'rules': s.RATE_LIMITING_RULES, 'host': s.EXTERNAL_HOST, 'mem': s.ARGON2_MEMORY_COST,"
    "'level': s.ZULIP_FEATURE_LEVEL, 'proxies': s.TRUSTED_PROXIES, 'hide': s.HIDE_ACCOUNT_STATE,"
    "'db': s.DATABASES['default']['ENGINE'],"
    "'db_options': s.DATABASES['default'].get('OPTIONS', {})}))"
)


def settings_with(tmp_path: Path, toml: str = "", **env: str) -> dict:  # type: ignore[type-arg]
    config = tmp_path / "keyhouse.toml"
    config.write_text(toml)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")}
    clean.update(KEYHOUSE_DATA_DIR=str(tmp_path / "data"), KEYHOUSE_CONFIG=str(config), **env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def test_defaults(tmp_path: Path) -> None:
    s = settings_with(tmp_path)
    assert s["rules"]["authenticate_by_username"] == [[1800, 5]]
    assert s["host"] == "" and s["mem"] == 19456 and s["level"] == 371
    assert s["db"] == "django.db.backends.sqlite3"
    assert s["proxies"] == [] and s["hide"] is False


def test_toml_file_merges_rules_like_zulip(tmp_path: Path) -> None:
    s = settings_with(
        tmp_path,
        'EXTERNAL_HOST = "Avianforum.ca"\nARGON2_MEMORY_COST = 47104\n'
        "TRUSTED_PROXIES = ['10.0.0.0/8']\nHIDE_ACCOUNT_STATE = true\n"
        "[RATE_LIMITING_RULES]\nauthenticate_by_username = [[600, 3]]\n",
    )
    assert s["rules"]["authenticate_by_username"] == [[600, 3]]
    assert s["rules"]["api_by_user"] == [[60, 200]]  # untouched defaults stay
    assert s["host"] == "avianforum.ca" and s["mem"] == 47104
    assert s["proxies"] == ["10.0.0.0/8"] and s["hide"] is True


def test_environment_beats_file(tmp_path: Path) -> None:
    s = settings_with(
        tmp_path,
        'EXTERNAL_HOST = "file.example"\nZULIP_FEATURE_LEVEL = 300\n',
        KEYHOUSE_EXTERNAL_HOST="env.example",
        KEYHOUSE_ZULIP_FEATURE_LEVEL="400",
        KEYHOUSE_DATABASE_URL="postgresql://u@127.0.0.1:5432/x",
    )
    assert s["host"] == "env.example" and s["level"] == 400
    assert s["db"] == "keyhouse.db.postgresql"  # bounded waits (keyhouse/db/postgresql/)


def test_postgresql_timeouts_from_file_and_environment(tmp_path: Path) -> None:
    s = settings_with(
        tmp_path,
        "DATABASE_CONNECT_TIMEOUT = 5\n",
        KEYHOUSE_DATABASE_URL="postgresql://u@127.0.0.1:5432/x?options=-c%20search_path%3Dkh",
        KEYHOUSE_DATABASE_STATEMENT_TIMEOUT="1.5",
    )
    options = s["db_options"]
    assert options["connect_timeout"] == 5
    # The URL's own startup options stay; the timeout comes last, so it wins.
    assert options["options"] == "-c search_path=kh -c statement_timeout=1500"
    assert options["keepalives"] == 1 and options["keepalives_idle"] == 30
