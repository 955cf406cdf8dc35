"""``keyhouse realm set-gateway-sessions``: the realm setting /auth/verify's sessions need."""

from __future__ import annotations

import json

from keyhouse.realms.models import Realm
from tests.conftest import Cli


def test_set_gateway_sessions_on_and_off(cli: Cli) -> None:
    assert cli("realm", "create", "--subdomain", "forum", "--name", "Forum")[0] == 0
    assert Realm.objects.get(subdomain="forum").gateway_sessions is False  # off by default
    code, out, _ = cli("realm", "set-gateway-sessions", "--subdomain", "forum", "--on")
    assert code == 0 and "accepted" in out
    assert Realm.objects.get(subdomain="forum").gateway_sessions is True
    code, out, _ = cli("realm", "list", "--json")
    assert json.loads(out)[0]["gateway_sessions"] is True
    code, out, _ = cli("realm", "set-gateway-sessions", "--subdomain", "forum", "--off")
    assert code == 0 and "refused" in out
    assert Realm.objects.get(subdomain="forum").gateway_sessions is False


def test_set_gateway_sessions_of_an_unknown_realm_fails(cli: Cli) -> None:
    assert cli("realm", "create", "--subdomain", "forum", "--name", "Forum")[0] == 0
    code, _, err = cli("realm", "set-gateway-sessions", "--subdomain", "nope", "--on")
    assert code != 0 and "nope" in err
