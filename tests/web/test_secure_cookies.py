"""Cookies are Secure on HTTPS requests (web/secure_cookies.py), with no extra setting.

Through the whole middleware stack: the CSRF cookie of the login page and the
session cookie of a sign-in, behind a proxy that says X-Forwarded-Proto: https
(USE_X_FORWARDED_PROTO on), on a direct HTTPS request, and on plain http.
"""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.users.models import User
from tests.conftest import PASSWORD
from tests.web.conftest import csrf_token

# nginx passes the Host header on (proxy_set_header Host $host), as browsers send it.
PROXY_SAYS_HTTPS = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_HOST": "testserver"}


@pytest.fixture
def behind_tls_proxy(settings: Settings) -> None:
    """What USE_X_FORWARDED_PROTO = true sets (settings.py)."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def sign_in(client: Client, **extra: object) -> dict[str, bool]:
    """Load the login page and sign in; whether each cookie set on the way was Secure."""
    secure: dict[str, bool] = {}
    page = client.get("/login/", **extra)
    secure.update({name: bool(m["secure"]) for name, m in page.cookies.items()})
    token = str(page.context["csrf_token"])
    data = {"username": "hamlet@example.com", "password": PASSWORD, "csrfmiddlewaretoken": token}
    # Over HTTPS Django's CSRF check also wants a same-origin Referer, as browsers send.
    response = client.post("/login/", data, HTTP_REFERER="https://testserver/login/", **extra)
    assert response.status_code == 302, response.content
    secure.update({name: bool(m["secure"]) for name, m in response.cookies.items()})
    assert {"csrftoken", "sessionid"} <= secure.keys(), secure
    return secure


def test_behind_a_tls_proxy_every_cookie_is_secure(behind_tls_proxy: None, user: User) -> None:
    secure = sign_in(Client(enforce_csrf_checks=True), **PROXY_SAYS_HTTPS)
    assert all(secure.values()), secure


def test_a_direct_https_request_gets_secure_cookies(user: User) -> None:
    secure = sign_in(Client(enforce_csrf_checks=True), secure=True)
    assert all(secure.values()), secure


def test_plain_http_cookies_are_not_secure(behind_tls_proxy: None, user: User) -> None:
    """A plain-http trial must keep working: a Secure cookie would never come back."""
    secure = sign_in(Client(enforce_csrf_checks=True))
    assert not any(secure.values()), secure


def test_the_header_is_ignored_unless_the_proxy_is_trusted(user: User) -> None:
    """Without USE_X_FORWARDED_PROTO, X-Forwarded-Proto is the client's word: not https."""
    secure = sign_in(Client(enforce_csrf_checks=True), **PROXY_SAYS_HTTPS)
    assert not any(secure.values()), secure


def test_secure_cookies_still_forces_it(settings: Settings, user: User) -> None:
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True  # SECURE_COOKIES = true
    secure = sign_in(Client(enforce_csrf_checks=True))
    assert all(secure.values()), secure


def test_api_responses_are_untouched(behind_tls_proxy: None, user: User) -> None:
    response = Client().get("/api/v1/server_settings", **PROXY_SAYS_HTTPS)
    assert response.status_code == 200 and not response.cookies
    assert csrf_token(Client(), **PROXY_SAYS_HTTPS)
