"""Sign-in with Microsoft Azure AD (Entra ID), as Zulip's AzureADAuthBackend.

social-core's AzureADOAuth2 (the v1 endpoints of the ``common`` tenant, as Zulip)
exchanges the code and verifies the id_token it gets back: signature against the
tenant's published keys (OpenID discovery), audience (our client ID), issuer
(resolved with the token's ``tid``), expiry. The address is the token's ``email``,
else its ``upn``, as Zulip. Entra does not vouch for ``email`` the way GitHub or
Google do; keyhouse refuses it when the token carries Microsoft's optional claim
``xms_edov`` ("email domain owner verified") as false — docs/sso.md says to request it.
"""

from __future__ import annotations

from typing import Any

from social_core.backends.azuread import AzureADOAuth2

from keyhouse.sso.registry import ExternalIdentity, register
from keyhouse.sso.social import SocialBackendMixin, SocialMethod


class KeyhouseAzureAD(SocialBackendMixin, AzureADOAuth2):
    name = "azuread-oauth2"  # Zulip's; its settings are SOCIAL_AUTH_AZUREAD_OAUTH2_*
    provider = "azuread"

    def identity(self, details: dict[str, Any], response: dict[str, Any]) -> ExternalIdentity:
        email = (details.get("email") or "").strip()
        # Sent as true/false, or "1"/"0" by some token versions.
        domain_unverified = "xms_edov" in response and str(response["xms_edov"]).lower() not in (
            "true",
            "1",
        )
        full_name = (details.get("fullname") or "").strip() or " ".join(
            p for p in (details.get("first_name"), details.get("last_name")) if p
        )
        return ExternalIdentity(
            email=email,
            email_verified=bool(email) and not domain_unverified,
            full_name=full_name,
            audit_method="azuread",
            auto_signup=False,
        )


class AzureADMethod(SocialMethod):
    backend = "azuread-oauth2"
    realm_method = "azuread"
    sort_order = 50  # Zulip's AzureADAuthBackend.sort_order
    display_name = "AzureAD"  # Zulip's auth_backend_name, which its button shows
    display_icon = "/static/images/authentication_backends/azuread-icon.png"
    backend_class = KeyhouseAzureAD


register(AzureADMethod())
