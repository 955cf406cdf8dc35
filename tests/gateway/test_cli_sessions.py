"""``keyhouse realm set --gateway-sessions``: the realm setting /auth/verify's sessions need."""

from __future__ import annotations

import json

from keyhouse.realms.models import Realm
from tests.conftest import Cli


def test_set_gateway_sessions_on_and_off(cli: Cli) -> None:
    assert cli("realm", "create", "--subdomain", "forum", "--name", "Forum")[0] == 0
    assert Realm.objects.get(subdomain="forum").gateway_sessions is False  # off by default
    code, out, _ = cli("realm", "set", "--subdomain", "forum", "--gateway-sessions", "on")
    assert code == 0 and "gateway-sessions on" in out
    assert Realm.objects.get(subdomain="forum").gateway_sessions is True
    code, out, _ = cli("realm", "list", "--json")
    assert json.loads(out)[0]["gateway_sessions"] is True
    code, out, _ = cli("realm", "set", "--subdomain", "forum", "--gateway-sessions", "off")
    assert code == 0 and "gateway-sessions off" in out
    assert Realm.objects.get(subdomain="forum").gateway_sessions is False


def test_set_gateway_sessions_of_an_unknown_realm_fails(cli: Cli) -> None:
    assert cli("realm", "create", "--subdomain", "forum", "--name", "Forum")[0] == 0
    code, _, err = cli("realm", "set", "--subdomain", "nope", "--gateway-sessions", "on")
    assert code != 0 and "nope" in err


def test_set_two_switches_at_once_and_nothing_is_an_error(cli: Cli) -> None:
    assert cli("realm", "create", "--subdomain", "forum", "--name", "Forum")[0] == 0
    code, out, _ = cli(
        "realm", "set", "--subdomain", "forum",
        "--gateway-sessions", "on", "--require-2fa-for-api-keys", "on",
    )  # fmt: skip
    assert code == 0, out
    realm = Realm.objects.get(subdomain="forum")
    assert realm.gateway_sessions is True and realm.require_2fa_for_api_keys is True
    code, _, err = cli("realm", "set", "--subdomain", "forum")
    assert code != 0 and "nothing to set" in err
