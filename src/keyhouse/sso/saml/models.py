"""The AuthnRequests we sent and not yet saw answered: kept in the database.

The IdP POSTs its answer cross-site, so the SameSite=Lax session cookie does not
come back with it (Zulip keeps this state in Redis for the same reason). A row,
not process memory, so that any worker or server can take the answer.
"""

from __future__ import annotations

from django.db import models


class OutstandingRequest(models.Model):
    """An AuthnRequest or LogoutRequest: its ID (the answer's InResponseTo), what to do after."""

    LOGIN = "login"
    LOGOUT = "logout"

    # A LogoutResponse can only answer a LogoutRequest, a sign-in only an AuthnRequest.
    kind = models.CharField(max_length=8, default=LOGIN)
    request_id = models.CharField(max_length=100, unique=True)
    # The RelayState we sent, {"state_token": ...}: finds this row again.
    state_token = models.CharField(max_length=64, unique=True)
    idp = models.CharField(max_length=100)
    subdomain = models.CharField(max_length=63, blank=True)
    # next, mobile_flow_otp, desktop_flow_otp: never travel through the IdP.
    params = models.JSONField(default=dict)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"SAML {self.kind} request {self.request_id} to {self.idp}"


class SeenAssertion(models.Model):
    """An assertion ID we accepted, until the assertion would have expired anyway.

    An IdP-initiated response answers no request of ours, so nothing else stops
    the same response being posted twice within its validity window.
    """

    assertion_id = models.CharField(max_length=100, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"SAML assertion {self.assertion_id}"
