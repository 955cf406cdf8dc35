"""Organizations ("realms"), each reached on its own host name as in Zulip."""

from __future__ import annotations

from django.db import models

# Authentication methods a realm may enable; names as in Zulip's AUTH_BACKEND_NAME_MAP.
AUTH_METHODS: tuple[str, ...] = (
    "email", "ldap", "dev", "remoteuser", "github", "google", "gitlab", "azuread", "apple",
    "oidc", "saml",
)  # fmt: skip


class Realm(models.Model):
    # "" is the root realm, served on the bare external host.
    subdomain = models.CharField(max_length=63, unique=True, blank=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    deactivated = models.BooleanField(default=False)
    # Subset of AUTH_METHODS, kept in AUTH_METHODS order.
    authentication_methods = models.JSONField(default=list)
    date_created = models.DateTimeField(auto_now_add=True)
    # Beyond Zulip: the gateway's /auth/verify also accepts this realm's web sessions
    # (a browser signed in to keyhouse), not only API keys (docs/gateway.md).
    gateway_sessions = models.BooleanField(default=False)
    # Beyond Zulip (docs/security.md, "Two-factor sign-in"): when two-factor sign-in
    # is on, an account with a second factor cannot trade its password alone for an
    # API key (fetch_api_key); it signs in through the browser, which asks for the code.
    require_2fa_for_api_keys = models.BooleanField(default=False)

    class Meta:
        ordering = ["subdomain"]

    def __str__(self) -> str:
        return self.subdomain or "(root)"

    @property
    def display_subdomain(self) -> str:
        """Zulip's name for the root realm in logs."""
        return self.subdomain or "root"

    def method_enabled(self, method: str) -> bool:
        return method in self.authentication_methods
