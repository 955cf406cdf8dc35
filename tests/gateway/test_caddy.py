"""Caddy's forward_auth in front of the upstream, guarded by a real `keyhouse serve`.

Debian's caddy 2.6.2 runs docs/gateway.md's Caddyfile (tests/gateway/proxies.py).
Caddy hands keyhouse's refusals to the client as they are, so here keyhouse
answers in its plain shape (no X-Keyhouse-Status), and Caddy's own behaviour is
what is under test: identity copied, forged headers and credentials removed.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.harness import SERVED_BY
from tests.gateway.conftest import Keyhouse
from tests.gateway.proxies import Caddy
from tests.gateway.test_nginx import BROWSER, IDENTITY, api_key, http, last_seen
from tests.gateway.upstream import EchoServer, header

pytestmark = [pytest.mark.services, pytest.mark.e2e]


@pytest.fixture(scope="module")
def carol(gateway_keyhouse: Keyhouse, caddy: Caddy) -> tuple[str, str]:
    email = gateway_keyhouse.add_user("Carol.Caddy@Example.com", "Carol Caddy")
    return email, api_key(gateway_keyhouse, caddy.url, email)["api_key"]


def test_a_key_reaches_the_upstream_as_its_user_and_nothing_forged_does(
    caddy: Caddy, upstream: EchoServer, carol: tuple[str, str]
) -> None:
    email, key = carol
    forged = {name: "forged" for name in IDENTITY}
    before = len(upstream.requests)
    with http() as client:
        response = client.put(
            f"{caddy.url}/api/v1/things/7",
            auth=(email, key),
            headers={**forged, "Cookie": "sessionid=abc; app_pref=dark"},
            content=b"payload",
        )
    assert response.status_code == 200, response.text
    seen = last_seen(upstream, before)
    assert seen["method"] == "PUT" and seen["uri"] == "/api/v1/things/7"
    assert seen["body"] == "payload"
    assert header(seen, "Remote-User") == [email]
    assert header(seen, "Remote-Name") == ["Carol Caddy"]
    assert header(seen, "X-Keyhouse-Realm") == ["(root)"]
    for name in IDENTITY:
        assert header(seen, name) and "forged" not in header(seen, name), name
    assert header(seen, "Authorization") == []
    assert key not in str(seen)
    assert header(seen, "Cookie") == ["app_pref=dark"]


def test_refusals_are_keyhouses_answers_unchanged(
    gateway_keyhouse: Keyhouse, caddy: Caddy, upstream: EchoServer, carol: tuple[str, str]
) -> None:
    email, key = carol
    before = len(upstream.requests)
    with http() as client:
        for auth in (None, httpx.BasicAuth(email, "A" * 32), httpx.BasicAuth(email, "short")):
            through = client.get(f"{caddy.url}/api/v1/messages", auth=auth)
            direct = client.get(f"{gateway_keyhouse.base_url}/api/v1/users/me", auth=auth)
            assert through.status_code == direct.status_code == 401
            assert through.content == direct.content
            assert through.headers["WWW-Authenticate"] == 'Basic realm="zulip"'
        refused = client.get(f"{caddy.url}/admin/", auth=(email, key))
        assert refused.status_code == 403
        assert refused.content == b'{"result":"error","msg":"Access denied","code":"BAD_REQUEST"}\n'
        # A client's own nginx-style header cannot make keyhouse check another path.
        sneaky = client.get(
            f"{caddy.url}/admin/", auth=(email, key), headers={"X-Original-URI": "/public/"}
        )
        assert sneaky.status_code == 403
    assert len(upstream.requests) == before


@pytest.mark.xfail(
    SERVED_BY == "granian",
    strict=True,
    reason="granian reads X_Forwarded_Uri as X-Forwarded-Uri (decisions.md, Serving stack)",
)
def test_an_underscore_twin_of_caddys_header_cannot_choose_the_path(
    caddy: Caddy, upstream: EchoServer, carol: tuple[str, str]
) -> None:
    """To a WSGI environ ``X_Forwarded_Uri`` is ``X-Forwarded-Uri``; Caddy passes both on.

    gunicorn drops request headers with underscores in their names. granian keeps
    them, and the later of the two spellings wins: Caddy writes its own first.
    """
    email, key = carol
    before = len(upstream.requests)
    with http() as client:
        sneaky = client.get(
            f"{caddy.url}/admin/", auth=(email, key), headers={"X_Forwarded_Uri": "/public/"}
        )
    assert sneaky.status_code == 403, sneaky.text
    assert len(upstream.requests) == before


def test_a_revoked_key_is_refused_at_once(gateway_keyhouse: Keyhouse, caddy: Caddy) -> None:
    email = gateway_keyhouse.add_user("Rotating.Caddy@Example.com", "Rotating Caddy")
    key = api_key(gateway_keyhouse, caddy.url, email)["api_key"]
    with http() as client:
        assert client.get(f"{caddy.url}/x", auth=(email, key)).status_code == 200
        assert client.get(f"{caddy.url}/x", auth=(email, key)).status_code == 200
        gateway_keyhouse.cli("user", "regenerate-api-key", "--realm", "", "--email", email)
        refused = client.get(f"{caddy.url}/x", auth=(email, key))
    assert refused.status_code == 401 and refused.json()["msg"] == "Invalid API key"


def test_a_browser_is_sent_to_the_login_page(caddy: Caddy, upstream: EchoServer) -> None:
    before = len(upstream.requests)
    with http() as browser:
        response = browser.get(f"{caddy.url}/dashboard/?x=1", headers={"Accept": BROWSER})
    assert response.status_code == 302
    assert response.headers["Location"] == f"{caddy.url}/login/?next=%2Fdashboard%2F%3Fx%3D1"
    assert len(upstream.requests) == before


def test_the_rate_limit_passes_through_with_retry_after(
    gateway_keyhouse: Keyhouse, caddy: Caddy
) -> None:
    email = gateway_keyhouse.add_user("Busy.Caddy@Example.com", "Busy Caddy")
    key = api_key(gateway_keyhouse, caddy.url, email)["api_key"]
    with http() as client:
        for _ in range(60):
            response = client.get(f"{caddy.url}/x", auth=(email, key))
            if response.status_code != 200:
                break
    assert response.status_code == 429, response.text
    assert float(response.headers["Retry-After"]) > 0
    assert response.json()["code"] == "RATE_LIMIT_HIT"
