"""The server-side half of an SSO flow, keyed by the OAuth ``state`` it sent the IdP.

In the database, not the session: the IdP's answer may arrive without our cookies
(SameSite=Lax drops them on cross-site POSTs) or at another server, and an OTP kept
in a session would leak into the browser's next sign-in (Zulip's issue 13560).
"""

from __future__ import annotations

from django.db import models


class SSOFlow(models.Model):
    state = models.CharField(max_length=128, unique=True)
    backend = models.CharField(max_length=32)
    idp = models.CharField(max_length=64)
    subdomain = models.CharField(max_length=63, blank=True)
    # sha256 of the browser's binding cookie: the answer must come back to that browser.
    browser_hash = models.CharField(max_length=64)
    # python-social-auth's transaction (state, nonce) and our relay params (OTPs, next).
    data = models.JSONField(default=dict)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"SSO flow {self.backend}:{self.idp} for {self.subdomain or '(root)'}"
