"""pytest plugin: a real slapd per test session, reset for every test that asks.

`slapd` is the fixture tests use: a running, unpaused directory holding exactly the
base data of tests/ldap_server.py. `keyhouse_ldap_config()` and `toml_text()` build
the configuration file keyhouse reads to talk to it (docs/ldap.md shows the same
structure for an operator).

Nothing here imports python-ldap at import time, so the suite still loads in a venv
without the `ldap` extra (`make serve`'s); LDAP tests then skip, or fail under CI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from tests.ci import missing

if TYPE_CHECKING:
    from tests.ldap_server import Slapd

SLAPD = Path("/usr/sbin/slapd")
MODES = ("append_domain", "email_attr")


def _missing(reason: str) -> None:
    """Under CI a missing LDAP piece is a broken setup, not a reason to skip quietly."""
    missing(f"{reason}: run `make services`, then `make test`", module_level=True)


def import_ldap() -> ModuleType:
    """python-ldap, or skip (fail under CI): usable at a test module's top level."""
    try:
        import ldap
    except ImportError:
        _missing("python-ldap is not installed (pip install -e '.[ldap]')")
    return ldap


@pytest.fixture(scope="session")
def slapd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One slapd for the whole session: starting one costs little, but not nothing."""
    if not SLAPD.exists():
        _missing(f"{SLAPD} is missing (Debian package slapd)")
    import_ldap()
    from tests.ldap_server import Slapd

    server = Slapd(tmp_path_factory.mktemp("ldap"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def slapd(slapd_server: Slapd) -> Slapd:
    """The session's slapd, running, answering, and holding only the base data."""
    return ready(slapd_server)


def ready(server: Slapd) -> Slapd:
    """Undo whatever an earlier test did: resume, restart, reset the data."""
    if server.paused:
        server.resume()
    if not server.running:
        server.start()
    server.reset()
    return server


def keyhouse_ldap_config(slapd: Slapd, mode: str) -> dict[str, Any]:
    """keyhouse's config-file settings (Zulip's names) for this directory.

    "append_domain": usernames are uids, emails are `uid@example.com`.
    "email_attr": emails come from `mail`; people may log in with either.
    """
    from tests.ldap_server import PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD

    config: dict[str, Any] = {
        "AUTH_LDAP_SERVER_URI": slapd.uri,
        "AUTH_LDAP_BIND_DN": SERVICE_DN,
        "AUTH_LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
        "AUTH_LDAP_USER_SEARCH": {
            "base": PEOPLE_DN,
            "scope": "subtree",
            "filter": "(uid=%(user)s)",
        },
        "AUTH_LDAP_USER_ATTR_MAP": {"full_name": "cn"},
        "LDAP_CONNECT_TIMEOUT": 2,
        "LDAP_OPERATION_TIMEOUT": 2,
    }
    if mode == "append_domain":
        config["LDAP_APPEND_DOMAIN"] = "example.com"
    elif mode == "email_attr":
        config["LDAP_EMAIL_ATTR"] = "mail"
        config["AUTH_LDAP_REVERSE_EMAIL_SEARCH"] = {
            "base": PEOPLE_DN,
            "scope": "subtree",
            "filter": "(mail=%(email)s)",
        }
        config["AUTH_LDAP_USERNAME_ATTR"] = "uid"
    else:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    return config


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON's string escapes are all valid in a TOML basic string.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def toml_text(config: dict[str, Any]) -> str:
    """A config dict as a TOML file: one key a line, tables inline (they stay small)."""
    return "".join(f"{_toml_key(key)} = {_toml_value(value)}\n" for key, value in config.items())


def configure_ldap(
    settings: Any, slapd: Slapd, mode: str = "append_domain", **overrides: Any
) -> None:
    """Point this test's Django settings at ``slapd``, as keyhouse.settings would from TOML."""
    from keyhouse.ldap_settings import ldap_settings

    config = {"LDAP_APPEND_DOMAIN": None, "LDAP_EMAIL_ATTR": None}
    config |= keyhouse_ldap_config(slapd, mode) | overrides
    for name, value in config.items():
        if name not in ("AUTH_LDAP_USER_SEARCH", "AUTH_LDAP_REVERSE_EMAIL_SEARCH"):
            setattr(settings, name, value)
    built = ldap_settings(
        user_search=config["AUTH_LDAP_USER_SEARCH"],
        reverse_email_search=config.get("AUTH_LDAP_REVERSE_EMAIL_SEARCH"),
        connect_timeout=config["LDAP_CONNECT_TIMEOUT"],
        operation_timeout=config["LDAP_OPERATION_TIMEOUT"],
        ca_cert_file=None,
    )
    for name, value in built.items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [
        "keyhouse.auth.backends.EmailAuthBackend",
        "keyhouse.auth.ldap_backend.ZulipLDAPAuthBackend",
    ]


@pytest.fixture
def ldap_realm(db: None) -> Realm:
    """The root realm with only the ldap method on."""
    return Realm.objects.create(subdomain="", name="Directory Org", authentication_methods=["ldap"])


@pytest.fixture
def append_domain(settings: Settings, slapd: Slapd) -> Slapd:
    """keyhouse configured for the directory, usernames + LDAP_APPEND_DOMAIN."""
    configure_ldap(settings, slapd, "append_domain")
    return slapd
