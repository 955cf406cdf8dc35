"""Save and take (single use) the server-side state of an SSO flow (models.SSOFlow).

Taking deletes the row and trusts only a delete that removed it, as
web/login_tokens.py does: of two callbacks with one state, exactly one wins.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils.timezone import now

from keyhouse.sso.models import SSOFlow

# Zulip keeps Apple's relay state 10 minutes and SAML's 15: long enough for an IdP
# login with a second factor, short enough that a stolen state soon goes stale.
FLOW_LIFETIME_SECONDS = 600


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
