"""Basic ``email:api_key`` endpoints: GET /users/me and key regeneration (reference §5).

GET /users/me is how clients check a stored key is still good, so its failure
messages must be Zulip's exactly: clients show them, and some match on them.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client

from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user, set_active
from keyhouse.users.models import Role, User
from tests.api.helpers import assert_unauthorized, json_body
from tests.conftest import PASSWORD, basic_auth
from tests.openapi import ZulipOpenAPI

ME = "/api/v1/users/me"
REGENERATE = "/api/v1/users/me/api_key/regenerate"
NOT_LOGGED_IN = "Not logged in: API authentication or user session required"
BAD_HEADER = "Invalid authorization header for basic auth"


def me(client: Client, headers: dict[str, str], host: str = "testserver") -> HttpResponse:
    return client.get(ME, HTTP_HOST=host, **headers)


def raw_basic(credentials: bytes) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials).decode()}


# --- GET /users/me ------------------------------------------------------------------


def test_own_user_fields(client: Client, user: User) -> None:
    """§5.7: every field for a plain member, and nothing else."""
    body = json_body(me(client, basic_auth(user.delivery_email, user.api_key)), 200)
    avatar_url = body.pop("avatar_url")
    assert isinstance(avatar_url, str) and avatar_url.startswith(("https://", "http://"))
    assert body == {
        "result": "success",
        "msg": "",
        "user_id": user.id,
        "email": "Hamlet@Example.com",
        "delivery_email": "Hamlet@Example.com",
        "full_name": "King Hamlet",
        "role": 400,
        "is_admin": False,
        "is_owner": False,
        "is_guest": False,
        "is_bot": False,
        "is_active": True,
        "timezone": "",
        "date_joined": user.date_joined.isoformat(),
        "avatar_version": 1,
        "profile_data": {},
        "max_message_id": -1,
    }


def test_own_user_json_types(client: Client, user: User) -> None:
    """Exact JSON types: bool is not int here, and date_joined is an aware ISO 8601 string."""
    body = json_body(me(client, basic_auth(user.delivery_email, user.api_key)), 200)
    expected_types: dict[str, type] = {
        "user_id": int,
        "email": str,
        "delivery_email": str,
        "full_name": str,
        "role": int,
        "is_admin": bool,
        "is_owner": bool,
        "is_guest": bool,
        "is_bot": bool,
        "is_active": bool,
        "timezone": str,
        "date_joined": str,
        "avatar_url": str,
        "avatar_version": int,
        "profile_data": dict,
        "max_message_id": int,
    }
    assert {k: type(body[k]) for k in expected_types} == expected_types
    joined = datetime.fromisoformat(body["date_joined"])
    assert joined.tzinfo is not None
    assert joined == user.date_joined


def test_own_user_matches_zulip_openapi(
    client: Client, user: User, openapi_spec: ZulipOpenAPI
) -> None:
    """additionalProperties: false and the role enum make this strict."""
    response = me(client, basic_auth(user.delivery_email, user.api_key))
    assert response.status_code == 200
    openapi_spec.validate_success("get", ME, response.content)


@pytest.mark.parametrize(
    ("role", "flags"),
    [
        (Role.OWNER, {"is_admin": True, "is_owner": True, "is_guest": False}),
        (Role.ADMINISTRATOR, {"is_admin": True, "is_owner": False, "is_guest": False}),
        (Role.MODERATOR, {"is_admin": False, "is_owner": False, "is_guest": False}),
        (Role.MEMBER, {"is_admin": False, "is_owner": False, "is_guest": False}),
        (Role.GUEST, {"is_admin": False, "is_owner": False, "is_guest": True}),
    ],
)
def test_role_flags(client: Client, realm: Realm, role: Role, flags: dict[str, bool]) -> None:
    """Zulip's role numbers and the booleans derived from them."""
    person = create_user(realm, "person@example.com", "Person", role=role, password=PASSWORD)
    body = json_body(me(client, basic_auth(person.delivery_email, person.api_key)), 200)
    assert {"role": body["role"], **{k: body[k] for k in flags}} == {"role": int(role), **flags}


@pytest.mark.parametrize(
    "typed", ["hamlet@example.com", "HAMLET@EXAMPLE.COM", " Hamlet@Example.com "]
)
def test_basic_email_matched_case_insensitively(client: Client, user: User, typed: str) -> None:
    """§5.3: the Basic username is compared with delivery_email, ignoring case and whitespace."""
    body = json_body(me(client, basic_auth(typed, user.api_key)), 200)
    assert body["user_id"] == user.id


def test_whitespace_around_key_ignored(client: Client, user: User) -> None:
    """Zulip strips the key before checking its format (§5.3 step 1)."""
    body = json_body(me(client, basic_auth(user.delivery_email, f" {user.api_key}\t")), 200)
    assert body["user_id"] == user.id


def test_bots_are_flagged(client: Client, user: User) -> None:
    user.is_bot = True
    user.save()
    assert json_body(me(client, basic_auth(user.delivery_email, user.api_key)), 200)["is_bot"]


def test_post_not_allowed_even_without_credentials(client: Client, user: User) -> None:
    """The method is checked before authentication, as in rest_dispatch."""
    response = client.post(ME)
    assert json_body(response, 405) == {
        "result": "error",
        "msg": "Method Not Allowed",
        # rest_dispatch lists HEAD after GET; Zulip also has DELETE (self-deactivation).
        "allowed_methods": ["GET", "HEAD"],
    }


# --- credential failures (§5.1–5.4) -------------------------------------------------


def test_missing_header(client: Client, user: User) -> None:
    """rest_dispatch's json_unauthorized: the default message and the Basic challenge."""
    assert_unauthorized(me(client, {}), NOT_LOGGED_IN)


@pytest.mark.parametrize("scheme", ["Bearer x", "Digest abc", "Token abc"])
def test_non_basic_scheme_is_400(client: Client, user: User, scheme: str) -> None:
    """A JsonableError raised outside the 401 wrapper: 400, and no challenge."""
    response = me(client, {"HTTP_AUTHORIZATION": scheme})
    assert json_body(response, 400) == {
        "result": "error",
        "msg": "This endpoint requires HTTP basic authentication.",
        "code": "BAD_REQUEST",
    }
    assert not response.has_header("WWW-Authenticate")


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic a",  # bad base64 padding
        "Basic !!!!",  # no base64 characters at all: decodes to b""
        "Basic " + base64.b64encode(b"hamlet@example.com").decode(),  # no colon
        "Basic " + base64.b64encode(b"hamlet@example.com:key:extra").decode(),  # two colons
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),  # not UTF-8
        "Basic",  # single token
        "Basic abc def",  # three tokens
        "",  # present but empty
    ],
    ids=[
        "bad-base64",
        "empty-decoded",
        "no-colon",
        "two-colons",
        "not-utf8",
        "single-token",
        "three-tokens",
        "empty-header",
    ],
)
def test_unparseable_basic_header(client: Client, user: User, authorization: str) -> None:
    assert_unauthorized(me(client, {"HTTP_AUTHORIZATION": authorization}), BAD_HEADER)


@pytest.mark.parametrize("key", ["short", "", "A" * 31, "A" * 33, "A" * 31 + "-"])
def test_malformed_key(client: Client, user: User, key: str) -> None:
    """Keys not of the 32-alphanumeric form are refused before any lookup."""
    assert_unauthorized(me(client, basic_auth(user.delivery_email, key)), "Malformed API key")


def test_wrong_key(client: Client, user: User) -> None:
    wrong = "A" * 32 if user.api_key != "A" * 32 else "B" * 32
    assert_unauthorized(me(client, basic_auth(user.delivery_email, wrong)), "Invalid API key")


def test_unknown_email(client: Client, user: User) -> None:
    response = me(client, basic_auth("nobody@example.com", user.api_key))
    assert_unauthorized(response, "Invalid API key")


def test_key_of_another_user(client: Client, user: User, realm: Realm) -> None:
    """A real key only works with its owner's email."""
    other = create_user(realm, "ophelia@example.com", "Ophelia", password=PASSWORD)
    assert_unauthorized(
        me(client, basic_auth(other.delivery_email, user.api_key)), "Invalid API key"
    )


def test_deactivated_user(client: Client, user: User) -> None:
    """Code UNAUTHORIZED, not USER_DEACTIVATED: the Basic wrapper rewrites it (§5.4)."""
    set_active(user, False)
    response = me(client, basic_auth(user.delivery_email, user.api_key))
    assert_unauthorized(response, "Account is deactivated")


def test_deactivated_realm(client: Client, user: User) -> None:
    user.realm.deactivated = True
    user.realm.save()
    response = me(client, basic_auth(user.delivery_email, user.api_key))
    assert_unauthorized(response, "This organization has been deactivated")


def test_deactivated_realm_reported_before_user(client: Client, user: User) -> None:
    set_active(user, False)
    user.realm.deactivated = True
    user.realm.save()
    response = me(client, basic_auth(user.delivery_email, user.api_key))
    assert_unauthorized(response, "This organization has been deactivated")


@pytest.mark.parametrize("subdomain", ["other", "nowhere"])
def test_user_of_another_subdomain(
    client: Client, user: User, other_realm: Realm, external_host: str, subdomain: str
) -> None:
    """A root-realm key used on another host (existing realm or not) is refused."""
    response = me(
        client, basic_auth(user.delivery_email, user.api_key), host=f"{subdomain}.{external_host}"
    )
    assert_unauthorized(response, "Account is not associated with this subdomain")


def test_own_subdomain_with_external_host(
    client: Client, user: User, other_realm: Realm, external_host: str
) -> None:
    """The positive twin of the test above: the right host works."""
    member = create_user(other_realm, "ophelia@example.com", "Ophelia", password=PASSWORD)
    response = me(
        client, basic_auth(member.delivery_email, member.api_key), host=f"other.{external_host}"
    )
    assert json_body(response, 200)["user_id"] == member.id


def test_same_email_in_two_realms(
    client: Client, user: User, other_realm: Realm, external_host: str
) -> None:
    """One person, two organizations: each key works on its own host only."""
    twin = create_user(other_realm, user.delivery_email, "Hamlet Elsewhere", password=PASSWORD)
    on_other = me(
        client, basic_auth(twin.delivery_email, twin.api_key), host=f"other.{external_host}"
    )
    assert json_body(on_other, 200)["user_id"] == twin.id
    on_root = me(client, basic_auth(user.delivery_email, user.api_key), host=external_host)
    assert json_body(on_root, 200)["user_id"] == user.id
    crossed = me(client, basic_auth(twin.delivery_email, twin.api_key), host=external_host)
    assert_unauthorized(crossed, "Account is not associated with this subdomain")


def test_unauthorized_body_matches_zulip_openapi(
    client: Client, user: User, openapi_spec: ZulipOpenAPI
) -> None:
    """Coded error bodies with exactly result, msg and code (the spec's CodedError)."""
    response = me(client, basic_auth(user.delivery_email, "A" * 32))
    openapi_spec.validate_component("InvalidApiKeyError", json_body(response, 401))


# --- POST /users/me/api_key/regenerate (§5.6) ------------------------------------------


def regenerate(client: Client, user: User, **data: str) -> HttpResponse:
    return client.post(REGENERATE, data, **basic_auth(user.delivery_email, user.api_key))


def test_regenerate_returns_new_key(client: Client, user: User) -> None:
    old = user.api_key
    body = json_body(regenerate(client, user), 200)
    user.refresh_from_db()
    assert body == {"result": "success", "msg": "", "api_key": user.api_key}
    assert user.api_key != old
    assert re.fullmatch(r"[A-Za-z0-9]{32}", user.api_key)


def test_old_key_dies_at_once_and_new_key_works(client: Client, user: User) -> None:
    old = user.api_key
    new = json_body(regenerate(client, user), 200)["api_key"]
    assert_unauthorized(me(client, basic_auth(user.delivery_email, old)), "Invalid API key")
    assert json_body(me(client, basic_auth(user.delivery_email, new)), 200)["user_id"] == user.id


def test_fetch_api_key_returns_regenerated_key(client: Client, user: User) -> None:
    """A password login after rotation hands out the new key, not the old one."""
    new = json_body(regenerate(client, user), 200)["api_key"]
    response = client.post(
        "/api/v1/fetch_api_key", {"username": user.delivery_email, "password": PASSWORD}
    )
    assert json_body(response, 200)["api_key"] == new


def test_regenerate_reports_ignored_parameters(client: Client, user: User) -> None:
    """Newer Zulip decorates this view, so extra parameters are reported, sorted."""
    body: dict[str, Any] = json_body(regenerate(client, user, zeta="1", alpha="1"), 200)
    assert body["ignored_parameters_unsupported"] == ["alpha", "zeta"]


def test_regenerate_requires_credentials(client: Client, user: User) -> None:
    """A session or nothing at all is not enough; the key does not change."""
    old = user.api_key
    assert_unauthorized(client.post(REGENERATE), NOT_LOGGED_IN)
    response = client.post(REGENERATE, **basic_auth(user.delivery_email, "A" * 32))
    assert_unauthorized(response, "Invalid API key")
    user.refresh_from_db()
    assert user.api_key == old


def test_regenerate_by_deactivated_user_refused(client: Client, user: User) -> None:
    set_active(user, False)
    old = user.api_key
    assert_unauthorized(regenerate(client, user), "Account is deactivated")
    user.refresh_from_db()
    assert user.api_key == old


def test_regenerate_only_post(client: Client, user: User) -> None:
    response = client.get(REGENERATE, **basic_auth(user.delivery_email, user.api_key))
    assert json_body(response, 405) == {
        "result": "error",
        "msg": "Method Not Allowed",
        "allowed_methods": ["POST"],
    }
