"""Short-lived state of the browser sign-in flows, kept in the database.

The database (not process memory) so that a token issued by one worker or server
is honoured by any other; SQLite and PostgreSQL both work.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class LoginToken(models.Model):
    """A single-use token that buys a browser session (the desktop flow, reference §6.5).

    Zulip keeps these in Redis for 15 seconds; here a row with an expiry. The token
    has the API-key format, as ``/accounts/login/subdomain/<token>`` requires.
    """

    token = models.CharField(max_length=32, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)
    # The device that verified the sign-in's code (django-otp's persistent id), so the
    # session the token buys counts as two-factor verified; "" without one.
    otp_device = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"login token for user {self.user_id}, expires {self.expires_at:%H:%M:%S}"
