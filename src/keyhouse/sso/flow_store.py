"""Save and take (single use) the server-side state of an SSO flow (models.SSOFlow).

``redirect_saving_flow`` and ``take_callback_flow`` are what every social-core
method (OIDC, GitHub, Google, …) does around the IdP: keep the flow, bind it to the
browser with one HttpOnly cookie, and on the callback take it back or refuse.
``save_next_step`` keeps a step after the callback (GitHub's email choice) the
same way: single use, same browser, same lifetime.

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
    *,
    cross_site_post: bool = False,
) -> HttpResponse:
    """The redirect to the IdP, with the flow saved and bound to this browser.

    ``cross_site_post``: the IdP answers with a cross-site POST (Apple's
    ``form_post``), on which a SameSite=Lax cookie is not sent. Over HTTPS the
    binding cookie is then SameSite=None (browsers require Secure with it); it still
    binds the answer to this browser, since an attacker's page cannot give the
    victim's browser the attacker's cookie. Over plain HTTP it stays Lax (such an IdP
    only calls back to HTTPS anyway).
    """
    binding = request.COOKIES.get(BINDING_COOKIE) or secrets.token_urlsafe(32)
    save_flow(state, backend, idp, subdomain, binding, data)
    response = HttpResponseRedirect(url)
    set_binding_cookie(request, response, backend, binding, cross_site_post=cross_site_post)
    return response


def set_binding_cookie(
    request: HttpRequest,
    response: HttpResponse,
    backend: str,
    binding: str,
    *,
    cross_site_post: bool = False,
) -> None:
    """The browser's binding, sent back only to ``/complete/<backend>/``, for a flow's lifetime."""
    none = cross_site_post and request.is_secure()
    response.set_cookie(
        BINDING_COOKIE,
        binding,
        max_age=FLOW_LIFETIME_SECONDS,
        path=reverse("social_complete", args=(backend,)),
        secure=none or bool(settings.SESSION_COOKIE_SECURE),
        httponly=True,
        samesite="None" if none else "Lax",
    )


def save_next_step(request: HttpRequest, backend: str, subdomain: str, data: dict[str, Any]) -> str:
    """A further step of a flow just taken (e.g. choosing an email), bound to the same browser.

    Returns the new single-use state for the step's form; ``set_binding_cookie`` on
    the page renews the cookie for the step's lifetime.
    """
    binding = request.COOKIES.get(BINDING_COOKIE)
    if not binding:  # take_callback_flow only succeeds with it: a bug if missing
        raise AssertionError("a next step needs the flow's binding cookie")
    state = secrets.token_urlsafe(32)
    save_flow(state, backend, backend, subdomain, binding, data)
    return state


def take_callback_flow(
    request: HttpRequest, backend: str, audit_method: str | None = None
) -> TakenFlow:
    """The flow the IdP's callback names, or ``IdPFailure`` (expired, used, other browser)."""
    state = request.GET.get("state") or request.POST.get("state") or ""
    flow = take_flow(state, request.COOKIES.get(BINDING_COOKIE))
    if flow is None or flow.backend != backend:
        raise IdPFailure(
            "This sign-in link has expired or was already used. Please try again.",
            "SSO_STATE_INVALID",
            audit_method or backend,
        )
    return flow
