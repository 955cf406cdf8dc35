"""Which authentication methods are on, for a realm or server-wide.

Mirrors Zulip's ``auth_enabled_helper``: a method is on when the server has the
backend configured *and* the realm enables it; with no realm, every configured
backend counts as on.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from keyhouse import social_providers
from keyhouse.backend_choice import (
    runnable_password_methods,
    saml_installed,
    social_auth_installed,
)
from keyhouse.realms.models import AUTH_METHODS, Realm
from keyhouse.sso_config import parse_oidc_idps

# server_settings' key → keyhouse's method name, where they differ.
ZULIP_KEY_TO_METHOD: dict[str, str] = {
    "openid connect": "oidc",
    "saml": "saml",
    "github": "github",
    "azuread": "azuread",
    "gitlab": "gitlab",
    "google": "google",
    "apple": "apple",
}

# Zulip's AUTH_BACKEND_NAME_MAP order, lower-cased: the keys of
# server_settings' authentication_methods after "password".
ZULIP_AUTH_METHOD_KEYS: tuple[str, ...] = (
    "dev",
    "email",
    "ldap",
    "remoteuser",
    "github",
    "azuread",
    "gitlab",
    "google",
    "apple",
    "saml",
    "openid connect",
)


def server_configured_methods() -> frozenset[str]:
    """Backends this server can run at all, whatever any realm says.

    The same answer settings.py built AUTHENTICATION_BACKENDS from
    (keyhouse/backend_choice.py): a method is on only if a backend can serve it.
    Worked out once: every login asks several times, settings never change at run
    time, and a test that changes them (Django's ``setting_changed``) clears it.
    """
    global _configured
    if _configured is None:
        _configured = frozenset(_configured_methods())
    return _configured


_configured: frozenset[str] | None = None


@receiver(setting_changed, dispatch_uid="keyhouse.realms.methods.configured")
def _forget_configured_methods(**kwargs: object) -> None:
    global _configured
    _configured = None


def _configured_methods() -> set[str]:
    configured = set(
        runnable_password_methods(
            settings.AUTHENTICATION_BACKEND_ORDER, settings.AUTH_LDAP_SERVER_URI
        )
    )
    if settings.DEV_MODE:
        configured.add("dev")
    if settings.REMOTE_USER_AUTH:  # Zulip's ZulipRemoteUserBackend in AUTHENTICATION_BACKENDS
        configured.add("remoteuser")
    if social_auth_installed() and parse_oidc_idps(settings.SOCIAL_AUTH_OIDC_ENABLED_IDPS):
        configured.add("oidc")
    if social_auth_installed():
        configured.update(m for m in social_providers.PROVIDERS if social_providers.configured(m))
    if (
        saml_installed()
        and settings.SOCIAL_AUTH_SAML_SP_ENTITY_ID
        and settings.SOCIAL_AUTH_SAML_ENABLED_IDPS
    ):
        configured.add("saml")
    return configured


def method_enabled(method: str, realm: Realm | None) -> bool:
    if method not in server_configured_methods():
        return False
    return realm is None or realm.method_enabled(method)


def email_auth_enabled(realm: Realm | None) -> bool:
    return method_enabled("email", realm)


def ldap_auth_enabled(realm: Realm | None) -> bool:
    return method_enabled("ldap", realm)


def dev_auth_enabled(realm: Realm | None) -> bool:
    return method_enabled("dev", realm)


def password_auth_enabled(realm: Realm | None) -> bool:
    return email_auth_enabled(realm) or ldap_auth_enabled(realm)


def require_email_format_usernames(realm: Realm | None) -> bool:
    """False only when LDAP is on and maps bare usernames to emails."""
    if ldap_auth_enabled(realm) and (settings.LDAP_EMAIL_ATTR or settings.LDAP_APPEND_DOMAIN):
        return False
    return True


def authentication_methods_dict(realm: Realm | None) -> dict[str, bool]:
    """server_settings' deprecated ``authentication_methods`` object, in Zulip's key order."""
    result = {"password": password_auth_enabled(realm)}
    for key in ZULIP_AUTH_METHOD_KEYS:
        method = ZULIP_KEY_TO_METHOD.get(key, key)
        result[key] = method in AUTH_METHODS and method_enabled(method, realm)
    return result


def parse_auth_methods(text: str | Iterable[str]) -> list[str]:
    """Validate a comma-separated (or iterable) list of method names; keep canonical order."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    unknown = sorted(set(names) - set(AUTH_METHODS))
    if unknown:
        raise ValueError(
            f"unknown authentication method(s): {', '.join(unknown)}"
            f" (choose from {', '.join(AUTH_METHODS)})"
        )
    return [m for m in AUTH_METHODS if m in names]
