"""The config file is checked against one table (keyhouse/config_keys.py), and that
table, settings.py and docs/operations.md cannot drift apart.

Issue #12 E14: a typo or a wrong type in KEYHOUSE_CONFIG used to be ignored, so
the server ran on a default the operator believed changed.
"""

from __future__ import annotations

import ast
import datetime
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from keyhouse import config_keys
from keyhouse.config_keys import KEYS, ConfigError, validate

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "keyhouse"
BIN = Path(sys.executable).parent


# --- the check itself ---------------------------------------------------------


def _refusal(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as caught:
        validate(data, "/etc/keyhouse/keyhouse.toml")
    line = str(caught.value)
    assert "\n" not in line and line.startswith("/etc/keyhouse/keyhouse.toml: ")
    return line


def test_unknown_key_is_named_with_a_suggestion() -> None:
    line = _refusal({"DATA_DRI": "/srv"})
    assert "unknown key DATA_DRI (did you mean DATA_DIR?)" in line
    assert "docs/operations.md" in line


def test_lower_case_key_is_not_ignored_any_more() -> None:
    assert "unknown key data_dir (did you mean DATA_DIR?)" in _refusal({"data_dir": "/srv"})


def test_unknown_key_with_nothing_close_has_no_suggestion() -> None:
    line = _refusal({"SESSION_COOKIE_AGE_XYZ_Q": 1})
    assert "unknown key SESSION_COOKIE_AGE_XYZ_Q;" in line and "did you mean" not in line


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("ARGON2_TIME_COST", "2", "must be an integer, not a string"),
        ("ARGON2_TIME_COST", True, "must be an integer, not a boolean"),
        ("ARGON2_TIME_COST", 2.5, "must be an integer, not a float"),
        ("RATE_LIMITING_RULES", [[60, 5]], "must be a table, not an array"),
        ("AUTH_LDAP_USER_SEARCH", "ou=people", "must be a table, not a string"),
        ("TRUSTED_PROXIES", "10.0.0.0/8", "must be an array, not a string"),
        ("HIDE_ACCOUNT_STATE", 1, "must be true or false, not an integer"),
        ("HIDE_ACCOUNT_STATE", "false", "must be true or false, not a string"),
        ("ZULIP_VERSION", 10.1, "must be a string, not a float"),
        ("LDAP_CONNECT_TIMEOUT", "3", "must be a number, not a string"),
        ("EXTERNAL_HOST", datetime.date(2024, 1, 1), "must be a string, not a date"),
    ],
)
def test_wrong_type_names_key_and_expected_type(name: str, value: object, words: str) -> None:
    assert f": {name} {words}" in _refusal({name: value})


def test_secret_values_are_never_echoed() -> None:
    line = _refusal({"AUTH_LDAP_BIND_PASSWORD": ["hunter2-secret"]})
    assert "hunter2" not in line


def test_valid_values_pass() -> None:
    data = {
        "DATA_DIR": "/srv",
        "LDAP_CONNECT_TIMEOUT": 3,  # a number may be an integer
        "HASHING_MAX_WAIT": 1.5,
        "RATE_LIMITING_RULES": {"authenticate_by_username": [[600, 3]]},
        "DEV_MODE": False,
    }
    assert validate(data, "x.toml") == data


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope.toml: cannot read the config file: No such file"):
        config_keys.load(str(missing))
    broken = tmp_path / "broken.toml"
    broken.write_text("DATA_DIR = \n")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML: .*line 1"):
        config_keys.load(str(broken))


# --- every entry point stops with the one line, exit 1, no traceback -----------


def _env(tmp_path: Path, toml: str) -> dict[str, str]:
    config = tmp_path / "keyhouse.toml"
    config.write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYHOUSE_", "PYTEST_"))}
    env.update(
        KEYHOUSE_CONFIG=str(config),
        KEYHOUSE_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(ROOT / "src"),
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


ENTRY_POINTS = {
    "cli": [str(BIN / "keyhouse"), "realm", "list"],
    "serve": [str(BIN / "keyhouse"), "serve", "--port", "0", "--workers", "1"],
    "wsgi": [sys.executable, "-c", "import keyhouse.wsgi"],
}
BAD_FILES = {
    "typo": ('DATA_DRI = "/srv"\n', "unknown key DATA_DRI (did you mean DATA_DIR?)"),
    "type": ('ARGON2_TIME_COST = "2"\n', "ARGON2_TIME_COST must be an integer, not a string"),
    "table": ("RATE_LIMITING_RULES = [[60, 5]]\n", "RATE_LIMITING_RULES must be a table"),
}


@pytest.mark.parametrize("bad", sorted(BAD_FILES))
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_point_refuses_bad_file_in_one_line(tmp_path: Path, entry: str, bad: str) -> None:
    toml, words = BAD_FILES[bad]
    env = _env(tmp_path, toml)
    done = subprocess.run(
        ENTRY_POINTS[entry], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"keyhouse: error: {env['KEYHOUSE_CONFIG']}: ")
    assert done.stderr.count("\n") == 1 and words in done.stderr
    assert not (tmp_path / "data").exists()  # refused before touching anything


def test_bare_gunicorn_stops_instead_of_respawning(tmp_path: Path) -> None:
    """In a worker a plain exit would be respawned for ever, printing the line each time."""
    env = _env(tmp_path, 'DATA_DRI = "/srv"\n')
    done = subprocess.run(
        [str(BIN / "gunicorn"), "--bind", "127.0.0.1:0", "--workers", "1",
         "--control-socket", str(tmp_path / "gunicorn.ctl"), "keyhouse.wsgi:application"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr  # gunicorn's "App failed to load"
    assert "Traceback" not in done.stderr
    assert done.stderr.count("unknown key DATA_DRI (did you mean DATA_DIR?)") == 1


def test_a_good_file_still_works(tmp_path: Path) -> None:
    env = _env(tmp_path, "ARGON2_TIME_COST = 3\n[RATE_LIMITING_RULES]\napi_by_user = [[60, 9]]\n")
    done = subprocess.run(
        ENTRY_POINTS["cli"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


# --- no drift: settings.py ↔ the table ↔ docs ----------------------------------


def _settings_reads() -> set[str]:
    """Each ``_v["NAME"]`` in settings.py: the loaded values it assigns from."""
    tree = ast.parse((SRC / "settings.py").read_text())
    return {
        node.slice.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and getattr(node.value, "id", None) == "_v"
        and isinstance(node.slice, ast.Constant)
    }


def test_every_setting_read_is_declared_and_vice_versa() -> None:
    reads = _settings_reads()
    declared = {key.name for key in KEYS}
    assert sorted(reads - declared) == [], "read by settings.py but not declared"
    assert sorted(declared - reads) == [], "declared but never read"
    assert len(KEYS) == len(declared), "a key is declared twice"


def test_settings_read_the_environment_only_through_the_table() -> None:
    """One precedence for every key: no KEYHOUSE_* variable read beside the loader."""
    text = (SRC / "settings.py").read_text()
    assert "os.environ.get" not in text and "os.getenv" not in text
    assert re.findall(r"KEYHOUSE_\w+", text.split('"""', 2)[2]) == []


def test_every_key_has_a_default_of_its_type_or_none() -> None:
    for key in KEYS:
        assert key.value is None or config_keys._fits(key.value, key.type), key.name
        assert key.env is None or key.env.startswith("KEYHOUSE_"), key.name
        assert not (key.type is dict and key.env), key.name  # tables come from the file


def test_only_settings_reads_the_config_file() -> None:
    for path in SRC.rglob("*.py"):
        if path.name in {"settings.py", "config_keys.py"}:
            continue
        text = path.read_text()
        assert "_CONFIG" not in text.replace("KEYHOUSE_CONFIG", ""), path
        assert "tomllib" not in text, path


def _docs_table() -> str:
    text = (ROOT / "docs" / "operations.md").read_text()
    match = re.search(r"<!-- config-keys:begin[^>]*-->\n(.*?)<!-- config-keys:end -->", text, re.S)
    assert match, "docs/operations.md lost its config-keys markers"
    return match.group(1)


def test_docs_list_every_key_with_its_meaning() -> None:
    assert _docs_table() == config_keys.render_markdown(), (
        "regenerate: python -m keyhouse.config_keys"
    )
    for key in KEYS:
        assert key.doc.strip(), key.name


def test_every_toml_example_in_the_docs_is_a_valid_config() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    examples = 0
    for path in docs:
        for block in re.findall(r"```toml\n(.*?)```", path.read_text(), re.S):
            validate(tomllib.loads(block), path.name)
            examples += 1
    assert examples >= 5


@pytest.mark.parametrize("bad", ["X_Remote_User", "X-Remote User", "", "X-Remote-User:", "-X"])
def test_remote_user_header_must_be_a_header_name(bad: str) -> None:
    with pytest.raises(ConfigError, match="REMOTE_USER_HEADER must be a header name"):
        config_keys.load_values({}, {"REMOTE_USER_HEADER": bad})
    with pytest.raises(ConfigError, match="REMOTE_USER_HEADER"):
        config_keys.load_values({"KEYHOUSE_REMOTE_USER_HEADER": bad})


def test_remote_user_defaults() -> None:
    values = config_keys.load_values({}, {})
    assert (values["REMOTE_USER_AUTH"], values["REMOTE_USER_HEADER"]) == (False, "X-Remote-User")
    assert values["SSO_APPEND_DOMAIN"] is None
    assert config_keys.load_values({"KEYHOUSE_SSO_APPEND_DOMAIN": " "})["SSO_APPEND_DOMAIN"] is None
