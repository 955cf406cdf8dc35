"""Cookies are ``Secure`` whenever the request came over HTTPS, with no setting to remember.

Django marks the session and CSRF cookies Secure only if SESSION_COOKIE_SECURE /
CSRF_COOKIE_SECURE say so, whatever the request; Zulip's production settings
turn both on. keyhouse runs plain http for trials and behind a TLS proxy in
production from the same defaults, so it decides per request: a request that
``is_secure()`` (a direct HTTPS request, or X-Forwarded-Proto: https with
USE_X_FORWARDED_PROTO on) gets every cookie it is sent marked Secure, so a
later plain-http request to the same host never carries the session.
``SECURE_COOKIES`` still forces it for every request.

Django has no per-request switch for this, hence the few lines here.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class SecureCookiesMiddleware:
    """Outside the session, CSRF and messages middleware, so it sees every cookie they set."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.cookies and request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
        return response
