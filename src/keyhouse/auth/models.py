"""The audit trail of login attempts: who tried, from where, and what came of it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from keyhouse.realms.models import Realm

USERNAME_MAX = 254
USER_AGENT_MAX = 256


class LoginAttempt(models.Model):
    """One login attempt; never the password.

    ``subdomain`` duplicates the realm's so entries stay attributable after the
    realm row is gone; ``username`` is what the client typed, so attempts against
    accounts that do not exist are visible too.
    """

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        RATE_LIMITED = "rate_limited"
        OVERLOADED = "overloaded"

    timestamp = models.DateTimeField(default=timezone.now, db_index=True)
    # The composite indexes below lead with these columns and also serve the
    # ON DELETE SET NULL lookups, so the FKs need no index of their own.
    realm = models.ForeignKey(
        Realm, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    subdomain = models.CharField(max_length=63, blank=True, default="")
    username = models.CharField(max_length=USERNAME_MAX, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=USER_AGENT_MAX, blank=True, default="")
    method = models.CharField(max_length=32)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    # The Zulip error code of a refusal ("AUTHENTICATION_FAILED", …); "" on success.
    reason = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["realm", "timestamp"], name="loginattempt_realm_time"),
            models.Index(fields=["user", "timestamp"], name="loginattempt_user_time"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.username!r} {self.outcome}"


class RateLimitBucket(models.Model):
    """One rate-limited entity's hit log, newest first (the database rate-limit store).

    A single row per key lets ``SELECT … FOR UPDATE`` (PostgreSQL) or SQLite's
    write lock serialize concurrent hits on it: the check and the record are atomic
    across processes and servers.
    """

    key = models.CharField(max_length=300, unique=True)
    log = models.JSONField(default=list)
    expires_at = models.FloatField(db_index=True)
