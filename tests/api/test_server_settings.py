"""GET /api/v1/server_settings (reference §3, §11.10).

Clients call this before showing a login form: it decides which fields they
show and which URL they keep using, so every field and JSON type is pinned.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from tests.api.helpers import json_body
from tests.openapi import ZulipOpenAPI

URL = "/api/v1/server_settings"
LDAP_URI = "ldap://ldap.invalid"

# Zulip's AUTH_BACKEND_NAME_MAP order, lower-cased, after "password" (§3.1).
AUTH_METHOD_KEYS = [
    "password",
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
]
REALM_ONLY_KEYS = {"realm_name", "realm_icon", "realm_description"}


def get(client: Client, host: str = "testserver", **extra: Any) -> HttpResponse:
    return client.get(URL, HTTP_HOST=host, **extra)


def methods(**enabled: bool) -> dict[str, bool]:
    """The authentication_methods object: everything False except what is named."""
    names = {key.replace(" ", "_"): key for key in AUTH_METHOD_KEYS}
    return {key: False for key in AUTH_METHOD_KEYS} | {names[k]: v for k, v in enabled.items()}


def common_fields(url: str = "http://testserver") -> dict[str, Any]:
    """The fields present whether or not a realm exists, with default settings."""
    return {
        "result": "success",
        "msg": "",
        "zulip_version": django_settings.ZULIP_VERSION,
        "zulip_merge_base": django_settings.ZULIP_MERGE_BASE,
        "zulip_feature_level": django_settings.ZULIP_FEATURE_LEVEL,
        "push_notifications_enabled": False,
        "is_incompatible": False,
        "require_email_format_usernames": True,
        "realm_uri": url,
        "realm_url": url,
        "realm_web_public_access_enabled": False,
        "external_authentication_methods": [],
    }


def test_root_realm_every_field(client: Client, realm: Realm) -> None:
    """§3.1 field by field, for the root realm with email logins."""
    body = json_body(get(client), 200)
    icon = body.pop("realm_icon")
    assert isinstance(icon, str) and icon.startswith(("http://", "https://", "/"))
    assert body == {
        **common_fields(),
        "authentication_methods": methods(password=True, email=True),
        "email_auth_enabled": True,
        "realm_name": "Test Org",
        "realm_description": "",
    }


def test_json_types(client: Client, realm: Realm) -> None:
    """Exact JSON types: a client in a typed language rejects 1 for true or "371" for 371."""
    body = json_body(get(client), 200)
    expected_types: dict[str, type] = {
        "zulip_version": str,
        "zulip_merge_base": str,
        "zulip_feature_level": int,
        "push_notifications_enabled": bool,
        "is_incompatible": bool,
        "email_auth_enabled": bool,
        "require_email_format_usernames": bool,
        "realm_uri": str,
        "realm_url": str,
        "realm_name": str,
        "realm_icon": str,
        "realm_description": str,
        "realm_web_public_access_enabled": bool,
        "external_authentication_methods": list,
        "authentication_methods": dict,
    }
    assert {k: type(body[k]) for k in expected_types} == expected_types
    assert all(type(v) is bool for v in body["authentication_methods"].values())


def test_authentication_methods_key_order(client: Client, realm: Realm) -> None:
    """Zulip's order, ending with the key that has a space: "openid connect"."""
    body = json_body(get(client), 200)
    assert list(body["authentication_methods"]) == AUTH_METHOD_KEYS


def test_matches_zulip_openapi(client: Client, realm: Realm, openapi_spec: ZulipOpenAPI) -> None:
    """The spec's schema has additionalProperties: false, so unknown keys fail too."""
    response = get(client)
    assert response.status_code == 200
    openapi_spec.validate_success("get", URL, response.content)


@pytest.mark.parametrize(
    ("host", "secure", "expected"),
    [
        ("testserver", False, "http://testserver"),
        ("chat.example.net:8080", False, "http://chat.example.net:8080"),
        ("chat.example.net", True, "https://chat.example.net"),
    ],
)
def test_realm_url_is_the_host_the_client_used(
    client: Client, realm: Realm, host: str, secure: bool, expected: str
) -> None:
    """Clients store realm_url and send every later request there, port included."""
    body = json_body(get(client, host, secure=secure), 200)
    assert body["realm_url"] == body["realm_uri"] == expected


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(b"hamlet@example.com:" + b"A" * 32).decode(),
        "Basic !!!not-base64",
        "Bearer abc",
        "complete garbage with spaces",
        "",
    ],
    ids=["none", "wrong-basic", "bad-base64", "bearer", "garbage", "empty"],
)
def test_authorization_header_is_ignored(
    client: Client, user: User, authorization: str | None
) -> None:
    """The python library sends its (maybe stale) credentials here; that must not fail."""
    baseline = json_body(get(client), 200)
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = get(client, **extra)
    assert json_body(response, 200) == baseline
    assert not response.has_header("WWW-Authenticate")


def test_root_without_realm_omits_realm_fields(client: Client, db: None) -> None:
    """§3.1 step 7: realm_name, realm_icon, realm_description are None, hence absent.

    With no realm every configured backend counts as on (§3.3).
    """
    body = json_body(get(client), 200)
    assert not REALM_ONLY_KEYS & body.keys()
    assert body == {
        **common_fields(),
        "authentication_methods": methods(password=True, email=True),
        "email_auth_enabled": True,
    }


def test_root_without_realm_matches_zulip_openapi(
    client: Client, db: None, openapi_spec: ZulipOpenAPI
) -> None:
    response = get(client)
    assert response.status_code == 200
    openapi_spec.validate_success("get", URL, response.content)


def test_root_without_realm_on_multi_realm_server(
    client: Client, db: None, external_host: str
) -> None:
    """The bare external host (and www.) is the root; with no root realm it is still 200."""
    for host in (external_host, f"www.{external_host}"):
        body = json_body(get(client, host), 200)
        assert not REALM_ONLY_KEYS & body.keys()
        assert body["realm_url"] == f"http://{host}"


def test_subdomain_realm(client: Client, db: None, external_host: str) -> None:
    """A subdomain realm reports its own name and a rendered, escaped description."""
    Realm.objects.create(
        subdomain="zulip",
        name="Zulip Dev",
        description="Hi & <script>x</script>",
        authentication_methods=["email"],
    )
    body = json_body(get(client, f"zulip.{external_host}"), 200)
    assert body["realm_name"] == "Zulip Dev"
    assert body["realm_url"] == f"http://zulip.{external_host}"
    assert "<script>" not in body["realm_description"]
    assert "&amp;" in body["realm_description"]
    assert isinstance(body["realm_icon"], str)


def test_unknown_subdomain_is_400(client: Client, realm: Realm, external_host: str) -> None:
    """Unlike fetch_api_key (404), server_settings says 400 BAD_REQUEST here (§3.1)."""
    response = get(client, f"nowhere.{external_host}")
    assert json_body(response, 400) == {
        "result": "error",
        "msg": "Invalid subdomain",
        "code": "BAD_REQUEST",
    }


@pytest.mark.parametrize(
    ("user_agent", "incompatible"),
    [
        ("ZulipInvalid", True),
        ("ZulipInvalid/1.0", True),
        ("ZulipMobile/27.192 (Android 12)", False),
        ("ZulipInvalidish", False),
        (None, False),
    ],
)
def test_is_incompatible(
    client: Client, realm: Realm, user_agent: str | None, incompatible: bool
) -> None:
    """Only the client name ``ZulipInvalid`` is told it is incompatible."""
    extra = {} if user_agent is None else {"HTTP_USER_AGENT": user_agent}
    assert json_body(get(client, **extra), 200)["is_incompatible"] is incompatible


def test_unknown_query_parameters_silently_ignored(client: Client, realm: Realm) -> None:
    """The view has no parameter decorator in Zulip, so nothing is reported (§3)."""
    response = client.get(URL, {"foo": "1", "client": "x"})
    assert "ignored_parameters_unsupported" not in json_body(response, 200)


def test_post_not_allowed(client: Client, realm: Realm) -> None:
    """require_safe: only GET and HEAD."""
    response = client.post(URL)
    assert json_body(response, 405) == {
        "result": "error",
        "msg": "Method Not Allowed",
        "allowed_methods": ["GET", "HEAD"],
    }
    assert response["Allow"] == "GET, HEAD"
    assert client.head(URL).status_code == 200


def test_head_allowed(client: Client, realm: Realm) -> None:
    response = client.head(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("realm_methods", "ldap_uri", "append_domain", "expected"),
    [
        (["email"], "", None, {"password": True, "email": True}),
        (["email", "ldap"], LDAP_URI, None, {"password": True, "email": True, "ldap": True}),
        (["ldap"], LDAP_URI, "example.com", {"password": True, "ldap": True}),
        (["ldap"], "", None, {}),
        ([], "", None, {}),
    ],
    ids=["email", "email+ldap", "ldap-append-domain", "ldap-unconfigured", "none"],
)
def test_methods_follow_realm_and_server(
    client: Client,
    realm: Realm,
    settings: Settings,
    realm_methods: list[str],
    ldap_uri: str,
    append_domain: str | None,
    expected: dict[str, bool],
) -> None:
    """A method is on only if the server runs the backend and the realm enables it (§3.3).

    Bare LDAP usernames (require_email_format_usernames false) need LDAP plus a
    username→email mapping.
    """
    settings.AUTH_LDAP_SERVER_URI = ldap_uri
    settings.LDAP_APPEND_DOMAIN = append_domain
    realm.authentication_methods = realm_methods
    realm.save()
    body = json_body(get(client), 200)
    assert body["authentication_methods"] == methods(**expected)
    assert body["email_auth_enabled"] is expected.get("email", False)
    assert body["require_email_format_usernames"] is (append_domain is None)
