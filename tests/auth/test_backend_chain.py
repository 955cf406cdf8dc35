"""auth/backend_chain.py answers as Django's ``authenticate`` does, for the same backends."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import authenticate as django_authenticate
from django.contrib.auth import user_login_failed
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.test import RequestFactory
from pytest_django.fixtures import Settings

from keyhouse.auth.backend_chain import authenticate
from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from tests.conftest import PASSWORD

HERE = "tests.auth.test_backend_chain"


class Refusing:
    """Stops the chain for one username, as a backend that knows the user may not in."""

    def authenticate(
        self, request: HttpRequest | None, *, username: str, password: str, **kw: Any
    ) -> None:
        if username == "banned@example.com":
            raise PermissionDenied
        return None


class OtherSignature:
    """Takes other credentials: never asked about a username and password."""

    calls = 0

    def authenticate(self, request: HttpRequest | None, *, token: str) -> None:
        OtherSignature.calls += 1
        return None


@pytest.fixture
def chain(settings: Settings) -> list[str]:
    settings.AUTHENTICATION_BACKENDS = [
        f"{HERE}.OtherSignature",
        f"{HERE}.Refusing",
        *settings.AUTHENTICATION_BACKENDS,
    ]
    return list(settings.AUTHENTICATION_BACKENDS)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("hamlet@example.com", PASSWORD),  # the email backend answers
        ("hamlet@example.com", "wrong"),
        ("nobody@example.com", PASSWORD),
        ("banned@example.com", PASSWORD),  # PermissionDenied: the chain stops
    ],
)
def test_same_answer_as_djangos(
    chain: list[str], realm: Realm, user: User, username: str, password: str
) -> None:
    request = RequestFactory().post("/api/v1/fetch_api_key")
    failed: list[dict[str, Any]] = []

    def on_failure(sender: Any, credentials: dict[str, Any], **kw: Any) -> None:
        failed.append(credentials)

    user_login_failed.connect(on_failure)
    try:
        answers = []
        for run in (django_authenticate, authenticate):
            flags: dict[str, Any] = {}
            found = run(
                request, username=username, password=password, realm=realm, return_data=flags
            )
            answers.append((found, getattr(found, "backend", None), flags))
    finally:
        user_login_failed.disconnect(on_failure)
    assert answers[0] == answers[1]
    assert OtherSignature.calls == 0
    if answers[0][0] is None:
        assert len(failed) == 2 and failed[0] == failed[1]
        assert failed[1]["password"] != password  # cleansed, as Django sends it
    else:
        assert answers[1][1] == "keyhouse.auth.backends.EmailAuthBackend"
