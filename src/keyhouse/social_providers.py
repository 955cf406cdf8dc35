"""The single-provider social logins' settings: one table for the realm check and the flow.

For each provider, the setting naming the OAuth client, the one holding its secret
(and that secret's ``_FILE`` variant) and any other setting it cannot work without,
all with Zulip's names. realms/methods.py asks ``configured`` (the settings are
present: no file is read to answer server_settings); the sso package reads
``client_secret`` when a sign-in needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from keyhouse.secret_files import read_secret


@dataclass(frozen=True)
class SocialProvider:
    method: str  # the realm's method name
    client_id: str  # the setting holding the OAuth client ID (Apple: the Services ID)
    secret: str  # the setting holding the secret; ``secret + "_FILE"`` names its file
    also_required: tuple[str, ...] = ()


PROVIDERS: dict[str, SocialProvider] = {
    p.method: p
    for p in (
        SocialProvider("github", "SOCIAL_AUTH_GITHUB_KEY", "SOCIAL_AUTH_GITHUB_SECRET"),
        SocialProvider("google", "SOCIAL_AUTH_GOOGLE_KEY", "SOCIAL_AUTH_GOOGLE_SECRET"),
        SocialProvider("gitlab", "SOCIAL_AUTH_GITLAB_KEY", "SOCIAL_AUTH_GITLAB_SECRET"),
        SocialProvider(
            "azuread", "SOCIAL_AUTH_AZUREAD_OAUTH2_KEY", "SOCIAL_AUTH_AZUREAD_OAUTH2_SECRET"
        ),
        # Zulip's AppleAuthBackend.check_config: the Services ID, the key's ID, the
        # team and the private key (the secret) that signs the client-secret JWT.
        SocialProvider(
            "apple",
            "SOCIAL_AUTH_APPLE_SERVICES_ID",
            "SOCIAL_AUTH_APPLE_SECRET",
            ("SOCIAL_AUTH_APPLE_KEY", "SOCIAL_AUTH_APPLE_TEAM"),
        ),
    )
}


def _setting(name: str) -> str:
    return str(getattr(settings, name, None) or "")


def configured(method: str) -> bool:
    """Every setting the provider needs is set (the secret inline or as a file)."""
    provider = PROVIDERS[method]
    has_secret = bool(_setting(provider.secret) or _setting(provider.secret + "_FILE"))
    return (
        bool(_setting(provider.client_id))
        and has_secret
        and all(_setting(name) for name in provider.also_required)
    )


def client_id(method: str) -> str:
    return _setting(PROVIDERS[method].client_id)


def client_secret(method: str) -> str:
    """The secret, or its ``_FILE``'s content read now; "" when neither can be had."""
    provider = PROVIDERS[method]
    return read_secret(_setting(provider.secret), _setting(provider.secret + "_FILE") or None)
