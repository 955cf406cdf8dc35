"""Save and take (single use) the server-side state of an SSO flow (models.SSOFlow).

``redirect_saving_flow`` and ``take_callback_flow`` are what every social-core
method (OIDC, GitHub, Google) does around the IdP: keep the flow, bind it to the
browser with one HttpOnly cookie, and on the callback take it back or refuse.

Taking deletes the row and trusts only a delete that removed it, as
web/login_tokens.py does: of two callbacks with one state, exactly one wins.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.timezone import now

from keyhouse.sso.models import SSOFlow
from keyhouse.sso.registry import IdPFailure

# Zulip keeps Apple's relay state 10 minutes and SAML's 15: long enough for an IdP
# login with a second factor, short enough that a stolen state soon goes stale.
FLOW_LIFETIME_SECONDS = 600
# One cookie for every method: one flow per browser at a time.
BINDING_COOKIE = "keyhouse_sso"


@dataclass
class TakenFlow:
    backend: str
    idp: str
    subdomain: str
    data: dict[str, Any]


def browser_hash(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


def save_flow(
    state: str, backend: str, idp: str, subdomain: str, binding: str, data: dict[str, Any]
) -> None:
    current = now()
    SSOFlow.objects.filter(expires_at__lt=current).delete()
    SSOFlow.objects.create(
        state=state,
        backend=backend,
        idp=idp,
        subdomain=subdomain,
        browser_hash=browser_hash(binding),
        data=data,
        expires_at=current + timedelta(seconds=FLOW_LIFETIME_SECONDS),
    )


def take_flow(state: str, binding: str | None) -> TakenFlow | None:
    """The flow for ``state`` if unused, unexpired and from this browser; used up either way."""
    if not state or len(state) > 128:
        return None
    row = SSOFlow.objects.filter(state=state).first()
    if row is None:
        return None
    deleted, _ = SSOFlow.objects.filter(pk=row.pk).delete()
    if deleted != 1 or row.expires_at <= now():
        return None
    if binding is None or not hmac.compare_digest(browser_hash(binding), row.browser_hash):
        return None
    return TakenFlow(row.backend, row.idp, row.subdomain, row.data)


def redirect_saving_flow(
    request: HttpRequest,
    url: str,
    state: str,
    backend: str,
    idp: str,
    subdomain: str,
    data: dict[str, Any],
) -> HttpResponse:
    """The redirect to the IdP, with the flow saved and bound to this browser."""
    binding = request.COOKIES.get(BINDING_COOKIE) or secrets.token_urlsafe(32)
    save_flow(state, backend, idp, subdomain, binding, data)
    response = HttpResponseRedirect(url)
    response.set_cookie(
        BINDING_COOKIE,
        binding,
        max_age=FLOW_LIFETIME_SECONDS,
        path=reverse("social_complete", args=(backend,)),
        secure=bool(settings.SESSION_COOKIE_SECURE),
        httponly=True,
        samesite="Lax",
    )
    return response


def take_callback_flow(request: HttpRequest, backend: str) -> TakenFlow:
    """The flow the IdP's callback names, or ``IdPFailure`` (expired, used, other browser)."""
    state = request.GET.get("state") or request.POST.get("state") or ""
    flow = take_flow(state, request.COOKIES.get(BINDING_COOKIE))
    if flow is None or flow.backend != backend:
        raise IdPFailure(
            "This sign-in link has expired or was already used. Please try again.",
            "SSO_STATE_INVALID",
            backend,
        )
    return flow
