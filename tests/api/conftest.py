"""Fixtures for the HTTP API tests: the OpenAPI checker and multi-realm hosts."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from tests import openapi
from tests.openapi import ZulipOpenAPI

EXTERNAL_HOST = "example.org"


@pytest.fixture
def openapi_spec() -> ZulipOpenAPI:
    """The shared Zulip spec; tests that validate against it skip when it is absent."""
    if not openapi.spec_available():
        pytest.skip(
            f"Zulip OpenAPI subset not found at {openapi.SPEC_PATH}: the shared checkout"
            " next to this repository is absent, so bodies cannot be validated against it"
        )
    return openapi.load_spec()


@pytest.fixture
def external_host(settings: Settings) -> str:
    """Turn on subdomain routing: realm ``x`` lives at ``x.example.org``."""
    settings.EXTERNAL_HOST = EXTERNAL_HOST
    return EXTERNAL_HOST


@pytest.fixture
def other_realm(realm: Realm, external_host: str) -> Realm:
    """A second, subdomain realm next to the root one, with email logins on."""
    return Realm.objects.create(
        subdomain="other", name="Other Org", authentication_methods=["email"]
    )
