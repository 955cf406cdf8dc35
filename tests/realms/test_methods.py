"""Which methods are on: server configuration AND realm choice (reference §3.3)."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings

from keyhouse.realms import methods
from keyhouse.realms.models import Realm


def make_realm(auth: list[str]) -> Realm:
    return Realm(subdomain="r", name="R", authentication_methods=auth)


def test_email_only_realm() -> None:
    realm = make_realm(["email"])
    assert methods.password_auth_enabled(realm)
    assert methods.email_auth_enabled(realm)
    assert not methods.ldap_auth_enabled(realm)
    assert methods.require_email_format_usernames(realm)


def test_realm_method_needs_server_backend(settings: Settings) -> None:
    settings.AUTH_LDAP_SERVER_URI = ""
    settings.DEV_MODE = False
    realm = make_realm(["ldap", "dev"])
    assert not methods.ldap_auth_enabled(realm)
    assert not methods.dev_auth_enabled(realm)
    assert not methods.password_auth_enabled(realm)
    settings.DEV_MODE = True
    assert methods.dev_auth_enabled(realm)


def test_ldap_with_username_mapping_relaxes_email_format(settings: Settings) -> None:
    settings.AUTH_LDAP_SERVER_URI = "ldap://127.0.0.1:1"
    settings.LDAP_APPEND_DOMAIN = "example.com"
    realm = make_realm(["ldap"])
    assert methods.password_auth_enabled(realm)
    assert not methods.require_email_format_usernames(realm)
    settings.LDAP_APPEND_DOMAIN = None
    settings.LDAP_EMAIL_ATTR = None
    assert methods.require_email_format_usernames(realm)


def test_no_realm_means_every_configured_backend(settings: Settings) -> None:
    """Key order is checked in tests/api/test_server_settings.py; here, the values."""
    settings.DEV_MODE = True
    d = methods.authentication_methods_dict(None)
    assert {k for k, v in d.items() if v} == {"password", "email", "dev"}


def test_parse_auth_methods() -> None:
    assert methods.parse_auth_methods("ldap, EMAIL") == ["email", "ldap"]
    assert methods.parse_auth_methods("") == []
    with pytest.raises(ValueError, match="kerberos"):
        methods.parse_auth_methods("email,kerberos")
