"""Fixtures for the browser pages: realms on subdomains, users old enough for login emails."""

from __future__ import annotations

import pytest
from django.test import Client

from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import User
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def no_pruning(no_pruning: None) -> None:
    """Every page test: audit counts must not depend on a random prune."""


@pytest.fixture
def other_user(other_realm: Realm) -> User:
    return create_user(other_realm, "othello@example.com", "Othello", password=PASSWORD)


@pytest.fixture
def csrf_client() -> Client:
    """A client that, like a browser against a real server, is held to CSRF checks."""
    return Client(enforce_csrf_checks=True)


def csrf_token(client: Client, path: str = "/login/", **extra: str) -> str:
    """Load a form page, as a browser would, and return the CSRF token it was given."""
    response = client.get(path, **extra)
    assert response.status_code == 200, response.status_code
    return str(response.context["csrf_token"])
