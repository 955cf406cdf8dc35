"""The test directory itself: what the LDAP tests rely on, checked with python-ldap."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.ldap_fixtures import MODES, import_ldap, keyhouse_ldap_config, ready, toml_text

ldap = import_ldap()

from tests.ldap_server import (  # noqa: E402  (needs python-ldap, checked just above)
    HAMLET_PASSWORD,
    PEOPLE_DN,
    SERVICE_DN,
    SERVICE_PASSWORD,
    SHARED_EMAIL,
    Slapd,
    user_dn,
)


def service(slapd: Slapd, timeout: float = 5.0) -> Any:
    """A connection bound as keyhouse's service account."""
    return slapd.connect(SERVICE_DN, SERVICE_PASSWORD, timeout=timeout)


def find(slapd: Slapd, filterstr: str, attrs: list[str] | None = None) -> dict[str, dict]:
    found = service(slapd).search_s(PEOPLE_DN, ldap.SCOPE_SUBTREE, filterstr, attrs)
    return dict(found)


def test_service_account_reads_people_but_not_passwords(slapd: Slapd) -> None:
    entries = find(slapd, "(objectClass=inetOrgPerson)", ["uid", "cn", "mail", "userPassword"])
    uids = sorted(entry["uid"][0].decode() for entry in entries.values())
    assert uids == ["hamlet", "newuser", "nomail", "ophelia", "shared1", "shared2"]
    hamlet = entries[user_dn("hamlet")]
    assert hamlet["cn"] == [b"King Hamlet"]
    assert hamlet["mail"] == [b"hamlet@example.com"]
    assert all("userPassword" not in entry for entry in entries.values())
    assert "mail" not in entries[user_dn("nomail")]
    assert len(find(slapd, f"(mail={SHARED_EMAIL})")) == 2


def test_anonymous_sees_nothing(slapd: Slapd) -> None:
    with pytest.raises(ldap.NO_SUCH_OBJECT):
        slapd.connect().search_s(PEOPLE_DN, ldap.SCOPE_SUBTREE, "(uid=hamlet)")


def test_people_bind_with_their_own_password(slapd: Slapd) -> None:
    conn = slapd.connect(user_dn("hamlet"), HAMLET_PASSWORD)
    assert conn.whoami_s() == f"dn:{user_dn('hamlet')}"
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        slapd.connect(user_dn("hamlet"), "not-" + HAMLET_PASSWORD)
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        slapd.connect(user_dn("nobody"), HAMLET_PASSWORD)


def test_add_modify_delete(slapd: Slapd) -> None:
    slapd.add_user(
        "laertes",
        cn="Laertes",
        mail="laertes@example.com",
        password="laertes-pw",
        user_account_control=512,
        deactivated="FALSE",
        orgs=["zulip", "forum"],
    )
    entry = find(slapd, "(uid=laertes)", ["*"])[user_dn("laertes")]
    assert entry["sn"] == [b"Laertes"]
    assert entry["userAccountControl"] == [b"512"]
    assert entry["keyhouseDeactivated"] == [b"FALSE"]
    assert sorted(entry["keyhouseOrg"]) == [b"forum", b"zulip"]
    slapd.connect(user_dn("laertes"), "laertes-pw")

    slapd.modify(
        "laertes",
        user_account_control=514,
        deactivated=None,
        orgs="zulip",
        cn="Laertes Son-of-Polonius",
        password="new-laertes-pw",
    )
    entry = find(slapd, "(uid=laertes)", ["*"])[user_dn("laertes")]
    assert entry["userAccountControl"] == [b"514"]
    assert "keyhouseDeactivated" not in entry
    assert entry["keyhouseOrg"] == [b"zulip"]
    assert entry["cn"] == [b"Laertes Son-of-Polonius"]
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        slapd.connect(user_dn("laertes"), "laertes-pw")
    slapd.connect(user_dn("laertes"), "new-laertes-pw")
    slapd.modify("hamlet", mail=None)  # LDAP names work too; deleting is idempotent
    slapd.modify("hamlet", mail=None)
    assert "mail" not in find(slapd, "(uid=hamlet)")[user_dn("hamlet")]

    slapd.delete_user("laertes")
    assert find(slapd, "(uid=laertes)") == {}

    slapd.reset()
    assert find(slapd, "(uid=hamlet)", ["mail"])[user_dn("hamlet")]["mail"] == [
        b"hamlet@example.com"
    ]


def test_stop_and_start_on_the_same_port_and_data(slapd: Slapd) -> None:
    uri = slapd.uri
    slapd.modify("hamlet", cn="Hamlet, Prince of Denmark")
    slapd.stop()
    assert not slapd.running
    with pytest.raises(ldap.SERVER_DOWN):
        service(slapd, timeout=1)

    started = time.monotonic()
    slapd.start()
    assert time.monotonic() - started < 1.0
    assert slapd.uri == uri
    assert find(slapd, "(uid=hamlet)")[user_dn("hamlet")]["cn"] == [b"Hamlet, Prince of Denmark"]


def test_paused_directory_times_out_and_recovers(slapd: Slapd) -> None:
    conn = service(slapd, timeout=1)
    slapd.pause()
    started = time.monotonic()
    with pytest.raises(ldap.TIMEOUT):
        conn.search_s(PEOPLE_DN, ldap.SCOPE_SUBTREE, "(uid=hamlet)")
    assert 0.9 < time.monotonic() - started < 3
    with pytest.raises(ldap.TIMEOUT):
        service(slapd, timeout=1)  # a new connection: TCP accepts, the bind never answers

    slapd.resume()
    assert user_dn("hamlet") in find(slapd, "(uid=hamlet)")


def test_fixture_recovers_a_paused_or_stopped_server(slapd: Slapd) -> None:
    slapd.delete_user("hamlet")
    slapd.pause()
    assert ready(slapd) is slapd
    assert user_dn("hamlet") in find(slapd, "(uid=hamlet)")
    slapd.pause()
    slapd.stop()
    ready(slapd)
    assert user_dn("hamlet") in find(slapd, "(uid=hamlet)")


@pytest.mark.parametrize("mode", MODES)
def test_keyhouse_config_renders_as_toml(slapd: Slapd, mode: str) -> None:
    config = keyhouse_ldap_config(slapd, mode)
    assert tomllib.loads(toml_text(config)) == config
    conn = slapd.connect(config["AUTH_LDAP_BIND_DN"], config["AUTH_LDAP_BIND_PASSWORD"])
    search = config["AUTH_LDAP_USER_SEARCH"]
    found = conn.search_s(
        search["base"], ldap.SCOPE_SUBTREE, search["filter"] % {"user": "ophelia"}, ["cn"]
    )
    assert found == [(user_dn("ophelia"), {"cn": [b"Ophelia"]})]


def test_toml_text_escapes() -> None:
    config = {"A": 'quote " and \\ and \n', "B": True, "C": 1.5, "D": {"x-y": [1, "z"]}, "E": {}}
    assert tomllib.loads(toml_text(config)) == config


def test_docs_example_is_the_configuration_tests_use() -> None:
    """docs/ldap.md shows what keyhouse_ldap_config() builds: the two can't drift."""
    text = (Path(__file__).parents[1] / "docs" / "ldap.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    directory = SimpleNamespace(uri="ldap://ldap.example.com")
    assert example == toml_text(keyhouse_ldap_config(directory, "email_attr"))  # type: ignore[arg-type]
