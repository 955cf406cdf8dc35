"""Remote-user SSO behind a real nginx doing ``auth_basic``, in front of a real ``keyhouse serve``.

nginx's config is the ``location`` blocks of docs/sso.md ("Remote-user SSO"), read
out of the page, so the documented snippet is what is tested. keyhouse trusts
127.0.0.1 (where nginx connects from); a client that reaches keyhouse directly
is played by a socket bound to 127.0.0.2. Everything goes over HTTP: the audit
trail is read with ``keyhouse audit list``, never through the ORM.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.e2e.harness import (
    ARTIFACTS,
    KEYHOUSE,
    create_realm,
    create_user,
    keyhouse_cli,
    start_server,
    stop,
)
from tests.proxy.nginx import Nginx, NginxFactory, htpasswd_line, nginx_binary

pytestmark = pytest.mark.e2e

SSO_MD = Path(__file__).resolve().parents[2] / "docs" / "sso.md"
LOG = ARTIFACTS.parent / "proxy" / "keyhouse-remote-user.log"
OTP = "1234abcd" * 8
DOMAIN = "example.com"  # SSO_APPEND_DOMAIN: nginx's user "alice" is alice@example.com
STRANGER = "127.0.0.2"  # reaches keyhouse directly; not in TRUSTED_PROXIES
HEADER_MISSING = "The X-Remote-User header is not set."

SERVERS = """\
upstream keyhouse {
    server {{upstream}};
    keepalive 4;
}
server {
    listen {{listen}};
    server_name _;
{{locations}}
}
"""


class Keyhouse(NamedTuple):
    base_url: str
    data_dir: Path


class Proxy(NamedTuple):
    nginx: Nginx
    keyhouse: Keyhouse
    password: str  # alice's and carol's, in nginx's htpasswd (not keyhouse's passwords)


def documented_locations(htpasswd: Path) -> str:
    """docs/sso.md's nginx block, with the test's htpasswd, and ``$http_host``.

    The test listens on a port other than 443, and ``$host`` has no port: the apps'
    realm URL (and server_settings') would lose it.
    """
    match = re.search(r"```nginx\n(# remote-user SSO:.*?)```", SSO_MD.read_text(), re.S)
    assert match, "docs/sso.md has no remote-user nginx block"
    block = match.group(1)
    assert "/etc/nginx/keyhouse.htpasswd" in block and "$host;" in block
    return block.replace("/etc/nginx/keyhouse.htpasswd", str(htpasswd)).replace(
        "$host;", "$http_host;"
    )


@pytest.fixture(scope="module")
def keyhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyhouse]:
    nginx_binary()  # skip before starting anything when nginx is missing
    if not KEYHOUSE.exists():
        pytest.fail(f"{KEYHOUSE} not found: run `make .venv/.installed`")
    data_dir = tmp_path_factory.mktemp("keyhouse-remote-user")
    realm_name = f"Proxy {secrets.token_hex(4)}"
    create_realm(data_dir, realm_name)
    keyhouse_cli(data_dir, "realm", "set-auth-methods", "--subdomain", "",
                 "--auth-methods", "email,remoteuser")  # fmt: skip
    for name in ("alice", "bob"):
        create_user(data_dir, f"{name}@{DOMAIN}", name.title(), secrets.token_urlsafe(18))
    LOG.parent.mkdir(parents=True, exist_ok=True)
    LOG.unlink(missing_ok=True)
    env = {
        "KEYHOUSE_REMOTE_USER_AUTH": "true",
        "KEYHOUSE_TRUSTED_PROXIES": "127.0.0.1",
        "KEYHOUSE_SSO_APPEND_DOMAIN": DOMAIN,
    }
    proc, base_url = start_server(data_dir, realm_name, LOG, env=env)
    try:
        yield Keyhouse(base_url, data_dir)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def proxy(
    keyhouse: Keyhouse, nginx_factory: NginxFactory, tmp_path_factory: pytest.TempPathFactory
) -> Proxy:
    password = secrets.token_urlsafe(12)
    htpasswd = tmp_path_factory.mktemp("htpasswd") / "keyhouse.htpasswd"
    # carol passes nginx but has no keyhouse account.
    htpasswd.write_text(htpasswd_line("alice", password) + htpasswd_line("carol", password))
    values = {
        "upstream": urlsplit(keyhouse.base_url).netloc,
        "locations": documented_locations(htpasswd),
    }
    nginx = nginx_factory(SERVERS, values)
    return Proxy(nginx, keyhouse, password)


def client(base_url: str, local_address: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=local_address)
    return httpx.Client(base_url=base_url, transport=transport, trust_env=False, timeout=30.0)


def audit(keyhouse: Keyhouse) -> list[dict[str, Any]]:
    """The audit trail, newest first, as the operator's CLI prints it."""
    rows: list[dict[str, Any]] = json.loads(
        keyhouse_cli(keyhouse.data_dir, "audit", "list", "--json", "--limit", "1000")
    )
    return rows


def start(c: httpx.Client, **params: str) -> str:
    """/accounts/login/start/sso/ needs no credentials; it points at the guarded route."""
    response = c.get("/accounts/login/start/sso/", params=params)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith("/accounts/login/sso/")
    return location


def zulip_login(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    parts = urlsplit(response.headers["location"])
    assert (parts.scheme, parts.netloc) == ("zulip", "login")
    query = parse_qsl(parts.query, strict_parsing=True)
    assert [k for k, _ in query] == ["otp_encrypted_api_key", "email", "user_id", "realm"]
    return dict(query)


def decrypt(encrypted_hex: str, otp: str = OTP) -> str:
    """The app's side of the pad: bytes XOR bytes."""
    pairs = zip(bytes.fromhex(encrypted_hex), bytes.fromhex(otp), strict=True)
    return bytes(a ^ b for a, b in pairs).decode("ascii")


# --- through nginx --------------------------------------------------------------------------


def test_web_sign_in_through_nginx(proxy: Proxy) -> None:
    with client(proxy.nginx.base_url) as c:
        location = start(c, next="/account/api-key/")
        assert location == "/accounts/login/sso/?next=%2Faccount%2Fapi-key%2F"
        response = c.get(location, auth=("alice", proxy.password))
        assert response.status_code == 302, response.text
        assert response.headers["location"] == "/account/api-key/"
        assert "sessionid" in c.cookies
        page = c.get("/account/api-key/")
        assert page.status_code == 200
        assert f"Signed in as alice@{DOMAIN}" in page.text
    newest = audit(proxy.keyhouse)[0]
    assert (newest["method"], newest["outcome"], newest["username"]) == (
        "remoteuser",
        "success",
        f"alice@{DOMAIN}",
    )


def test_mobile_flow_end_to_end(proxy: Proxy) -> None:
    """The app's OTP through both routes; the decrypted key works on users/me through nginx."""
    with client(proxy.nginx.base_url) as c:
        location = start(c, mobile_flow_otp=OTP)
        response = c.get(
            location, auth=("alice", proxy.password), headers={"User-Agent": "ZulipMobile/27.230"}
        )
        values = zulip_login(response)
        assert "sessionid" not in c.cookies  # the app flow makes no browser session
    assert values["email"] == f"alice@{DOMAIN}"
    assert values["realm"] == proxy.nginx.base_url  # the URL the app reached: nginx's
    api_key = decrypt(values["otp_encrypted_api_key"])
    with client(values["realm"]) as app:
        me = app.get("/api/v1/users/me", auth=(values["email"], api_key))
        assert me.status_code == 200, me.text
        assert (me.json()["email"], str(me.json()["user_id"])) == (
            values["email"],
            values["user_id"],
        )
        wrong = app.get("/api/v1/users/me", auth=(values["email"], "x" * 32))
        assert wrong.status_code == 401


@pytest.mark.parametrize("credentials", [("alice", "wrong password"), ("mallory", "x"), None])
def test_wrong_basic_password_is_nginxs_401_and_never_reaches_keyhouse(
    proxy: Proxy, credentials: tuple[str, str] | None
) -> None:
    before = len(audit(proxy.keyhouse))
    served_before = LOG.read_text().count("/accounts/login/sso/")
    with client(proxy.nginx.base_url) as c:
        response = c.get(
            "/accounts/login/sso/",
            params={"mobile_flow_otp": OTP},
            headers={"X-Remote-User": "alice"},  # a header of one's own does not help either
            auth=credentials,
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="keyhouse"'
    assert response.headers["server"].startswith("nginx")
    assert "401 Authorization Required" in response.text  # nginx's page, not keyhouse's
    assert "location" not in response.headers
    assert len(audit(proxy.keyhouse)) == before
    assert LOG.read_text().count("/accounts/login/sso/") == served_before


def test_client_sent_header_is_overwritten(proxy: Proxy) -> None:
    """alice signs in to nginx and claims to be bob: keyhouse signs in alice."""
    with client(proxy.nginx.base_url) as c:
        location = start(c, mobile_flow_otp=OTP)
        response = c.get(
            location, auth=("alice", proxy.password), headers={"X-Remote-User": f"bob@{DOMAIN}"}
        )
        assert zulip_login(response)["email"] == f"alice@{DOMAIN}"


def test_nginx_user_without_an_account(proxy: Proxy) -> None:
    with client(proxy.nginx.base_url) as c:
        response = c.get(start(c), auth=("carol", proxy.password))
    assert response.status_code == 200
    assert f"No account found for carol@{DOMAIN}." in response.text
    newest = audit(proxy.keyhouse)[0]
    assert (newest["username"], newest["reason"]) == (f"carol@{DOMAIN}", "NO_ACCOUNT")


# --- straight to keyhouse ---------------------------------------------------------------------


def test_forged_header_straight_to_keyhouse_is_ignored_and_audited(proxy: Proxy) -> None:
    keyhouse = proxy.keyhouse
    with client(keyhouse.base_url, local_address=STRANGER) as direct:
        response = direct.get(
            "/accounts/login/sso/",
            params={"mobile_flow_otp": OTP},
            headers={"X-Remote-User": "alice", "X-Forwarded-For": "127.0.0.1"},
        )
        assert response.status_code == 403
        assert HEADER_MISSING in response.text
        assert "location" not in response.headers
        assert "sessionid" not in direct.cookies
    newest = audit(keyhouse)[0]
    assert {k: newest[k] for k in ("method", "outcome", "reason", "ip", "username")} == {
        "method": "remoteuser",
        "outcome": "failure",
        "reason": "REMOTE_USER_UNTRUSTED",
        "ip": STRANGER,
        "username": "alice",
    }
    assert f"ignored the X-Remote-User header from {STRANGER}" in LOG.read_text()


def test_the_same_request_from_the_trusted_address_is_believed(proxy: Proxy) -> None:
    """The control for the test above: only the peer's address differs."""
    with client(proxy.keyhouse.base_url) as trusted:
        response = trusted.get(
            "/accounts/login/sso/",
            params={"mobile_flow_otp": OTP},
            headers={"X-Remote-User": "alice"},
        )
        assert zulip_login(response)["email"] == f"alice@{DOMAIN}"
