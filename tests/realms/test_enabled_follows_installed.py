"""What is reported enabled is what can run (issue #13, item 2).

Every combination of backend order × the realm's methods × the state of LDAP
(configured, not configured, python-ldap missing), on the three surfaces that
must agree: server_settings, the login page and fetch_api_key. Before, with
AUTHENTICATION_BACKEND_ORDER = ["ldap"] (or LDAP unconfigured) ``email`` was
reported on although no backend could serve it.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.backend_choice import password_backends
from keyhouse.ldap_settings import ldap_settings
from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from tests.conftest import PASSWORD

ORDERS = [["email", "ldap"], ["ldap", "email"], ["email"], ["ldap"], []]
REALM_METHODS = [["email"], ["ldap"], ["email", "ldap"], []]
LDAP_STATES = ["configured", "unconfigured", "not-installed"]
# Nothing listens on port 1: an LDAP attempt is a directory outage (a 503), which
# shows that the LDAP backend, and only it, ran.
CLOSED_LDAP = "ldap://127.0.0.1:1"
STAFF = "keyhouse.auth.backends.StaffAuthBackend"


@dataclass(frozen=True)
class Case:
    order: tuple[str, ...]
    realm_methods: tuple[str, ...]
    ldap: str

    @property
    def email_on(self) -> bool:
        return "email" in self.order and "email" in self.realm_methods

    @property
    def ldap_on(self) -> bool:
        return "ldap" in self.order and self.ldap == "configured" and "ldap" in self.realm_methods

    @property
    def password_on(self) -> bool:
        return self.email_on or self.ldap_on

    @property
    def email_backend_answers_first(self) -> bool:
        """The local password decides: email runs, and LDAP (if on) only after it."""
        if not self.email_on:
            return False
        return not self.ldap_on or self.order.index("email") < self.order.index("ldap")


CASES = [
    Case(tuple(o), tuple(m), s) for o, m, s in itertools.product(ORDERS, REALM_METHODS, LDAP_STATES)
]
IDS = [
    f"order={','.join(c.order) or '-'}|realm={','.join(c.realm_methods) or '-'}|{c.ldap}"
    for c in CASES
]


@pytest.fixture(params=CASES, ids=IDS)
def case(
    request: pytest.FixtureRequest,
    settings: Settings,
    realm: Realm,
    monkeypatch: pytest.MonkeyPatch,
) -> Case:
    """Settings as keyhouse.settings builds them for this configuration."""
    case: Case = request.param
    if case.ldap == "not-installed":
        # What the import sees when the keyhouse[ldap] extra is not installed.
        monkeypatch.setitem(sys.modules, "ldap", None)
    uri = "" if case.ldap == "unconfigured" else CLOSED_LDAP
    settings.AUTHENTICATION_BACKEND_ORDER = list(case.order)
    settings.AUTH_LDAP_SERVER_URI = uri
    settings.LDAP_APPEND_DOMAIN = "example.com"  # LDAP maps bare usernames
    if case.ldap == "configured":
        built = ldap_settings(
            user_search={"base": "ou=people,dc=example,dc=com", "filter": "(uid=%(user)s)"},
            reverse_email_search=None,
            connect_timeout=1,
            operation_timeout=1,
            ca_cert_file=None,
        )
        for name, value in built.items():
            setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [*password_backends(case.order, uri), STAFF]
    realm.authentication_methods = list(case.realm_methods)
    realm.save()
    return case


def test_server_settings(client: Client, case: Case) -> None:
    body = client.get("/api/v1/server_settings").json()
    methods = body["authentication_methods"]
    assert (methods["password"], methods["email"], methods["ldap"]) == (
        case.password_on,
        case.email_on,
        case.ldap_on,
    )
    assert body["email_auth_enabled"] is case.email_on
    assert body["require_email_format_usernames"] is not case.ldap_on


def test_login_page(client: Client, case: Case) -> None:
    html = client.get("/login/").content.decode()
    assert ('name="password"' in html) is case.password_on
    if case.password_on:
        field_type = "text" if case.ldap_on else "email"
        assert f'name="username" type="{field_type}"' in html


def test_fetch_api_key(client: Client, user: User, case: Case) -> None:
    response = client.post(
        "/api/v1/fetch_api_key", {"username": user.delivery_email, "password": PASSWORD}
    )
    body = response.json()
    if not case.password_on:
        assert (response.status_code, body["code"]) == (401, "PASSWORD_AUTH_DISABLED")
    elif case.email_backend_answers_first:
        assert response.status_code == 200
        assert body["api_key"] == user.api_key
    else:  # only LDAP can answer, and the directory is down
        assert (response.status_code, body["code"]) == (503, "LDAP_UNAVAILABLE")
