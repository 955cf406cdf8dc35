"""The development-only endpoints (reference §2; §9 DevFetchAPIKeyTest, DevGetEmailsTest).

With DEV_MODE off they must look exactly like a production Zulip server, where
the routes do not exist: keyhouse's JSON 404, whatever the method or body. With
DEV_MODE on they hand out API keys without a password, as Zulip's dev server does.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.api.errors import (
    AuthenticationFailedError,
    InvalidSubdomainError,
    RealmDeactivatedError,
    UserDeactivatedError,
    error_for_refusal,
)
from keyhouse.auth.models import LoginAttempt
from keyhouse.auth.refusals import DEV_FLAG_ORDER, refusal_for_flags
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user, set_active
from keyhouse.users.models import Role, User
from tests.api.helpers import json_body
from tests.openapi import ZulipOpenAPI

FETCH = "/api/v1/dev_fetch_api_key"
LIST = "/api/v1/dev_list_users"
DEV_BACKEND = "keyhouse.auth.backends.DevAuthBackend"

NOT_FOUND = {"result": "error", "msg": "Not Found", "code": "BAD_REQUEST"}
AUTH_FAILED = {
    "result": "error",
    "msg": "Your username or password is incorrect",
    "code": "AUTHENTICATION_FAILED",
}
USER_DEACTIVATED = {"result": "error", "msg": "Account is deactivated", "code": "USER_DEACTIVATED"}
REALM_DEACTIVATED = {
    "result": "error",
    "msg": "This organization has been deactivated",
    "code": "REALM_DEACTIVATED",
}
INVALID_SUBDOMAIN = {"result": "error", "msg": "Invalid subdomain", "code": "NONEXISTENT_SUBDOMAIN"}
INVALID_EMAIL = {"result": "error", "msg": "Enter a valid email address.", "code": "BAD_REQUEST"}
DEV_AUTH_DISABLED = {"result": "error", "msg": "DevAuthBackend not enabled.", "code": "BAD_REQUEST"}


@pytest.fixture
def dev_mode(settings: Settings, realm: Realm) -> Realm:
    """A server as `make serve` runs it: DEV_MODE on, the backend listed, the realm opted in."""
    settings.DEV_MODE = True
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, DEV_BACKEND]
    realm.authentication_methods = ["email", "dev"]
    realm.save()
    return realm


def dev_fetch(client: Client, username: str, **extra: Any) -> HttpResponse:
    return client.post(FETCH, {"username": username}, **extra)


def success_body(user: User) -> dict[str, Any]:
    return {
        "result": "success",
        "msg": "",
        "api_key": user.api_key,
        "email": user.delivery_email,
        "user_id": user.id,
    }


# --- DEV_MODE off: a production server, where the routes do not exist --------------------


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
@pytest.mark.parametrize("url", [FETCH, LIST])
def test_production_answers_json_404(
    client: Client, user: User, settings: Settings, url: str, method: str
) -> None:
    """Even with the backend listed and the realm opted in: DEV_MODE alone opens them."""
    settings.DEV_MODE = False
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, DEV_BACKEND]
    user.realm.authentication_methods = ["email", "dev"]
    user.realm.save()
    response = getattr(client, method)(url, {"username": user.delivery_email})
    assert json_body(response, 404) == NOT_FOUND
    assert "sessionid" not in response.cookies
    assert not LoginAttempt.objects.exists()


def test_dev_backend_is_configured_only_in_dev_mode() -> None:
    """settings.py lists DevAuthBackend iff DEV_MODE (the test run has it off)."""
    assert django_settings.DEV_MODE is False
    assert DEV_BACKEND not in django_settings.AUTHENTICATION_BACKENDS


def test_settings_add_the_dev_backend_with_dev_mode(tmp_path: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    probe = "import json, keyhouse.settings as s; print(json.dumps(s.AUTHENTICATION_BACKENDS))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")}
    env.update(KEYHOUSE_DATA_DIR=str(tmp_path), KEYHOUSE_DEV_MODE="1")
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert DEV_BACKEND in json.loads(out)


# --- DevFetchAPIKeyTest -------------------------------------------------------------------


def test_success(client: Client, user: User, dev_mode: Realm, openapi_spec: ZulipOpenAPI) -> None:
    response = dev_fetch(client, user.delivery_email)
    assert json_body(response, 200) == success_body(user)
    openapi_spec.validate_success("post", FETCH, response.content)


def test_success_logs_in_a_session(client: Client, user: User, dev_mode: Realm) -> None:
    """Zulip's do_login: unlike fetch_api_key, this sets a session cookie."""
    response = dev_fetch(client, "hamlet@EXAMPLE.com")  # the email matches case-insensitively
    assert json_body(response, 200)["user_id"] == user.id
    assert response.cookies["sessionid"].value
    assert client.session["_auth_user_id"] == str(user.id)
    assert client.session["_auth_user_backend"] == DEV_BACKEND


def test_success_is_audited(client: Client, user: User, dev_mode: Realm) -> None:
    dev_fetch(client, user.delivery_email, HTTP_USER_AGENT="ZulipMobile/27.0")
    (entry,) = LoginAttempt.objects.all()
    assert (entry.method, entry.outcome, entry.reason, entry.user_id) == (
        "dev",
        "success",
        "",
        user.id,
    )
    assert entry.user_agent == "ZulipMobile/27.0"


def test_invalid_email(client: Client, user: User, dev_mode: Realm) -> None:
    assert json_body(dev_fetch(client, "hamlet"), 400) == INVALID_EMAIL


def test_unregistered_user(client: Client, user: User, dev_mode: Realm) -> None:
    response = dev_fetch(client, "foo@example.com")
    assert json_body(response, 401) == AUTH_FAILED
    assert "sessionid" not in response.cookies
    (entry,) = LoginAttempt.objects.all()
    assert (entry.method, entry.outcome, entry.reason) == (
        "dev",
        "failure",
        "AUTHENTICATION_FAILED",
    )


def test_inactive_user(client: Client, user: User, dev_mode: Realm) -> None:
    set_active(user, False)
    assert json_body(dev_fetch(client, user.delivery_email), 401) == USER_DEACTIVATED


def test_deactivated_realm(client: Client, user: User, dev_mode: Realm) -> None:
    dev_mode.deactivated = True
    dev_mode.save()
    assert json_body(dev_fetch(client, user.delivery_email), 401) == REALM_DEACTIVATED


def test_deactivated_realm_beats_inactive_user(client: Client, user: User, dev_mode: Realm) -> None:
    set_active(user, False)
    dev_mode.deactivated = True
    dev_mode.save()
    assert json_body(dev_fetch(client, user.delivery_email), 401) == REALM_DEACTIVATED


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"inactive_realm", "inactive_user", "invalid_subdomain"}, RealmDeactivatedError),
        ({"inactive_user", "invalid_subdomain"}, UserDeactivatedError),
        ({"invalid_subdomain"}, InvalidSubdomainError),
        (set(), AuthenticationFailedError),
    ],
)
def test_flag_order_is_dev_logins(flags: set[str], expected: type) -> None:
    """inactive_realm → inactive_user → invalid_subdomain (fetch_api_key checks the user first).

    One backend call never sets two of these, so the order is checked on the mapping.
    """
    refusal = refusal_for_flags(dict.fromkeys(flags, True), DEV_FLAG_ORDER)
    assert type(error_for_refusal(refusal)) is expected


def test_dev_auth_disabled(client: Client, user: User, dev_mode: Realm, settings: Settings) -> None:
    """DEV_MODE on but no DevAuthBackend configured: Zulip's check_dev_auth_backend."""
    settings.AUTHENTICATION_BACKENDS = [
        b for b in settings.AUTHENTICATION_BACKENDS if b != DEV_BACKEND
    ]
    assert json_body(dev_fetch(client, user.delivery_email), 400) == DEV_AUTH_DISABLED


def test_realm_without_dev_method_refuses(client: Client, user: User, dev_mode: Realm) -> None:
    """The realm must opt in; otherwise DevAuthBackend returns None: a generic 401."""
    dev_mode.authentication_methods = ["email"]
    dev_mode.save()
    response = dev_fetch(client, user.delivery_email)
    assert json_body(response, 401) == AUTH_FAILED
    assert "sessionid" not in response.cookies


def test_invalid_subdomain(client: Client, user: User, dev_mode: Realm, external_host: str) -> None:
    response = dev_fetch(client, user.delivery_email, HTTP_HOST=f"nowhere.{external_host}")
    assert json_body(response, 404) == INVALID_SUBDOMAIN


def test_account_in_another_realm(
    client: Client, user: User, dev_mode: Realm, other_realm: Realm, external_host: str
) -> None:
    other_realm.authentication_methods = ["dev"]
    other_realm.save()
    response = dev_fetch(client, user.delivery_email, HTTP_HOST=f"other.{external_host}")
    assert json_body(response, 404) == INVALID_SUBDOMAIN


def test_missing_username(client: Client, dev_mode: Realm) -> None:
    assert json_body(client.post(FETCH), 400) == {
        "result": "error",
        "msg": "Missing 'username' argument",
        "var_name": "username",
        "code": "REQUEST_VARIABLE_MISSING",
    }


def test_get_is_405(client: Client, user: User, dev_mode: Realm) -> None:
    response = client.get(FETCH, {"username": user.delivery_email})
    assert json_body(response, 405) == {
        "result": "error",
        "msg": "Method Not Allowed",
        "allowed_methods": ["POST"],
    }


def test_ignored_parameters_are_reported(client: Client, user: User, dev_mode: Realm) -> None:
    response = client.post(FETCH, {"username": user.delivery_email, "password": "x", "foo": "1"})
    assert json_body(response, 200)["ignored_parameters_unsupported"] == ["foo", "password"]


def test_no_rate_limiting(client: Client, user: User, dev_mode: Realm, settings: Settings) -> None:
    """Zulip's DevAuthBackend carries no rate_limit_auth: no limit, no X-RateLimit headers."""
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "authenticate_by_username": [(1800, 1)],
        "authenticate_by_ip": [(60, 1)],
    }
    settings.RATE_LIMIT_IP_EXEMPT = []
    for _ in range(3):
        response = dev_fetch(client, "foo@example.com")
        assert response.status_code == 401
    response = dev_fetch(client, user.delivery_email)
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response


# --- DevGetEmailsTest -------------------------------------------------------------------------


def test_list_users(client: Client, user: User, dev_mode: Realm) -> None:
    owner = create_user(dev_mode, "owner@example.com", "Owner", role=Role.OWNER)
    create_user(dev_mode, "admin@example.com", "Admin", role=Role.ADMINISTRATOR)
    create_user(dev_mode, "mod@example.com", "Moderator", role=Role.MODERATOR)
    gone = create_user(dev_mode, "gone@example.com", "Gone")
    set_active(gone, False)
    bot = create_user(dev_mode, "bot@example.com", "Bot")
    bot.is_bot = True
    bot.save()
    body = json_body(client.get(LIST), 200)
    here = "http://testserver"
    assert body == {
        "result": "success",
        "msg": "",
        "direct_admins": [
            {"email": "admin@example.com", "realm_url": here},
            {"email": owner.delivery_email, "realm_url": here},
        ],
        "direct_users": [
            {"email": user.delivery_email, "realm_url": here},
            {"email": "mod@example.com", "realm_url": here},
        ],
    }


def test_list_users_spans_realms_that_allow_dev_login(
    client: Client, user: User, dev_mode: Realm, other_realm: Realm, external_host: str
) -> None:
    """Other realms get their own URL (with this request's port); realms without "dev" none."""
    other_realm.authentication_methods = ["dev"]
    other_realm.save()
    create_user(other_realm, "iago@example.com", "Iago", role=Role.ADMINISTRATOR)
    closed = Realm.objects.create(
        subdomain="closed", name="Closed", authentication_methods=["email"]
    )
    create_user(closed, "private@example.com", "Private")
    body = json_body(client.get(LIST, HTTP_HOST=f"{external_host}:9991"), 200)
    assert body["direct_admins"] == [
        {"email": "iago@example.com", "realm_url": f"http://other.{external_host}:9991"}
    ]
    assert body["direct_users"] == [
        {"email": user.delivery_email, "realm_url": f"http://{external_host}:9991"}
    ]


def test_list_users_any_method_no_ignored_parameters(
    client: Client, user: User, dev_mode: Realm
) -> None:
    body = json_body(client.post(LIST, {"foo": "1"}), 200)
    assert "ignored_parameters_unsupported" not in body
    assert body["direct_users"] == [
        {"email": user.delivery_email, "realm_url": "http://testserver"}
    ]


def test_list_users_dev_auth_disabled(
    client: Client, user: User, dev_mode: Realm, settings: Settings
) -> None:
    settings.AUTHENTICATION_BACKENDS = [
        b for b in settings.AUTHENTICATION_BACKENDS if b != DEV_BACKEND
    ]
    assert json_body(client.get(LIST), 400) == DEV_AUTH_DISABLED


def test_list_then_fetch_like_the_mobile_app(client: Client, user: User, dev_mode: Realm) -> None:
    """The app's dev login: pick an account from the list, POST its email to its realm."""
    (entry,) = json_body(client.get(LIST), 200)["direct_users"]
    host = entry["realm_url"].split("://", 1)[1]
    body = json_body(dev_fetch(Client(), entry["email"], HTTP_HOST=host), 200)
    assert body == success_body(user)


# --- `make serve`'s demo: development mode on, loudly ------------------------------------------


def test_demo_in_dev_mode_allows_dev_login_and_says_so(
    client: Client, db: None, settings: Settings
) -> None:
    from keyhouse.ops.demo import DEMO_EMAIL, DEV_MODE_WARNING, ensure_demo

    settings.DEV_MODE = True
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, DEV_BACKEND]
    banner = ensure_demo("127.0.0.1", 9991)
    assert DEV_MODE_WARNING in banner.splitlines()
    assert "WITHOUT a password" in DEV_MODE_WARNING
    assert Realm.objects.get(subdomain="").authentication_methods == ["email", "dev"]
    assert json_body(dev_fetch(client, DEMO_EMAIL), 200)["email"] == DEMO_EMAIL


def test_demo_turns_dev_on_for_an_existing_demo_realm(db: None, settings: Settings) -> None:
    from keyhouse.ops.demo import ensure_demo

    Realm.objects.create(subdomain="", name="keyhouse demo", authentication_methods=["ldap"])
    ensure_demo("127.0.0.1", 9991)
    assert Realm.objects.get(subdomain="").authentication_methods == ["email", "ldap", "dev"]


def test_demo_without_dev_mode_claims_nothing(db: None, settings: Settings) -> None:
    from keyhouse.ops.demo import ensure_demo

    settings.DEV_MODE = False
    banner = ensure_demo("127.0.0.1", 9991)
    assert "DEVELOPMENT MODE" not in banner and "dev_fetch_api_key" not in banner
    assert ensure_demo("127.0.0.1", 9991) == banner  # idempotent: make serve runs it each time


def test_make_serve_runs_demo_and_server_in_dev_mode() -> None:
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    recipe = makefile.split("\nserve:", 1)[1].split("\n\n", 1)[0]
    commands = [line.strip() for line in recipe.splitlines()[1:] if "keyhouse " in line]
    assert [c.split("keyhouse ", 1)[1].split()[0] for c in commands] == ["demo", "serve"]
    assert all("KEYHOUSE_DEV_MODE=1" in c for c in commands)
