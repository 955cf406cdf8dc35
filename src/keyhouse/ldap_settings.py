"""Turn the config file's plain LDAP values into django-auth-ldap's objects.

A TOML file cannot hold an ``LDAPSearch`` or python-ldap option constants, so the
searches are written as tables and the timeouts as seconds; this module, used
only by settings.py and only when LDAP is configured, builds the real things.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

SCOPES = {"base": "SCOPE_BASE", "onelevel": "SCOPE_ONELEVEL", "subtree": "SCOPE_SUBTREE"}


def _search(spec: Any, name: str) -> Any:
    from django_auth_ldap.config import LDAPSearch

    if spec is None:
        return None
    import ldap

    if not isinstance(spec, dict) or not {"base", "filter"} <= set(spec):
        raise ImproperlyConfigured(
            f'{name} must be a table: {{ base = "...", scope = "subtree", filter = "(...)" }}'
        )
    scope_name = str(spec.get("scope", "subtree")).lower()
    if scope_name not in SCOPES:
        raise ImproperlyConfigured(f"{name}.scope must be one of {', '.join(SCOPES)}")
    return LDAPSearch(spec["base"], getattr(ldap, SCOPES[scope_name]), spec["filter"])


def ldap_settings(
    *,
    user_search: Any,
    reverse_email_search: Any,
    connect_timeout: float,
    operation_timeout: float,
    ca_cert_file: str | None,
) -> dict[str, Any]:
    try:
        import django_auth_ldap  # noqa: F401
        import ldap
    except ImportError as exc:
        raise ImproperlyConfigured(
            "AUTH_LDAP_SERVER_URI is set but LDAP support is not installed:"
            " pip install 'keyhouse[ldap]'"
        ) from exc
    global_options: dict[int, Any] = {}
    if ca_cert_file:
        global_options[ldap.OPT_X_TLS_CACERTFILE] = ca_cert_file
        global_options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
    return {
        "AUTH_LDAP_USER_SEARCH": _search(user_search, "AUTH_LDAP_USER_SEARCH"),
        "AUTH_LDAP_REVERSE_EMAIL_SEARCH": _search(
            reverse_email_search, "AUTH_LDAP_REVERSE_EMAIL_SEARCH"
        ),
        "AUTH_LDAP_CONNECTION_OPTIONS": {
            ldap.OPT_NETWORK_TIMEOUT: connect_timeout,
            ldap.OPT_TIMEOUT: operation_timeout,
            ldap.OPT_REFERRALS: 0,
        },
        "AUTH_LDAP_GLOBAL_OPTIONS": global_options,
    }
