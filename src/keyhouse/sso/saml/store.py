"""The AuthnRequests and LogoutRequests we sent, kept server-side until answered (or expired).

An answer is taken at most once: the row is deleted as it is read, so a replayed
response finds nothing and is refused as unsolicited. python3-saml checks an
answer's InResponseTo only against an ID we hand it; this is where that ID comes
from (python-social-auth keeps it in the session, which the IdP's cross-site
POST does not bring back under SameSite=Lax).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from keyhouse.sso.saml.models import OutstandingRequest, SeenAssertion

# Long enough to type a password and a second factor at the IdP; Zulip keeps its
# SAML relay state for 15 minutes too.
REQUEST_LIFETIME = timedelta(minutes=15)
LOGIN = OutstandingRequest.LOGIN
LOGOUT = OutstandingRequest.LOGOUT


def new_state_token() -> str:
    return secrets.token_urlsafe(32)


def remember(
    request_id: str,
    state_token: str,
    idp: str,
    subdomain: str,
    params: dict[str, str],
    *,
    kind: str = OutstandingRequest.LOGIN,
) -> None:
    now = timezone.now()
    OutstandingRequest.objects.filter(expires_at__lte=now).delete()  # the table stays small
    OutstandingRequest.objects.create(
        kind=kind,
        request_id=request_id,
        state_token=state_token,
        idp=idp,
        subdomain=subdomain,
        params=params,
        expires_at=now + REQUEST_LIFETIME,
    )


def take(
    *, state_token: str = "", request_id: str = "", kind: str = OutstandingRequest.LOGIN
) -> OutstandingRequest | None:
    """The unexpired request of this kind with this token (or ID), removed: it answers once."""
    lookup = {"state_token": state_token} if state_token else {"request_id": request_id}
    if not any(lookup.values()):
        return None
    with transaction.atomic():
        row = OutstandingRequest.objects.select_for_update().filter(kind=kind, **lookup).first()
        if row is None:
            return None
        deleted, _ = OutstandingRequest.objects.filter(pk=row.pk).delete()
    if not deleted or row.expires_at <= timezone.now():
        return None  # a concurrent taker won, or it is too late
    return row


def first_use_of_assertion(assertion_id: str, valid_until: datetime | None) -> bool:
    """True the first time an assertion ID is presented (IdP-initiated replay protection)."""
    now = timezone.now()
    SeenAssertion.objects.filter(expires_at__lte=now).delete()
    until = max(valid_until or now, now) + timedelta(minutes=5)  # python3-saml's clock drift
    try:
        with transaction.atomic():
            SeenAssertion.objects.create(assertion_id=assertion_id[:100], expires_at=until)
    except IntegrityError:
        return False
    return True
