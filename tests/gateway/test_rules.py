"""GATEWAY_RULES: parsed and refused at start-up, matched on the path an upstream serves."""

from __future__ import annotations

from typing import Any

import pytest

from keyhouse import config_keys, gateway_rules
from keyhouse.config_keys import ConfigError
from keyhouse.gateway_rules import GatewayRulesError, first_match, normalized_path, parse
from keyhouse.users.models import Role


def test_role_names_are_the_users_role_labels() -> None:
    """The pure module spells the roles itself; they must stay Role's labels."""
    assert list(gateway_rules.ROLE_NAMES) == [role.label for role in Role]


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/", "/"),
        ("", "/"),
        ("/admin", "/admin"),
        ("/admin/", "/admin/"),
        ("/admin/x?next=/y", "/admin/x"),
        ("/admin/x#frag", "/admin/x"),
        ("/%61dmin/", "/admin/"),
        ("/admin%2Fx", "/admin/x"),
        ("//admin///x/", "/admin/x/"),
        ("/a/./b/.", "/a/b/"),
        ("/x/../admin/", "/admin/"),
        ("/../../admin", "/admin"),
        ("/admin/..", "/"),
        ("/a\\admin\\", "/a/admin/"),
    ],
)
def test_normalized_path(uri: str, path: str) -> None:
    assert normalized_path(uri) == path


def test_first_match_wins_and_no_match_is_none() -> None:
    rules = parse([{"path": "/a/", "roles": ["admin"]}, {"path": "/a/b/"}, {"path": "/c"}])
    assert first_match(rules, "h", "/a/b/x", "GET") is rules[0]
    assert first_match(rules, "h", "/c", "GET") is rules[2]
    assert first_match(rules, "h", "/cd", "GET") is rules[2]  # a plain prefix, as written
    assert first_match(rules, "h", "/d/", "GET") is None


def test_a_prefix_with_a_slash_covers_the_bare_name() -> None:
    [rule] = parse([{"path": "/admin/"}])
    assert rule.matches("h", "/admin", "GET") and rule.matches("h", "/admin/x", "GET")
    assert not rule.matches("h", "/administrators", "GET")


def test_hosts_exact_and_wildcard() -> None:
    exact, wild = parse([{"host": "Dash.Example.com"}, {"host": "*.example.com"}])
    assert exact.matches("dash.example.com", "/", "GET")
    assert not exact.matches("example.com", "/", "GET")
    assert wild.matches("a.b.example.com", "/", "GET")
    assert not wild.matches("example.com", "/", "GET") and not wild.matches(
        "xexample.com", "/", "GET"
    )


def test_admits() -> None:
    admins, bots_too, no_bots, closed, realm = parse(
        [
            {"roles": ["owner", "admin"]},
            {"roles": ["admin"], "bots": True},
            {"bots": False},
            {"allow": False},
            {"realms": ["", "forum"]},
        ]
    )
    assert admins.admits("", "admin", False) and not admins.admits("", "member", False)
    assert not admins.admits("", "member", True)  # a bot is judged by its role here
    assert bots_too.admits("", "member", True) and not bots_too.admits("", "member", False)
    assert no_bots.admits("", "guest", False) and not no_bots.admits("", "admin", True)
    assert not closed.admits("", "owner", False)
    assert realm.admits("", "member", False) and realm.admits("forum", "member", False)
    assert not realm.admits("other", "owner", False)


BAD: list[tuple[Any, str]] = [
    ("not a table", "GATEWAY_RULES[0] must be a table"),
    ({"paht": "/x"}, "GATEWAY_RULES[0]: unknown key(s) paht"),
    ({"path": "admin/"}, 'GATEWAY_RULES[0].path must be a string starting with "/"'),
    ({"path": "/a/../b"}, "GATEWAY_RULES[0].path must be a plain path"),
    ({"path": "/%61dmin/"}, "GATEWAY_RULES[0].path must be a plain path"),
    ({"host": "a.example:8080"}, "GATEWAY_RULES[0].host must be a host name"),
    ({"methods": "GET"}, "GATEWAY_RULES[0].methods must be an array of strings"),
    ({"methods": []}, "GATEWAY_RULES[0].methods must name HTTP methods"),
    ({"roles": ["administrator"]}, "GATEWAY_RULES[0].roles: unknown role(s) administrator"),
    ({"realms": ["Not A Subdomain"]}, "GATEWAY_RULES[0].realms must be subdomains"),
    ({"bots": "yes"}, "GATEWAY_RULES[0].bots must be true or false"),
    ({"allow": 1}, "GATEWAY_RULES[0].allow must be true or false"),
]


@pytest.mark.parametrize(("table", "message"), BAD)
def test_bad_rules_are_refused_with_one_line(table: Any, message: str) -> None:
    with pytest.raises(GatewayRulesError) as caught:
        parse([table])
    assert str(caught.value).startswith(message)


def test_the_config_file_refuses_a_bad_rule_at_load() -> None:
    """The server does not start with a rule it could not apply (config_keys.py)."""
    with pytest.raises(ConfigError, match=r"GATEWAY_RULES\[1\]\.roles: unknown role"):
        config_keys.load_values({}, {"GATEWAY_RULES": [{"path": "/"}, {"roles": ["root"]}]})
    with pytest.raises(ConfigError, match="GATEWAY_RULES must be an array"):
        config_keys.load_values({}, {"GATEWAY_RULES": {"path": "/"}})
    good = [{"path": "/admin/", "roles": ["admin"]}]
    assert config_keys.load_values({}, {"GATEWAY_RULES": good})["GATEWAY_RULES"] == good
    assert config_keys.load_values({}, {})["GATEWAY_RULES"] == []


def test_compiled_parses_once_per_value() -> None:
    value = [{"path": "/x/"}]
    first = gateway_rules.compiled(value)
    assert gateway_rules.compiled(value) is first
    assert gateway_rules.compiled([{"path": "/y/"}])[0].path == "/y/"
