"""Sign in with Apple (the web flow), as Zulip's AppleAuthBackend.

social-core's AppleIdAuth signs the client secret — a short JWT, ES256, with the
private key ``SOCIAL_AUTH_APPLE_SECRET`` (or its ``_FILE``), the key's ID
``SOCIAL_AUTH_APPLE_KEY`` and the team ``SOCIAL_AUTH_APPLE_TEAM`` — exchanges the
code, and verifies the id_token Apple returns against Apple's published keys
(issuer ``https://appleid.apple.com``, audience the Services ID or
``SOCIAL_AUTH_APPLE_APP_ID``). The address counts if the token says
``email_verified``. Apple sends the name (in the ``user`` field) on the first
sign-in only; as Zulip, it is taken as validated.

Asking for the name and email makes Apple answer with a cross-site POST
(``response_mode=form_post``): the flow's binding cookie is SameSite=None over
HTTPS for it (flow_store). Zulip's native-app flow (an id_token POSTed with
``native_flow=true``, no state) is refused with a message: it has no
server-issued state to bind it to a sign-in started here, and a third-party app's
token does not have our audience anyway (docs/sso.md).
"""

from __future__ import annotations

from typing import Any

import jwt
from django.conf import settings
from django.http import HttpRequest
from social_core.backends.apple import AppleIdAuth
from social_core.exceptions import AuthConfigurationError

from keyhouse import social_providers
from keyhouse.sso.registry import ExternalIdentity, IdPFailure, register
from keyhouse.sso.social import SocialBackendMixin, SocialMethod
from keyhouse.sso.steps import is_verified

APPLE_JWK_URL = "https://appleid.apple.com/auth/keys"


class KeyhouseApple(SocialBackendMixin, AppleIdAuth):
    name = "apple"  # Zulip's; its settings are SOCIAL_AUTH_APPLE_*
    provider = "apple"
    client_setting = "CLIENT"  # AppleIdAuth's "KEY" is the private key's ID

    def setting(self, name: str, default: Any = None) -> Any:
        if name == "AUDIENCE":  # Zulip's SOCIAL_AUTH_APPLE_AUDIENCE
            services_id = social_providers.client_id("apple")
            return [a for a in (services_id, settings.SOCIAL_AUTH_APPLE_APP_ID) if a]
        if name == "SCOPE":
            return ["name", "email"]  # Zulip's SOCIAL_AUTH_APPLE_SCOPE
        return super().setting(name, default)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Apple's keys; a setting here (social-core has a constant) for the tests' stand-in.
        self.JWK_URL = str(self.setting("JWK_URL", APPLE_JWK_URL))

    def generate_client_secret(self) -> str:
        """social-core's, with an unusable private key a configuration error, not a 500."""
        try:
            return str(super().generate_client_secret())
        except (ValueError, TypeError, jwt.PyJWTError):
            raise AuthConfigurationError(
                self, code="invalid_setting", parameter="SECRET", stage="begin"
            ) from None

    def identity(self, details: dict[str, Any], response: dict[str, Any]) -> ExternalIdentity:
        email = (details.get("email") or "").strip()
        full_name = " ".join(
            p.strip() for p in (details.get("first_name"), details.get("last_name")) if p
        )
        return ExternalIdentity(
            email=email,
            email_verified=bool(email) and is_verified(response.get("email_verified")),
            full_name=full_name,
            audit_method="apple",
            auto_signup=False,
            full_name_validated=True,
        )


class AppleMethod(SocialMethod):
    backend = "apple"
    realm_method = "apple"
    sort_order = 10  # Zulip's AppleAuthBackend.sort_order
    display_name = "Apple"
    display_icon = "/static/images/authentication_backends/apple-icon.png"
    backend_class = KeyhouseApple
    cross_site_post = True

    def complete(self, request: HttpRequest) -> tuple[ExternalIdentity, dict[str, str]]:
        if request.POST.get("native_flow"):
            raise IdPFailure(
                "Signing in with Apple from inside the app is not supported by this server."
                " Use the sign-in page instead.",
                "IDP_NOT_ALLOWED",
                "apple",
            )
        return super().complete(request)


register(AppleMethod())
