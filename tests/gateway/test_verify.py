"""``/auth/verify``: the forward-auth check, through Django's test client.

What a proxy sees: grants with identity headers, Zulip's refusals (the very
ones ``users/me`` gives, since both run ``authenticate_api_key``), forwarded
headers believed only from ``TRUSTED_PROXIES``, nginx's reshaped refusals, the
browser's way to the login page and back, web sessions where a realm allows
them. The proxies themselves are in test_nginx.py and test_caddy.py.
"""

from __future__ import annotations

import json
from email.header import decode_header
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user, set_active
from keyhouse.users.models import Role, User
from tests.api.helpers import WWW_AUTHENTICATE, json_body
from tests.conftest import EXTERNAL_HOST, PASSWORD, basic_auth
from tests.gateway.expected import BROWSER, IDENTITY

VERIFY = "/auth/verify"
ME = "/api/v1/users/me"


def verify(client: Client, method: str = "GET", **extra: Any) -> HttpResponse:
    response: HttpResponse = client.generic(method, VERIFY, **extra)
    return response


def nginx(uri: str, method: str = "GET", host: str = "testserver") -> dict[str, str]:
    """What the nginx recipe's auth_request location sends (docs/gateway.md)."""
    return {
        "HTTP_X_ORIGINAL_URI": uri,
        "HTTP_X_ORIGINAL_METHOD": method,
        "HTTP_X_FORWARDED_HOST": host,
        "HTTP_X_FORWARDED_PROTO": "https",
    }


def traefik(uri: str, method: str = "GET", host: str = "testserver") -> dict[str, str]:
    """What Traefik's ForwardAuth and Caddy's forward_auth send."""
    return {
        "HTTP_X_FORWARDED_URI": uri,
        "HTTP_X_FORWARDED_METHOD": method,
        "HTTP_X_FORWARDED_HOST": host,
        "HTTP_X_FORWARDED_PROTO": "https",
    }


@pytest.fixture
def trusted(settings: Settings) -> None:
    """The test client's address (127.0.0.1) is the proxy's."""
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]


def granted(response: HttpResponse, user: User) -> None:
    assert response.status_code == 200, (response.status_code, response.content)
    assert response["X-Keyhouse-User-Id"] == str(user.id)
    assert response["Remote-User"] == response["Remote-Email"] == user.delivery_email


def refusal(response: HttpResponse, status: int, msg: str, code: str | None) -> dict[str, Any]:
    body = json_body(response, status)
    assert body["msg"] == msg and body.get("code") == code, body
    return body


# --- Grants ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_a_good_key_is_granted_for_any_method(client: Client, user: User, method: str) -> None:
    """The proxy may ask with the original request's method (nginx does)."""
    response = verify(client, method, **basic_auth(user.delivery_email, user.api_key))
    granted(response, user)
    if method != "HEAD":
        assert json_body(response, 200) == {"result": "success", "msg": "", "user_id": user.id}


def test_identity_headers(client: Client, user: User) -> None:
    response = verify(client, **basic_auth(user.delivery_email, user.api_key))
    assert {name: response[name] for name in IDENTITY} == {
        "Remote-User": "Hamlet@Example.com",  # the delivery email, as stored
        "Remote-Email": "Hamlet@Example.com",
        "Remote-Name": "King Hamlet",
        "X-Keyhouse-User-Id": str(user.id),
        "X-Keyhouse-Realm": "(root)",
        "X-Keyhouse-Role": "member",
    }
    assert user.api_key not in str(response.headers) and user.api_key.encode() not in (
        response.content
    )


def test_identity_of_a_subdomain_realms_administrator(
    client: Client, other_realm: Realm, trusted: None
) -> None:
    admin = create_user(other_realm, "ophelia@example.com", "Ophelia", role=Role.ADMINISTRATOR)
    host = f"other.{EXTERNAL_HOST}"
    response = verify(
        client, **traefik("/x", host=host), **basic_auth(admin.delivery_email, admin.api_key)
    )
    granted(response, admin)
    assert response["X-Keyhouse-Realm"] == "other"
    assert response["X-Keyhouse-Role"] == "admin"


def test_names_that_are_not_plain_ascii_are_rfc2047_encoded(client: Client, realm: Realm) -> None:
    """No CR/LF can reach a header, and a non-ASCII name survives the trip (documented)."""
    names = ["Zoë Ångström", "Bad\r\nX-Injected: 1", "=?UTF-8?B?Zm9v?=", " padded "]
    for i, name in enumerate(names):
        user = create_user(realm, f"u{i}@example.com", "x", password=PASSWORD)
        User.objects.filter(pk=user.pk).update(full_name=name)  # bypass create_user's strip
        response = verify(client, **basic_auth(user.delivery_email, user.api_key))
        value = response["Remote-Name"]
        assert value.isascii() and value.isprintable() and value.startswith("=?UTF-8?B?")
        assert "X-Injected" not in response.headers
        [(raw, charset)] = decode_header(value)
        assert isinstance(raw, bytes) and raw.decode(charset or "ascii") == name


# --- Refusals: exactly users/me's --------------------------------------------------------


CREDENTIALS = {
    "none": {},
    "wrong key": basic_auth("hamlet@example.com", "A" * 32),
    "malformed key": basic_auth("hamlet@example.com", "short"),
    "unknown email": basic_auth("nobody@example.com", "A" * 32),
    "not base64": {"HTTP_AUTHORIZATION": "Basic %%%"},
    "no colon": {"HTTP_AUTHORIZATION": "Basic aGFtbGV0"},
    "bearer": {"HTTP_AUTHORIZATION": "Bearer abc"},
}


@pytest.mark.parametrize("credentials", list(CREDENTIALS), ids=list(CREDENTIALS))
def test_refusals_are_users_me_refusals(client: Client, user: User, credentials: str) -> None:
    """Same status, body and challenge as users/me: one authentication function for both."""
    extra = CREDENTIALS[credentials]
    mine, theirs = verify(client, **extra), client.get(ME, **extra)
    assert mine.status_code == theirs.status_code >= 400
    assert mine.content == theirs.content
    assert mine.get("WWW-Authenticate") == theirs.get("WWW-Authenticate")


def test_no_credentials_is_zulips_401(client: Client, user: User) -> None:
    response = verify(client, HTTP_ACCEPT="application/json")
    refusal(
        response, 401, "Not logged in: API authentication or user session required", "UNAUTHORIZED"
    )
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE


def test_deactivated_user_is_refused(client: Client, user: User) -> None:
    set_active(user, False)
    response = verify(client, **basic_auth(user.delivery_email, user.api_key))
    refusal(response, 401, "Account is deactivated", "UNAUTHORIZED")


def test_deactivated_realm_is_refused(client: Client, user: User) -> None:
    user.realm.deactivated = True
    user.realm.save()
    response = verify(client, **basic_auth(user.delivery_email, user.api_key))
    refusal(response, 401, "This organization has been deactivated", "UNAUTHORIZED")


def test_rate_limit_is_users_me_limit_with_retry_after(
    client: Client, user: User, settings: Settings
) -> None:
    """verify and users/me count against one budget: api_by_user."""
    settings.RATE_LIMITING_RULES = {**settings.RATE_LIMITING_RULES, "api_by_user": [(60, 3)]}
    auth = basic_auth(user.delivery_email, user.api_key)
    assert client.get(ME, **auth).status_code == 200
    assert verify(client, **auth).status_code == 200
    assert verify(client, **auth).status_code == 200
    response = verify(client, **auth)
    body = refusal(response, 429, "API usage exceeded rate limit", "RATE_LIMIT_HIT")
    assert float(response["Retry-After"]) > 0 and body["retry-after"] > 0
    assert client.get(ME, **auth).status_code == 429


# --- Which request: forwarded headers, from trusted proxies only ------------------------


def test_realm_comes_from_the_forwarded_host(
    client: Client, user: User, other_realm: Realm, trusted: None
) -> None:
    """The root realm's user, on the other realm's host: refused as users/me would."""
    auth = basic_auth(user.delivery_email, user.api_key)
    granted(verify(client, **traefik("/", host=EXTERNAL_HOST), **auth), user)
    for headers in (
        traefik("/", host=f"other.{EXTERNAL_HOST}"),
        nginx("/", host=f"other.{EXTERNAL_HOST}"),
    ):
        response = verify(client, **headers, **auth)
        if "HTTP_X_ORIGINAL_URI" in headers:
            assert response.status_code == 401 and response["X-Keyhouse-Status"] == "401"
            continue
        refusal(response, 401, "Account is not associated with this subdomain", "UNAUTHORIZED")


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
    client: Client, user: User, other_realm: Realm
) -> None:
    """TRUSTED_PROXIES is empty: the client's own X-Forwarded-Host names no realm."""
    auth = basic_auth(user.delivery_email, user.api_key)
    response = verify(client, **traefik("/admin/", host=f"other.{EXTERNAL_HOST}"), **auth)
    granted(response, user)  # checked as a request to testserver, the root realm
    response = verify(client, **nginx("/", host=f"other.{EXTERNAL_HOST}"), **auth)
    granted(response, user)
    assert "X-Keyhouse-Status" not in response  # not nginx's shape either


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_ORIGINAL_URI": "/public/", "HTTP_X_FORWARDED_URI": "/admin/"},
        {"HTTP_X_ORIGINAL_METHOD": "GET", "HTTP_X_FORWARDED_METHOD": "DELETE"},
    ],
    ids=["uri", "method"],
)
def test_the_two_header_families_must_agree(
    client: Client, user: User, trusted: None, headers: dict[str, str]
) -> None:
    """A client behind Caddy adds X-Original-URI (or behind nginx X-Forwarded-Uri): refused."""
    extra = {"HTTP_X_FORWARDED_URI": "/x", **headers}
    response = verify(client, **extra, **basic_auth(user.delivery_email, user.api_key))
    assert response.status_code in (400, 401)
    body = (
        json.loads(response["X-Keyhouse-Error"])
        if "X-Keyhouse-Error" in response
        else (json_body(response, 400))
    )
    assert body["msg"].startswith("Conflicting X-") and body["code"] == "BAD_REQUEST"


def test_agreeing_families_are_fine(client: Client, user: User, trusted: None) -> None:
    extra = {**nginx("/x"), **traefik("/x")}
    granted(verify(client, **extra, **basic_auth(user.delivery_email, user.api_key)), user)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("HTTP_X_FORWARDED_HOST", "a.example, b.example"),
        ("HTTP_X_FORWARDED_HOST", "not allowed.example"),
        ("HTTP_X_FORWARDED_PROTO", "gopher"),
        ("HTTP_X_FORWARDED_URI", "relative/path"),
        ("HTTP_X_FORWARDED_METHOD", "get me"),
    ],
)
def test_unbelievable_forwarded_values_are_400(
    client: Client, user: User, trusted: None, header: str, value: str
) -> None:
    response = verify(client, **{header: value}, **basic_auth(user.delivery_email, user.api_key))
    body = json_body(response, 400)
    assert body["msg"].startswith("Invalid ") and body["code"] == "BAD_REQUEST"


def test_forwarded_host_outside_allowed_hosts_is_refused(
    client: Client, user: User, trusted: None, settings: Settings
) -> None:
    settings.ALLOWED_HOSTS = ["testserver", ".example.org"]
    auth = basic_auth(user.delivery_email, user.api_key)
    granted(verify(client, **traefik("/", host="example.org"), **auth), user)
    response = verify(client, **traefik("/", host="evil.test"), **auth)
    refusal(response, 400, "Invalid forwarded host", "BAD_REQUEST")


# --- nginx: every refusal a 401 carrying the real answer in headers -----------------------


def test_nginx_refusals_carry_status_and_body(client: Client, user: User, trusted: None) -> None:
    wrong = verify(client, **nginx("/x"), **basic_auth(user.delivery_email, "A" * 32))
    plain = verify(client, **traefik("/x"), **basic_auth(user.delivery_email, "A" * 32))
    assert wrong.status_code == 401 and wrong["X-Keyhouse-Status"] == "401"
    assert wrong["X-Keyhouse-Error"].encode() + b"\n" == plain.content
    assert wrong["WWW-Authenticate"] == WWW_AUTHENTICATE
    ok = verify(client, **nginx("/x"), **basic_auth(user.delivery_email, user.api_key))
    granted(ok, user)
    assert "X-Keyhouse-Status" not in ok


def test_nginx_rate_limit_keeps_retry_after(
    client: Client, user: User, trusted: None, settings: Settings
) -> None:
    settings.RATE_LIMITING_RULES = {**settings.RATE_LIMITING_RULES, "api_by_user": [(60, 1)]}
    auth = basic_auth(user.delivery_email, user.api_key)
    assert verify(client, **nginx("/x"), **auth).status_code == 200
    response = verify(client, **nginx("/x"), **auth)
    assert response.status_code == 401 and response["X-Keyhouse-Status"] == "429"
    assert float(response["Retry-After"]) > 0
    assert json.loads(response["X-Keyhouse-Error"])["code"] == "RATE_LIMIT_HIT"


# --- Rules (GATEWAY_RULES) -----------------------------------------------------------------

RULES = [
    {"path": "/admin/", "roles": ["owner", "admin"]},
    {"path": "/api/", "bots": True, "roles": ["owner", "admin", "moderator", "member"]},
    {"host": "bots.example.org", "bots": True, "roles": []},
    {"path": "/readonly/", "methods": ["POST", "PUT", "PATCH", "DELETE"], "allow": False},
    {"path": "/", "bots": False},
]


@pytest.fixture
def rules(settings: Settings, trusted: None) -> None:
    settings.GATEWAY_RULES = RULES


@pytest.fixture
def people(realm: Realm) -> dict[str, User]:
    def make(name: str, role: int = Role.MEMBER, bot: bool = False) -> User:
        user = create_user(realm, f"{name}@example.com", name.title(), role=role)
        if bot:
            user.is_bot = True
            user.save()
        return user

    return {
        "owner": make("owner", Role.OWNER),
        "admin": make("admin", Role.ADMINISTRATOR),
        "member": make("member"),
        "guest": make("guest", Role.GUEST),
        "bot": make("bot", bot=True),
    }


CASES = [
    # (who, method, host, uri, allowed)
    ("admin", "GET", "testserver", "/admin/users", True),
    ("owner", "GET", "testserver", "/admin/", True),
    ("member", "GET", "testserver", "/admin/users", False),
    ("member", "GET", "testserver", "/admin", False),  # the prefix without its slash
    ("member", "GET", "testserver", "/%61dmin/users", False),  # encoded
    ("member", "GET", "testserver", "/x/../admin/users", False),  # dot segments
    ("member", "GET", "testserver", "//admin//users", False),  # repeated slashes
    ("bot", "GET", "testserver", "/admin/", False),
    ("bot", "POST", "testserver", "/api/v1/messages", True),
    ("guest", "GET", "testserver", "/api/v1/messages", False),
    ("member", "GET", "testserver", "/api/v1/messages?x=/admin/", True),  # query ignored
    ("bot", "GET", "testserver", "/dashboard/", False),  # the last rule: no bots elsewhere
    ("member", "GET", "testserver", "/dashboard/", True),
    ("bot", "GET", "bots.example.org", "/anything", True),
    ("member", "GET", "bots.example.org", "/anything", False),  # roles = []: bots only
    ("member", "GET", "testserver", "/readonly/page", True),
    ("member", "DELETE", "testserver", "/readonly/page", False),
    ("admin", "POST", "testserver", "/readonly/page", False),  # allow = false: nobody
]


@pytest.mark.parametrize(("who", "method", "host", "uri", "allowed"), CASES)
def test_rules_first_match_decides(
    client: Client,
    rules: None,
    people: dict[str, User],
    who: str,
    method: str,
    host: str,
    uri: str,
    allowed: bool,
) -> None:
    user = people[who]
    auth = basic_auth(user.delivery_email, user.api_key)
    response = verify(client, **traefik(uri, method, host), **auth)
    if allowed:
        granted(response, user)
    else:
        assert refusal(response, 403, "Access denied", "BAD_REQUEST") == {
            "result": "error",
            "msg": "Access denied",
            "code": "BAD_REQUEST",
        }
        assert "Remote-User" not in response


def test_a_rule_refusal_through_nginx(client: Client, rules: None, people: dict[str, User]) -> None:
    user = people["member"]
    response = verify(client, **nginx("/admin/"), **basic_auth(user.delivery_email, user.api_key))
    assert response.status_code == 401 and response["X-Keyhouse-Status"] == "403"
    assert json.loads(response["X-Keyhouse-Error"])["msg"] == "Access denied"


def test_rules_by_realm(
    client: Client, other_realm: Realm, user: User, settings: Settings, trusted: None
) -> None:
    settings.GATEWAY_RULES = [{"path": "/", "realms": ["other"]}]
    stranger = create_user(other_realm, "laertes@example.com", "Laertes")
    host = f"other.{EXTERNAL_HOST}"
    granted(
        verify(
            client,
            **traefik("/", host=host),
            **basic_auth(stranger.delivery_email, stranger.api_key),
        ),
        stranger,
    )
    response = verify(
        client, **traefik("/", host=EXTERNAL_HOST), **basic_auth(user.delivery_email, user.api_key)
    )
    refusal(response, 403, "Access denied", "BAD_REQUEST")


# --- Browsers: the login page, and web sessions where the realm allows them ----------------


@pytest.fixture
def sessions(realm: Realm) -> Realm:
    realm.gateway_sessions = True
    realm.save()
    return realm


def test_browser_without_credentials_goes_to_login_and_back(
    client: Client, user: User, sessions: Realm, trusted: None
) -> None:
    response = verify(client, HTTP_ACCEPT=BROWSER, **traefik("/app/page?tab=2"))
    assert response.status_code == 302
    assert response["Location"] == "https://testserver/login/?next=%2Fapp%2Fpage%3Ftab%3D2"
    # The login page takes that next, and after signing in sends the browser back there.
    page = Client()
    login = page.post(
        "/login/?next=%2Fapp%2Fpage%3Ftab%3D2",
        {"username": user.delivery_email, "password": PASSWORD, "next": "/app/page?tab=2"},
    )
    assert login.status_code == 302 and login["Location"] == "/app/page?tab=2"
    granted(verify(page, HTTP_ACCEPT=BROWSER, **traefik("/app/page?tab=2")), user)


def test_redirect_through_nginx(client: Client, user: User, sessions: Realm, trusted: None) -> None:
    response = verify(client, HTTP_ACCEPT=BROWSER, **nginx("/app/"))
    assert response.status_code == 401 and response["X-Keyhouse-Status"] == "302"
    assert response["Location"] == "https://testserver/login/?next=%2Fapp%2F"
    assert "X-Keyhouse-Error" not in response


def test_a_post_goes_to_login_without_next(
    client: Client, user: User, sessions: Realm, trusted: None
) -> None:
    response = verify(client, HTTP_ACCEPT=BROWSER, **traefik("/app/form", "POST"))
    assert response.status_code == 302 and response["Location"] == "https://testserver/login/"


@pytest.mark.parametrize("uri", ["//evil.example/x", "/\\evil.example/x"])
def test_next_is_never_another_host(
    client: Client, user: User, sessions: Realm, trusted: None, uri: str
) -> None:
    response = verify(client, HTTP_ACCEPT=BROWSER, **traefik(uri))
    assert response.status_code == 302 and response["Location"] == "https://testserver/login/"


def test_no_redirect_to_a_host_that_is_not_a_realms(
    client: Client, user: User, sessions: Realm, trusted: None, external_host: str
) -> None:
    """With EXTERNAL_HOST set, only it and its subdomains are keyhouse's: others get the 401."""
    assert (
        verify(client, HTTP_ACCEPT=BROWSER, **traefik("/", host=external_host)).status_code == 302
    )
    for host in ("evil.test", f"nope.{external_host}"):  # not ours; ours but no such realm
        response = verify(client, HTTP_ACCEPT=BROWSER, **traefik("/", host=host))
        refusal(
            response,
            401,
            "Not logged in: API authentication or user session required",
            "UNAUTHORIZED",
        )


def test_no_redirect_where_the_realm_takes_no_sessions(
    client: Client, user: User, trusted: None
) -> None:
    """Signing in could not help: the browser gets the 401 (and its Basic prompt)."""
    response = verify(client, HTTP_ACCEPT=BROWSER, **traefik("/app/"))
    assert response.status_code == 401 and response["WWW-Authenticate"] == WWW_AUTHENTICATE


def test_a_session_counts_only_where_the_realm_allows_it(client: Client, user: User) -> None:
    client.force_login(user)
    assert verify(client).status_code == 401
    user.realm.gateway_sessions = True
    user.realm.save()
    granted(verify(client), user)


def test_a_session_of_a_deactivated_user_does_not_count(
    client: Client, user: User, sessions: Realm
) -> None:
    client.force_login(user)
    set_active(user, False)
    assert verify(client).status_code == 401


def test_a_session_of_another_realm_does_not_count(
    client: Client, other_realm: Realm, trusted: None
) -> None:
    other_realm.gateway_sessions = True
    other_realm.save()
    stranger = create_user(other_realm, "laertes@example.com", "Laertes")
    client.force_login(stranger)
    granted(verify(client, **traefik("/", host=f"other.{EXTERNAL_HOST}")), stranger)
    assert verify(client, **traefik("/", host=EXTERNAL_HOST)).status_code == 401


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, False),
        ({"HTTP_ORIGIN": "https://evil.example"}, False),
        ({"HTTP_ORIGIN": "http://testserver"}, False),  # the scheme differs
        ({"HTTP_ORIGIN": "https://testserver"}, True),
        ({"HTTP_SEC_FETCH_SITE": "same-origin"}, True),
        ({"HTTP_SEC_FETCH_SITE": "cross-site"}, False),
    ],
)
def test_unsafe_methods_by_session_must_come_from_the_site(
    client: Client,
    user: User,
    sessions: Realm,
    trusted: None,
    headers: dict[str, str],
    allowed: bool,
) -> None:
    """The upstream cannot check keyhouse's CSRF token: the browser's origin stands in."""
    client.force_login(user)
    response = verify(client, **traefik("/app/form", "POST"), **headers)
    if allowed:
        granted(response, user)
    else:
        body = json_body(response, 403)
        assert body["code"] == "CSRF_FAILED" and "Remote-User" not in response
    granted(verify(client, **traefik("/app/page", "GET"), **headers), user)  # safe: no check


def test_an_api_key_wins_over_a_session(
    client: Client, user: User, realm: Realm, sessions: Realm
) -> None:
    other = create_user(realm, "other@example.com", "Other")
    client.force_login(user)
    granted(verify(client, **basic_auth(other.delivery_email, other.api_key)), other)
    assert verify(client, **basic_auth(user.delivery_email, "A" * 32)).status_code == 401


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",  # no boundary
        "application/x-www-form-urlencoded; charset=rot13",
        "text/plain; charset=hex",
    ],
)
def test_the_original_requests_body_and_type_are_not_judged(
    client: Client, user: User, content_type: str
) -> None:
    """nginx's subrequest keeps the original's Content-Type; the upstream judges bodies."""
    auth = basic_auth(user.delivery_email, user.api_key)
    for body in (b"", b"\xff\xfe not utf-8"):
        response = client.generic("POST", VERIFY, body, content_type=content_type, **auth)
        granted(response, user)
