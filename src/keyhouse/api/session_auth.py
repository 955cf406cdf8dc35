"""Session (cookie) authentication for /json/ endpoints, as Zulip's authenticated_json_view.

The browser's session stands in for the API key here, so unlike the Basic-auth
API these requests must carry a CSRF token: a session cookie is sent by the
browser on any site's behalf, an Authorization header is not.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse

from keyhouse.api.account_checks import validate_account_and_subdomain
from keyhouse.api.errors import (
    CsrfFailedError,
    UnauthorizedError,
)
from keyhouse.auth import second_factor
from keyhouse.auth.ratelimit import hit


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, answering the reason instead of an HTML 403 page."""

    def _reject(self, request: HttpRequest, reason: str) -> str:
        return reason


def enforce_csrf(request: HttpRequest) -> None:
    check = _CsrfCheck(lambda _request: HttpResponse())
    check.process_request(request)
    reason = check.process_view(request, lambda _request: HttpResponse(), (), {})
    if reason is not None:
        raise CsrfFailedError(str(reason))


def login_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """Zulip's answer to a browser page without a session (JsonErrorHandler, reference §5.1).

    Only /json/ routes get it: an /api/ route never accepts a session, so sending
    a browser to the login page and back would loop (docs/compatibility.md).
    """
    return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': request.path})}")


def session_user_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Signed-in browser session, CSRF token, per-user rate limit, right subdomain.

    A session of an account with two-factor sign-in that no device verified does
    not count (beyond Zulip, which checks that on pages only; docs/security.md):
    otherwise it would trade the password alone for the API key.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        user = getattr(request, "user", None)
        if (
            user is None
            or not user.is_authenticated
            or not second_factor.session_verified(request, user)
        ):
            if "text/html" in request.headers.get("Accept", ""):
                return login_redirect(request)
            raise UnauthorizedError(www_authenticate="session")
        enforce_csrf(request)
        if settings.RATE_LIMITING:
            hit(request, "api_by_user", str(user.id))
        validate_account_and_subdomain(request, user)
        return view(request, user, *args, **kwargs)

    return wrapper
