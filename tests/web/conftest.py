"""Fixtures for the browser pages: realms on subdomains, users old enough for login emails."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import User
from tests.conftest import PASSWORD

EXTERNAL_HOST = "example.org"


@pytest.fixture(autouse=True)
def no_pruning(settings: Settings) -> None:
    """Audit counts in these tests must not depend on a random prune."""
    settings.AUDIT_PRUNE_EVERY = 0


@pytest.fixture
def external_host(settings: Settings) -> str:
    """Turn on subdomain routing: realm ``x`` lives at ``x.example.org``."""
    settings.EXTERNAL_HOST = EXTERNAL_HOST
    return EXTERNAL_HOST


@pytest.fixture
def other_realm(realm: Realm, external_host: str) -> Realm:
    return Realm.objects.create(
        subdomain="other", name="Other Org", authentication_methods=["email"]
    )


@pytest.fixture
def other_user(other_realm: Realm) -> User:
    return create_user(other_realm, "othello@example.com", "Othello", password=PASSWORD)


def age(user: User, seconds: int = 3600) -> User:
    """Backdate the account: Zulip sends no login email in an account's first minute."""
    user.date_joined = timezone.now() - timedelta(seconds=seconds)
    user.save(update_fields=["date_joined"])
    return user


@pytest.fixture
def old_user(user: User) -> User:
    return age(user)


@pytest.fixture
def csrf_client() -> Client:
    """A client that, like a browser against a real server, is held to CSRF checks."""
    return Client(enforce_csrf_checks=True)


def csrf_token(client: Client, path: str = "/login/", **extra: str) -> str:
    """Load a form page, as a browser would, and return the CSRF token it was given."""
    response = client.get(path, **extra)
    assert response.status_code == 200, response.status_code
    return str(response.context["csrf_token"])
