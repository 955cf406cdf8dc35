"""Page-only middleware (web/page_middleware.py): skipped under /api/, kept for pages.

Skipping CSRF, messages and framing for the JSON API saves CPU on every API-key
request; these tests hold the other half of that bargain: pages keep their
clickjacking header and their CSRF check, and the API still answers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from keyhouse.web.page_middleware import CONTENT_SECURITY_POLICY
from tests.api.helpers import json_body
from tests.conftest import PASSWORD
from tests.web.conftest import csrf_token

DEV_BACKEND = "keyhouse.auth.backends.DevAuthBackend"


def test_settings_use_the_page_only_variants() -> None:
    """Django's own classes would run for /api/ too: they must not be listed beside ours."""
    middleware = django_settings.MIDDLEWARE
    for name in (
        "SessionMiddleware",
        "CsrfViewMiddleware",
        "AuthenticationMiddleware",
        "MessageMiddleware",
        "XFrameOptionsMiddleware",
    ):
        assert f"keyhouse.web.page_middleware.Page{name}" in middleware
        assert not [m for m in middleware if m.endswith(f".{name}")], middleware
    # Messages need the session and the CSRF check comes before authentication, as in Django.
    assert middleware.index("keyhouse.web.page_middleware.PageSessionMiddleware") < (
        middleware.index("keyhouse.web.page_middleware.PageMessageMiddleware")
    )
    assert middleware.index("keyhouse.web.page_middleware.PageCsrfViewMiddleware") < (
        middleware.index("keyhouse.web.page_middleware.PageAuthenticationMiddleware")
    )


def test_api_response_has_no_framing_header_and_no_cookies(client: Client, realm: Realm) -> None:
    response = client.get("/api/v1/server_settings")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers
    assert django_settings.CSRF_COOKIE_NAME not in response.cookies
    assert not response.cookies


def test_api_login_that_rotates_the_csrf_token_sends_the_new_token(
    client: Client, settings: Settings, user: User
) -> None:
    """The dev login calls Django's login(), which rotates the CSRF token: the browser
    must get the new token with the new session, or it keeps the pre-login one."""
    settings.DEV_MODE = True
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, DEV_BACKEND]
    user.realm.authentication_methods = ["email", "dev"]
    user.realm.save()
    response = client.post("/api/v1/dev_fetch_api_key", {"username": user.delivery_email})
    assert json_body(response, 200)["api_key"] == user.api_key
    assert django_settings.SESSION_COOKIE_NAME in response.cookies  # sessions stay on
    assert response.cookies[django_settings.CSRF_COOKIE_NAME].value
    assert "X-Frame-Options" not in response.headers


@pytest.mark.parametrize("path", ["/login/", "/accounts/password/reset/"])
def test_pages_keep_the_framing_header_and_csrf_cookie(
    client: Client, realm: Realm, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == django_settings.X_FRAME_OPTIONS == "DENY"
    assert django_settings.CSRF_COOKIE_NAME in response.cookies  # the form's token


def test_page_post_without_token_still_refused(user: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    csrf_token(browser)  # has the cookie, as a browser would, but posts no token
    response = browser.post("/login/", {"username": user.delivery_email, "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session
    # … and with the token the same form goes through, so the 403 was the CSRF check
    token = csrf_token(browser)
    response = browser.post(
        "/login/",
        {"username": user.delivery_email, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert browser.session["_auth_user_id"] == str(user.id)


def test_api_post_needs_no_csrf_token(user: User) -> None:
    """API clients send credentials, never cookies: no CSRF token to give."""
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/fetch_api_key", {"username": user.delivery_email, "password": PASSWORD}
    )
    assert json_body(response, 200)["api_key"] == user.api_key
    assert "X-Frame-Options" not in response.headers


# --- Content-Security-Policy ------------------------------------------------------

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "src/keyhouse/web/templates"
_INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE
)


@pytest.mark.parametrize(
    "path", ["/login/", "/accounts/password/reset/", "/accounts/password/reset/done/",
             "/accounts/password/reset/MQ/not-a-token/", "/accounts/login/subdomain/" + "x" * 32,
             "/account/api-key/", "/admin/login/"],
)  # fmt: skip
def test_pages_carry_the_policy(client: Client, realm: Realm, path: str) -> None:
    response = client.get(path, follow=True)
    assert response["Content-Type"].startswith("text/html"), path
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_an_unknown_realms_page_carries_it_too(
    client: Client, realm: Realm, external_host: str
) -> None:
    response = client.get("/login/", HTTP_HOST=f"nowhere.{external_host}")
    assert response["Content-Type"].startswith("text/html")
    assert "Content-Security-Policy" in response


def test_json_answers_do_not(client: Client, realm: Realm) -> None:
    for path in ("/api/v1/server_settings", "/api/v1/nope", "/json/fetch_api_key"):
        assert "Content-Security-Policy" not in client.get(path), path


def test_the_policy_allows_no_inline_code_and_the_templates_have_none() -> None:
    """An inline script or style would be blocked: the templates must not need one."""
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    offenders = [
        f"{template.relative_to(TEMPLATES_DIR)}: {match.group(0)}"
        for template in TEMPLATES_DIR.rglob("*.html")
        for match in _INLINE.finditer(template.read_text())
    ]
    assert not offenders


def test_the_mobile_flow_may_end_in_the_apps_scheme() -> None:
    """Browsers hold a form's redirect to form-action: the zulip:// hand-off must pass."""
    assert "form-action 'self' zulip:" in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    ("path", "has_session"),
    [
        ("/api/v1/users/me", False),
        ("/api/v1/fetch_api_key", False),
        ("/api/v1/dev_fetch_api_key", True),  # the development login starts a session
        ("/auth/verify", True),  # the gateway accepts the browser's session
        ("/json/fetch_api_key", True),
        ("/login/", True),
    ],
)
def test_the_session_and_its_user_are_loaded_only_where_used(path: str, has_session: bool) -> None:
    from django.test import RequestFactory

    from keyhouse.web.page_middleware import PageAuthenticationMiddleware, PageSessionMiddleware

    seen: dict[str, bool] = {}

    def view(request):  # type: ignore[no-untyped-def]
        seen["session"] = hasattr(request, "session")
        seen["user"] = hasattr(request, "user")
        return HttpResponse("ok")

    chain = PageSessionMiddleware(PageAuthenticationMiddleware(view))
    chain(RequestFactory().get(path))
    assert seen == {"session": has_session, "user": has_session}
