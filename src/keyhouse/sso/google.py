"""Sign-in with Google, as Zulip's GoogleAuthBackend: only an email Google marks verified.

social-core 7's GoogleOAuth2 raises on an unverified email; keyhouse reads the
userinfo itself so that the refusal goes through its pipeline (EMAIL_NOT_VERIFIED
in the audit trail, Zulip's message on the login page).
"""

from __future__ import annotations

from typing import Any

from social_core.backends.google import GoogleOAuth2

from keyhouse.sso.registry import ExternalIdentity, register
from keyhouse.sso.social import SocialBackendMixin, SocialMethod

USERINFO_URL = "https://www.googleapis.com/oauth2/v3/userinfo"


class KeyhouseGoogle(SocialBackendMixin, GoogleOAuth2):
    name = "google"  # Zulip's: its settings are SOCIAL_AUTH_GOOGLE_KEY / _SECRET
    provider = "google"

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        return self.get_json(
            str(self.setting("USERINFO_URL", USERINFO_URL)),
            headers={"Authorization": f"Bearer {access_token}"},
        )

    def identity(self, details: dict[str, Any], response: dict[str, Any]) -> ExternalIdentity:
        return ExternalIdentity(
            email=(details.get("email") or "").strip(),
            email_verified=response.get("email_verified") is True,
            full_name=(details.get("fullname") or "").strip(),
            audit_method="google",
            auto_signup=False,
        )


class GoogleMethod(SocialMethod):
    backend = "google"
    realm_method = "google"
    sort_order = 150  # Zulip's GoogleAuthBackend.sort_order
    display_name = "Google"
    display_icon = "/static/images/authentication_backends/googl_e-icon.png"
    backend_class = KeyhouseGoogle


register(GoogleMethod())
