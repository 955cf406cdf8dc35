"""A saturated hashing pool answers a fast Zulip-format 503; API keys keep working."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.auth.hashing_gate import get_gate
from keyhouse.users.models import User
from tests.api.helpers import json_body
from tests.conftest import PASSWORD, basic_auth


@contextmanager
def every_slot_held(settings: Settings) -> Iterator[None]:
    """Every slot of this process's pool busy (another thread holds it), no room to wait."""
    settings.HASHING_SLOTS = 1
    settings.HASHING_MAX_WAIT = 0.1
    settings.HASHING_MAX_WAITERS = 0
    gate = get_gate()
    release, holding = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.slot():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(5)
    try:
        yield
    finally:
        release.set()
        thread.join(5)


@pytest.fixture
def saturated(settings: Settings) -> Iterator[None]:
    with every_slot_held(settings):
        yield


def test_login_during_flood_gets_503(client: Client, user: User, saturated: None) -> None:
    response = client.post(
        "/api/v1/fetch_api_key", {"username": "hamlet@example.com", "password": PASSWORD}
    )
    assert json_body(response, 503) == {
        "result": "error",
        "msg": "The server is busy; try again in a moment",
        "code": "SERVER_OVERLOADED",
        "retry-after": 1.0,
    }
    assert response["Retry-After"] == "1"


def test_unknown_user_is_refused_the_same_way(client: Client, user: User, saturated: None) -> None:
    """The dummy verification goes through the pool too: no free timing oracle under load."""
    response = client.post(
        "/api/v1/fetch_api_key", {"username": "nobody@example.com", "password": PASSWORD}
    )
    assert response.status_code == 503


def test_api_key_requests_keep_flowing(client: Client, user: User, saturated: None) -> None:
    response = client.get("/api/v1/users/me", **basic_auth(user.delivery_email, user.api_key))
    assert json_body(response, 200)["user_id"] == user.id


def test_pool_recovers(client: Client, user: User, settings: Settings) -> None:
    settings.HASHING_SLOTS = 1
    settings.HASHING_MAX_WAITERS = 0
    for _ in range(3):
        response = client.post(
            "/api/v1/fetch_api_key", {"username": "hamlet@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200


def test_refusals_do_not_count_against_the_user(
    client: Client, user: User, settings: Settings
) -> None:
    """Five "busy" answers must not lock a real user out for half an hour."""
    with every_slot_held(settings):
        for _ in range(7):
            response = client.post(
                "/api/v1/fetch_api_key", {"username": "hamlet@example.com", "password": "x"}
            )
            assert response.status_code == 503
    response = client.post(
        "/api/v1/fetch_api_key", {"username": "hamlet@example.com", "password": PASSWORD}
    )
    assert json_body(response, 200)["user_id"] == user.id
