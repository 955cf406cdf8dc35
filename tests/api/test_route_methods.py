"""Every route × every method × every Accept, with and without credentials (issue #12 E15).

Zulip's answers (reference §1.1, §3, §5.1; zerver/lib/rest.py, zerver/lib/response.py):
- a ``rest_path`` route (``users/me``, ``users/me/api_key/regenerate``,
  ``json/fetch_api_key``) checks the method before authenticating: OPTIONS is a
  204 with ``Allow`` (sorted), a GET route also takes HEAD, any other method is
  ``json_method_not_allowed``: 405 ``{"result","msg":"Method Not Allowed",
  "allowed_methods"}`` (no ``code``) with ``Allow``;
- a plain ``path`` with ``require_post`` / ``require_safe`` (``fetch_api_key``,
  ``server_settings``) gives that 405 to every other method, OPTIONS included;
- a /json/ route without a session sends a browser (``Accept`` with
  ``text/html``) to ``/login/?next=<path>`` and everyone else a 401.
Routes are read from the URLconf, so a new one is swept for 500s at once and
must be given its expected methods below before the suite passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from pytest_django.fixtures import Settings

from keyhouse.users.models import User
from tests.conftest import basic_auth

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ACCEPTS = ("application/json", "text/html", "*/*")
# What Firefox and Chrome send for a page load.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CREDENTIALS = ("none", "basic", "session")
ANY = METHODS  # a route that takes every method (Zulip's has no method check)


@dataclass(frozen=True)
class Api:
    """An /api/ or /json/ route: Zulip's allowed_methods, in Zulip's order."""

    methods: tuple[str, ...]
    rest: bool  # Zulip routes it through rest_dispatch (rest_path)
    dev: bool = False  # exists only with DEV_MODE on


API: dict[str, Api] = {
    "api/v1/fetch_api_key": Api(("POST",), rest=False),
    "api/v1/jwt/fetch_api_key": Api(("POST",), rest=False),  # Zulip's require_post path
    "api/v1/server_settings": Api(("GET", "HEAD"), rest=False),
    "api/v1/users/me": Api(("GET", "HEAD"), rest=True),
    "api/v1/users/me/api_key/regenerate": Api(("POST",), rest=True),
    "json/fetch_api_key": Api(("POST",), rest=True),
    "api/v1/dev_fetch_api_key": Api(("POST",), rest=False, dev=True),
    "api/v1/dev_list_users": Api(ANY, rest=False, dev=True),
}
FORM = ("GET", "HEAD", "POST")
SAFE = ("GET", "HEAD")
PAGES: dict[str, tuple[str, ...]] = {
    "login/": FORM,
    "accounts/login/": FORM,
    "accounts/logout/": FORM,
    "accounts/login/jwt/": ("POST",),  # Zulip's remote_user_jwt: require_post
    "accounts/login/subdomain/<str:token>": ANY,  # Zulip's log_into_subdomain: any method
    # SSO (web/sso.py): Zulip's start_social_login / social_django's complete: any method.
    "accounts/login/social/<str:backend>": ANY,
    "accounts/login/social/<str:backend>/<str:idp>": ANY,
    "accounts/register/social/<str:backend>": ANY,
    "accounts/register/social/<str:backend>/<str:idp>": ANY,
    "complete/<str:backend>/": ANY,
    # Remote-user SSO (web/remote_user.py): Zulip's views have no method check either.
    "accounts/login/start/sso/": ANY,
    "accounts/login/sso/": ANY,
    "account/api-key/": FORM,
    "account/api-key/zuliprc": ("POST",),
    "account/api-key/regenerate": ("POST",),
    # Two-factor sign-in (web/two_factor_pages.py): Zulip's two_factor.urls paths.
    "account/login/": FORM,  # keyhouse's login page, not the library's wizard
    "account/two_factor/": SAFE,
    "account/two_factor/setup/": FORM,
    "account/two_factor/qrcode/": ("GET",),  # django-two-factor-auth's QRGeneratorView
    "account/two_factor/setup/complete/": SAFE,
    "account/two_factor/backup/tokens/": FORM,
    "account/two_factor/disable/": FORM,
    "accounts/password/reset/": FORM,
    "accounts/password/reset/done/": SAFE,
    "accounts/password/reset/<uidb64>/<token>/": FORM,
    "accounts/password/done/": SAFE,
    "saml/metadata.xml": SAFE,
    "accounts/login/social/saml/<str:idp_name>": SAFE,
    "accounts/register/social/saml/<str:idp_name>": SAFE,
    "complete/saml/": FORM,  # POST SAMLResponse (sign-in), GET SAMLRequest (logout)
    "health": SAFE,
    "ready": SAFE,
    "metrics": SAFE,
}
# The gateway's forward-auth check (docs/gateway.md): a proxy asks with any method
# (nginx's auth_request keeps the original one), and every answer is JSON.
GATEWAY: dict[str, tuple[str, ...]] = {"auth/verify": ANY}
SAMPLE_ARGS = {"token": "abc", "uidb64": "MQ", "object_id": "1", "app_label": "users"}


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        else:
            assert isinstance(entry, URLPattern)
            yield prefix + str(entry.pattern)


def all_routes() -> list[str]:
    return sorted(set(_routes(get_resolver().url_patterns)))


def url_for(route: str) -> str:
    """A concrete path for a route: converters and regex groups filled with samples."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLE_ARGS.get(m.group(1), "x"), route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: SAMPLE_ARGS.get(m.group(1), "x"), path)
    return "/" + path.replace("^", "").replace("$", "").replace("\\", "")


def call(client: Client, method: str, url: str, accept: str, **extra: Any) -> HttpResponse:
    response: HttpResponse = client.generic(method, url, HTTP_ACCEPT=accept, **extra)
    return response


def clients(user: User) -> dict[str, tuple[Client, dict[str, str]]]:
    signed_in = Client()
    signed_in.force_login(user)
    return {
        "none": (Client(), {}),
        "basic": (Client(), basic_auth(user.delivery_email, user.api_key)),
        "session": (signed_in, {}),
    }


def method_not_allowed(response: HttpResponse, methods: tuple[str, ...]) -> None:
    """Zulip's json_method_not_allowed, and the Allow header of Django's HttpResponseNotAllowed."""
    assert response.status_code == 405, (response.status_code, response.content)
    assert response["Allow"] == ", ".join(methods)
    assert response["Content-Type"] == "application/json"
    if response.request["REQUEST_METHOD"] == "HEAD":
        assert response.content == b""  # the status and headers tell; a HEAD has no body
        return
    body = json.loads(response.content)
    assert body == {"result": "error", "msg": "Method Not Allowed", "allowed_methods": [*methods]}


# --- the URLconf and this table agree ------------------------------------------------


def test_every_route_has_expected_methods() -> None:
    """A new route fails here until it says which methods it takes."""
    routes = {r for r in all_routes() if not r.startswith("admin/")}
    assert routes == set(API) | set(PAGES) | set(GATEWAY)


# --- never a 500, whatever the route, method, Accept or credentials -------------------


SWEEP = [
    *[pytest.param(route, False, id=route) for route in all_routes()],
    # DEV_MODE changes only the dev routes; sweep those once more with it on.
    *[pytest.param(route, True, id=f"{route}[DEV_MODE]") for route, api in API.items() if api.dev],
]


@pytest.mark.parametrize(("route", "dev_mode"), SWEEP)
def test_no_combination_is_a_server_error(
    route: str, dev_mode: bool, user: User, settings: Settings
) -> None:
    settings.DEV_MODE = dev_mode
    url = url_for(route)
    json_route = url.startswith(("/api/", "/json/", "/auth/verify"))
    for cred, (client, extra) in clients(user).items():
        for accept in ACCEPTS:
            for method in (*METHODS, "TRACE"):
                response = call(client, method, url, accept, **extra)
                where = (method, url, accept, cred, response.status_code)
                assert response.status_code < 500, (*where, response.content[:300])
                if response.status_code == 405:
                    assert response.has_header("Allow"), where
                if json_route and response.status_code not in (204, 302):
                    assert response["Content-Type"] == "application/json", where
                    if method != "HEAD" and response.status_code >= 400:
                        assert json.loads(response.content)["result"] == "error", where


# --- API routes: Zulip's answers ----------------------------------------------------------


def _api(dev: bool) -> list[str]:
    return [route for route, api in API.items() if api.dev == dev]


@pytest.mark.parametrize("route", _api(dev=False))
def test_wrong_method_is_zulips_405_before_authentication(route: str, user: User) -> None:
    api = API[route]
    wrong = [m for m in METHODS if m not in api.methods and not (api.rest and m == "OPTIONS")]
    assert wrong
    for cred, (client, extra) in clients(user).items():
        for accept in ACCEPTS:
            for method in wrong:
                response = call(client, method, url_for(route), accept, **extra)
                try:
                    method_not_allowed(response, api.methods)
                except AssertionError as exc:
                    raise AssertionError((method, accept, cred)) from exc


@pytest.mark.parametrize("route", _api(dev=False))
def test_options(route: str, user: User) -> None:
    """rest_dispatch answers OPTIONS itself (204, sorted Allow); require_post/safe refuse it."""
    api = API[route]
    for cred, (client, extra) in clients(user).items():
        for accept in ACCEPTS:
            response = call(client, "OPTIONS", url_for(route), accept, **extra)
            if api.rest:
                assert response.status_code == 204, (cred, accept, response.content)
                assert response["Allow"] == ", ".join(sorted(api.methods))
                assert response.content == b""
            else:
                method_not_allowed(response, api.methods)


@pytest.mark.parametrize("route", ["api/v1/server_settings", "api/v1/users/me"])
def test_head_answers_as_get_without_a_body(route: str, user: User) -> None:
    client, extra = clients(user)["basic"]
    get = call(client, "GET", url_for(route), "*/*", **extra)
    head = call(client, "HEAD", url_for(route), "*/*", **extra)
    assert get.status_code == head.status_code == 200
    assert head["Content-Type"] == "application/json" and head.content == b""


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT])
def test_unauthenticated_browser_on_json_route_goes_to_login(accept: str, user: User) -> None:
    """Zulip's JsonErrorHandler: MissingAuthenticationError + text/html → the login page."""
    response = Client().post("/json/fetch_api_key", {"password": "x"}, HTTP_ACCEPT=accept)
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fjson%2Ffetch_api_key"


@pytest.mark.parametrize("accept", ["application/json", "*/*", ""])
def test_unauthenticated_client_on_json_route_gets_401(accept: str, user: User) -> None:
    response = Client().post("/json/fetch_api_key", HTTP_ACCEPT=accept)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Session realm="zulip"'
    assert json.loads(response.content)["code"] == "UNAUTHORIZED"


def test_unauthenticated_browser_on_api_route_gets_json_not_a_redirect(user: User) -> None:
    """Deliberate difference (docs/compatibility.md): /api/ never takes a session, so
    Zulip's redirect to the login page would come straight back here, for ever."""
    response = Client().get("/api/v1/users/me", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="zulip"'


def test_dev_routes_without_dev_mode_are_json_404s_for_every_method(user: User) -> None:
    for route in _api(dev=True):
        for cred, (client, extra) in clients(user).items():
            for method in METHODS:
                response = call(client, method, url_for(route), "text/html", **extra)
                assert response.status_code == 404, (route, method, cred)
                assert response["Content-Type"] == "application/json"


def test_dev_routes_in_dev_mode(user: User, settings: Settings) -> None:
    settings.DEV_MODE = True
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "keyhouse.auth.backends.DevAuthBackend",
    ]
    client = Client()
    for method in METHODS:
        if method != "POST":
            method_not_allowed(call(client, method, "/api/v1/dev_fetch_api_key", "*/*"), ("POST",))
        # Zulip's path("dev_list_users", …) has no method check at all.
        listed = call(client, method, "/api/v1/dev_list_users", "*/*")
        assert listed.status_code == 200, (method, listed.content)


# --- the gateway: every method is a question about the original request -----------------


@pytest.mark.parametrize("route", sorted(GATEWAY))
def test_gateway_takes_every_method(route: str, user: User) -> None:
    """Granted with a key, Zulip's 401 without; never a 405, OPTIONS included."""
    for method in (*GATEWAY[route], "TRACE"):
        for cred in ("none", "basic"):
            client, extra = clients(user)[cred]
            response = call(client, method, url_for(route), "*/*", **extra)
            expected = 200 if cred == "basic" else 401
            assert response.status_code == expected, (method, cred, response.content)
            assert response["Content-Type"] == "application/json"


# --- pages: a wrong method is a 405 with Allow, before any sign-in redirect --------------


@pytest.mark.parametrize("route", sorted(r for r, m in PAGES.items() if m != ANY))
def test_page_wrong_method_is_405_with_allow(route: str, user: User) -> None:
    allowed = PAGES[route]
    for cred in ("none", "session"):
        client, extra = clients(user)[cred]
        for method in METHODS:
            if method in allowed:
                continue
            for accept in ACCEPTS:
                response = call(client, method, url_for(route), accept, **extra)
                assert response.status_code == 405, (method, accept, cred, response.status_code)
                assert response["Allow"] == ", ".join(allowed)


@pytest.mark.parametrize("route", sorted(r for r, m in PAGES.items() if m != ANY))
def test_page_allowed_methods_are_not_405(route: str, user: User) -> None:
    for cred in ("none", "session"):
        client, extra = clients(user)[cred]
        for method in PAGES[route]:
            response = call(client, method, url_for(route), "text/html", **extra)
            assert response.status_code != 405, (method, cred)
