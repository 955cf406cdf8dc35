"""Which sign-in backends can run: one answer for settings, server_settings, the login page.

The backends that run are those named in AUTHENTICATION_BACKEND_ORDER whose
requirements are met (LDAP: a server URI and python-ldap installed). settings.py
builds AUTHENTICATION_BACKENDS from this, and realms/methods.py reports a method
as enabled only if it is here, so that what the server says it offers and what it
can serve never disagree (issue #13, item 2). Imports nothing but the standard
library: settings.py uses it before Django is set up.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

PASSWORD_BACKENDS: dict[str, str] = {
    "email": "keyhouse.auth.backends.EmailAuthBackend",
    "ldap": "keyhouse.auth.ldap_backend.ZulipLDAPAuthBackend",
}


def ldap_installed() -> bool:
    """python-ldap and django-auth-ldap importable (the ``keyhouse[ldap]`` extra)."""
    try:
        importlib.import_module("ldap")
        importlib.import_module("django_auth_ldap")
    except ImportError:
        return False
    return True


def _importable(*modules: str) -> bool:
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        return False
    return True


def social_auth_installed() -> bool:
    """python-social-auth (the ``keyhouse[sso]`` extra): OpenID Connect and social logins."""
    return _importable("social_core", "social_django")


def saml_installed() -> bool:
    """python3-saml and xmlsec (the ``keyhouse[saml]`` extra)."""
    return _importable("onelogin.saml2", "xmlsec")


def two_factor_installed() -> bool:
    """django-otp and django-two-factor-auth (the ``keyhouse[twofactor]`` extra): TOTP sign-in."""
    return _importable("django_otp", "two_factor", "formtools", "qrcode")


def runnable_password_methods(order: Iterable[str], ldap_server_uri: str) -> list[str]:
    """The password methods that can run, in the configured order."""
    runnable = []
    for name in order:
        if name not in PASSWORD_BACKENDS or name in runnable:
            continue
        if name == "ldap" and not (ldap_server_uri and ldap_installed()):
            continue
        runnable.append(name)
    return runnable


def password_backends(order: Iterable[str], ldap_server_uri: str) -> list[str]:
    """AUTHENTICATION_BACKENDS' password part: the runnable methods' backend classes."""
    return [PASSWORD_BACKENDS[n] for n in runnable_password_methods(order, ldap_server_uri)]
