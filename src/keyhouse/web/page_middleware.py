"""Django middleware that only pages need, skipped for the API under /api/.

API requests carry credentials in a header or the body, never cookies, and get
JSON, never a page: they need no flash messages, no CSRF cookie and no framing
policy. Skipping these middlewares for them saves a measurable share of an
API-key request's CPU (docs/performance.md). Sessions and the session user are
skipped under /api/ too, except for the development login, which starts a
session as Zulip's does (the CSRF token its login rotates is still sent); the
gateway's /auth/verify keeps them, since it accepts the browser's session.
Every /api/ view is CSRF-exempt, so Django's CSRF view check, which runs for all
paths, lets them through as before.

The Content-Security-Policy goes on every HTML response instead (error pages
included), and on nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware

# The gateway's /auth/verify (docs/gateway.md) is an API request too: a proxy asks,
# on every request it guards, and wants headers, never a page.
API_PREFIXES = ("/api/", "/auth/verify")


class _PagesOnly:
    get_response: Any

    def __call__(self, request: HttpRequest) -> Any:
        if request.path_info.startswith(API_PREFIXES):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class PageMessageMiddleware(_PagesOnly, MessageMiddleware):
    pass


# The /api/ views that use the session: the development login (Zulip's do_login).
# Every other /api/ view authenticates by header or body and never reads a cookie.
API_SESSION_PATHS = frozenset({"/api/v1/dev_fetch_api_key"})


class _NotForTheApi:
    """Skipped under /api/ (but for API_SESSION_PATHS); the gateway keeps it."""

    get_response: Any

    def __call__(self, request: HttpRequest) -> Any:
        path = request.path_info
        if path.startswith("/api/") and path not in API_SESSION_PATHS:
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class PageSessionMiddleware(_NotForTheApi, SessionMiddleware):
    pass


class PageAuthenticationMiddleware(_NotForTheApi, AuthenticationMiddleware):
    pass


class PageCsrfViewMiddleware(_PagesOnly, CsrfViewMiddleware):
    """Under /api/, only a token that a login rotated is sent (the dev login's session).

    Django's ``login()`` rotates the CSRF token so that a pre-login token cannot
    be used after it; the browser must get the new one with the session cookie.
    """

    def __call__(self, request: HttpRequest) -> Any:
        response = super().__call__(request)
        if request.path_info.startswith(API_PREFIXES) and request.META.get(
            "CSRF_COOKIE_NEEDS_UPDATE"
        ):
            return self.process_response(request, response)
        return response


class PageXFrameOptionsMiddleware(_PagesOnly, XFrameOptionsMiddleware):
    pass


# keyhouse's pages load one stylesheet from /static/ and no script at all, and
# they have no inline <script>, <style> or style="" (keep it so: a hash would be
# needed here). The admin's scripts and styles come from /static/ too. Forms post
# to the same origin, except that the mobile flow's sign-in ends in a redirect to
# the app's zulip:// URL, which browsers check against form-action. Django 5.2 has
# no CSP support of its own (django-csp would be a dependency for one header).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self' zulip:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)


class ContentSecurityPolicyMiddleware:
    """The policy on HTML responses; a view that sets its own header keeps it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
