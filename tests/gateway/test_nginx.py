"""nginx's auth_request in front of an upstream, guarded by a real `keyhouse serve`.

Debian's nginx runs docs/gateway.md's recipe (tests/gateway/proxies.py); the
upstream echoes what reached it. What must hold: a good key reaches the
upstream as its user, and the key itself does not; every refusal is keyhouse's
Zulip answer, byte for byte, with its status and headers; a revoked key or a
deactivated user is refused by the very next request; identity headers a
client forges never reach the upstream; a browser goes to the login page and
comes back signed in.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import start_server, stop
from tests.faults import ThrowawayRedis
from tests.gateway.conftest import Keyhouse
from tests.gateway.expected import BROWSER, IDENTITY
from tests.gateway.proxies import Nginx
from tests.gateway.upstream import EchoServer, header

pytestmark = [pytest.mark.services, pytest.mark.e2e]


def http() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10.0, follow_redirects=False)


def api_key(server: Keyhouse, base_url: str, email: str) -> dict[str, Any]:
    """fetch_api_key, asked through ``base_url``."""
    with http() as client:
        response = client.post(
            f"{base_url}/api/v1/fetch_api_key",
            data={"username": email, "password": server.password},
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def last_seen(upstream: EchoServer, before: int) -> dict[str, Any]:
    assert len(upstream.requests) == before + 1, "the upstream should have had one request"
    return upstream.requests[-1]


@pytest.fixture(scope="module")
def alice(gateway_keyhouse: Keyhouse, nginx: Nginx) -> tuple[str, str]:
    email = gateway_keyhouse.add_user("Alice.Nginx@Example.com", "Alice Nginx")
    return email, api_key(gateway_keyhouse, nginx.url, email)["api_key"]


def test_a_key_reaches_the_upstream_as_its_user_and_the_key_does_not(
    nginx: Nginx, upstream: EchoServer, alice: tuple[str, str]
) -> None:
    email, key = alice
    before = len(upstream.requests)
    with http() as client:
        response = client.post(
            f"{nginx.url}/api/v1/things?limit=5",
            auth=(email.lower(), key),
            data={"content": "hello"},
        )
    assert response.status_code == 200, response.text
    seen = last_seen(upstream, before)
    assert seen["method"] == "POST" and seen["uri"] == "/api/v1/things?limit=5"
    assert seen["body"] == "content=hello"  # the body went to the app, not to the check
    assert header(seen, "Remote-User") == header(seen, "Remote-Email") == [email]
    assert header(seen, "Remote-Name") == ["Alice Nginx"]
    assert header(seen, "X-Keyhouse-Realm") == ["(root)"]
    assert header(seen, "X-Keyhouse-Role") == ["member"]
    assert header(seen, "X-Keyhouse-User-Id")[0].isdigit()
    assert header(seen, "Authorization") == []
    assert key not in str(seen)


def test_forged_identity_headers_never_reach_the_upstream(
    nginx: Nginx, upstream: EchoServer, alice: tuple[str, str]
) -> None:
    email, key = alice
    forged = {name: "forged" for name in IDENTITY}
    forged["Remote-User"] = "root@example.com"
    before = len(upstream.requests)
    with http() as client:
        response = client.get(f"{nginx.url}/dashboard/", auth=(email, key), headers=forged)
    assert response.status_code == 200
    seen = last_seen(upstream, before)
    assert header(seen, "Remote-User") == [email]
    for name in IDENTITY:
        assert "forged" not in header(seen, name), name
        assert len(header(seen, name)) == 1, name


def test_without_credentials_no_request_reaches_the_upstream(
    gateway_keyhouse: Keyhouse, nginx: Nginx, upstream: EchoServer, alice: tuple[str, str]
) -> None:
    """Each refusal is what users/me answers for the same credentials, body byte for byte."""
    email, key = alice
    cases: list[tuple[str, httpx.Auth | None, dict[str, str]]] = [
        ("none", None, {}),
        ("wrong key", httpx.BasicAuth(email, "A" * 32), {}),
        ("malformed key", httpx.BasicAuth(email, "short"), {}),
        ("unknown user", httpx.BasicAuth("nobody@example.com", key), {}),
        ("not basic", None, {"Authorization": "Bearer " + key}),
    ]
    before = len(upstream.requests)
    with http() as client:
        for name, auth, extra in cases:
            through = client.get(f"{nginx.url}/api/v1/messages", auth=auth, headers=extra)
            direct = client.get(
                f"{gateway_keyhouse.base_url}/api/v1/users/me", auth=auth, headers=extra
            )
            assert through.status_code == direct.status_code >= 400, name
            assert through.content == direct.content, name
            assert through.headers["Content-Type"] == "application/json", name
            assert through.headers.get("WWW-Authenticate") == direct.headers.get(
                "WWW-Authenticate"
            ), name
            assert "X-Keyhouse-Status" not in through.headers and "X-Keyhouse-Error" not in (
                through.headers
            )
    assert len(upstream.requests) == before


def test_a_regenerated_key_is_refused_at_once(
    gateway_keyhouse: Keyhouse, nginx: Nginx, upstream: EchoServer
) -> None:
    email = gateway_keyhouse.add_user("Rotating@Example.com", "Rotating")
    old = api_key(gateway_keyhouse, nginx.url, email)["api_key"]
    with http() as client:
        for _ in range(2):  # the second one from the Redis cache
            assert client.get(f"{nginx.url}/x", auth=(email, old)).status_code == 200
        regen = client.post(
            f"{nginx.url}/api/v1/users/me/api_key/regenerate", auth=(email, old)
        )  # routed to keyhouse itself
        assert regen.status_code == 200, regen.text
        new = regen.json()["api_key"]
        refused = client.get(f"{nginx.url}/x", auth=(email, old))
        assert refused.status_code == 401
        assert refused.json() == {
            "result": "error",
            "msg": "Invalid API key",
            "code": "UNAUTHORIZED",
        }
        assert client.get(f"{nginx.url}/x", auth=(email, new)).status_code == 200


def test_a_deactivated_user_is_refused_at_once(gateway_keyhouse: Keyhouse, nginx: Nginx) -> None:
    email = gateway_keyhouse.add_user("Leaving@Example.com", "Leaving")
    key = api_key(gateway_keyhouse, nginx.url, email)["api_key"]
    with http() as client:
        for _ in range(2):
            assert client.get(f"{nginx.url}/x", auth=(email, key)).status_code == 200
        gateway_keyhouse.cli("user", "deactivate", "--realm", "", "--email", email)
        refused = client.get(f"{nginx.url}/x", auth=(email, key))
    assert refused.status_code == 401
    assert refused.json()["msg"] == "Account is deactivated"


def test_the_rule_admits_administrators_only_under_admin(
    gateway_keyhouse: Keyhouse, nginx: Nginx, upstream: EchoServer, alice: tuple[str, str]
) -> None:
    boss = gateway_keyhouse.add_user("Boss.Nginx@Example.com", "Boss", role="admin")
    boss_key = api_key(gateway_keyhouse, nginx.url, boss)["api_key"]
    email, key = alice
    with http() as client:
        for path in ("/admin/", "/admin", "/%61dmin/users", "//admin/x", "/x/../admin/"):
            refused = client.get(f"{nginx.url}{path}", auth=(email, key))
            assert refused.status_code == 403, path
            assert (
                refused.content
                == b'{"result":"error","msg":"Access denied","code":"BAD_REQUEST"}\n'
            )
            assert client.get(f"{nginx.url}{path}", auth=(boss, boss_key)).status_code in (
                200,
                404,  # nginx itself refuses some spellings; never the upstream for alice
            ), path
        # A client's own X-Forwarded-Uri cannot make keyhouse check another path.
        sneaky = client.get(
            f"{nginx.url}/admin/", auth=(email, key), headers={"X-Forwarded-Uri": "/public/"}
        )
        assert sneaky.status_code == 403
        seen = upstream.requests[-1]
        assert header(seen, "X-Keyhouse-Role") == ["admin"]


def test_the_rate_limit_passes_through_with_retry_after(
    gateway_keyhouse: Keyhouse, nginx: Nginx
) -> None:
    email = gateway_keyhouse.add_user("Busy@Example.com", "Busy")
    key = api_key(gateway_keyhouse, nginx.url, email)["api_key"]
    with http() as client:
        for _ in range(60):  # the budget is 40 a minute (conftest.CONFIG)
            response = client.get(f"{nginx.url}/x", auth=(email, key))
            if response.status_code != 200:
                break
    assert response.status_code == 429, response.text
    assert float(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["code"] == "RATE_LIMIT_HIT" and body["msg"] == "API usage exceeded rate limit"
    assert response.content.endswith(b"}\n")


def test_a_browser_signs_in_and_comes_back(
    gateway_keyhouse: Keyhouse, nginx: Nginx, upstream: EchoServer
) -> None:
    """No credentials → the login page → signed in → the page it asked for, as that user."""
    email = gateway_keyhouse.add_user("Browser@Example.com", "Browser User")
    with http() as browser:
        browser.headers["Accept"] = BROWSER
        browser.cookies.set("app_pref", "dark")  # the app's own cookie
        first = browser.get(f"{nginx.url}/dashboard/page?tab=2")
        assert first.status_code == 302
        login_url = first.headers["Location"]
        assert login_url == f"{nginx.url}/login/?next=%2Fdashboard%2Fpage%3Ftab%3D2"
        form = browser.get(login_url)
        assert form.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token is not None
        signed_in = browser.post(
            login_url,
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": email,
                "password": gateway_keyhouse.password,
                "next": "/dashboard/page?tab=2",
            },
            headers={"Referer": login_url, "Origin": nginx.url},
        )
        assert signed_in.status_code == 302, signed_in.text
        assert signed_in.headers["Location"] == "/dashboard/page?tab=2"
        before = len(upstream.requests)
        back = browser.get(f"{nginx.url}/dashboard/page?tab=2")
        assert back.status_code == 200, back.text
        seen = last_seen(upstream, before)
        assert header(seen, "Remote-User") == [email]
        cookies = header(seen, "Cookie")
        assert cookies and "app_pref=dark" in cookies[0] and "sessionid" not in cookies[0]
        # A state-changing request from the site itself passes; one without an Origin does not.
        ok = browser.post(
            f"{nginx.url}/dashboard/save", data={"a": "1"}, headers={"Origin": nginx.url}
        )
        assert ok.status_code == 200
        forged = browser.post(f"{nginx.url}/dashboard/save", data={"a": "1"})
        assert forged.status_code == 403 and forged.json()["code"] == "CSRF_FAILED"


def test_verify_itself_is_not_public(nginx: Nginx, alice: tuple[str, str]) -> None:
    with http() as client:
        assert client.get(f"{nginx.url}/auth/verify", auth=alice).status_code == 404
        assert client.get(f"{nginx.url}/_keyhouse/verify", auth=alice).status_code == 404


def test_outages_fail_closed(
    tmp_path: Path, upstream: EchoServer, gateway_keyhouse: Keyhouse
) -> None:
    """Redis down: keyhouse's 503 with Retry-After, through nginx. keyhouse down: nginx's 500.

    Its own keyhouse, Redis and nginx, since it breaks them.
    """
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = ThrowawayRedis(dir=redis_dir)
    redis.start()
    env = {**gateway_keyhouse.env, "KEYHOUSE_REDIS_URL": redis.url}
    name = f"Outage {gateway_keyhouse.realm_name}"
    server = Keyhouse("", tmp_path / "data", env, name, gateway_keyhouse.password)
    server.cli("realm", "create", "--subdomain", "", "--name", server.realm_name)
    email = server.add_user("Outage@Example.com", "Outage")
    proc, server.base_url = start_server(
        server.data_dir, server.realm_name, tmp_path / "log", env=env
    )
    proxy = Nginx(dir=tmp_path / "nginx")
    try:
        proxy.start(server.port, upstream.port)
        key = api_key(server, proxy.url, email)["api_key"]
        before = len(upstream.requests)
        with http() as client:
            assert client.get(f"{proxy.url}/x", auth=(email, key)).status_code == 200
            redis.kill()
            down = client.get(f"{proxy.url}/x", auth=(email, key))
            assert down.status_code == 503, down.text
            assert int(down.headers["Retry-After"]) >= 1
            assert down.json()["code"] == "SERVICE_UNAVAILABLE"
            stop(proc)
            gone = client.get(f"{proxy.url}/x", auth=(email, key))
            assert gone.status_code == 500
        assert len(upstream.requests) == before + 1
    finally:
        proxy.stop()
        stop(proc)
        redis.stop()
