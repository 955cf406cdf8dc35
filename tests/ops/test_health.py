"""/health answers from the process alone; /ready names whatever a login would trip on."""

from __future__ import annotations

import time
from typing import Any

import dj_database_url
import pytest
from django.db import connections
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.ops import health
from tests.conftest import redis_or_fail
from tests.ports import free_port


@pytest.fixture
def no_extras(settings: Settings) -> None:
    """Only the database is configured, whatever the developer's environment says."""
    settings.REDIS_URL = ""
    settings.AUTH_LDAP_SERVER_URI = ""


def test_health_needs_no_database(client: Client) -> None:
    """No ``db`` fixture: pytest-django makes any query here an error, not a pass."""
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_ready_with_only_a_database(client: Client, db: None, no_extras: None) -> None:
    """Neither Redis nor LDAP configured: their checks are skipped, not failed."""
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


def test_ready_with_a_broken_database_url(
    client: Client, db: None, no_extras: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that cannot be opened is a 503 naming ``database``, not a 500."""
    broken = dj_database_url.parse("sqlite:////nonexistent-keyhouse-dir/sub/keyhouse.sqlite3")
    monkeypatch.setitem(
        connections.settings, "default", {**connections["default"].settings_dict, **broken}
    )
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failing": ["database"],
        "checks": {"database": "error"},
    }


def test_ready_with_unreachable_redis(
    client: Client, db: None, no_extras: None, settings: Settings
) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"]
    assert body["checks"] == {"database": "ok", "redis": "error"}


@pytest.mark.services
def test_ready_with_redis(client: Client, db: None, no_extras: None, settings: Settings) -> None:
    settings.REDIS_URL = redis_or_fail()
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_a_hung_check_times_out_at_its_deadline() -> None:
    """A dependency that never answers costs its deadline, not a server thread forever."""

    def hangs(timeout: float) -> None:
        time.sleep(5)

    def fine(timeout: float) -> None:
        pass

    started = time.monotonic()
    results = health.run_checks({"slow": (hangs, 0.2), "fast": (fine, 0.2)})
    assert time.monotonic() - started < 1.0
    assert results == {"slow": "timeout", "fast": "ok"}


def test_a_bug_in_the_checks_is_a_503_not_a_500(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("bug")

    monkeypatch.setattr(health, "readiness_checks", broken)
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"readiness": "error"}


# --- LDAP: a real slapd (tests/ldap_fixtures.py) ---------------------------------


@pytest.fixture
def ldap_configured(settings: Settings, slapd: Any, no_extras: None) -> Any:
    from tests.ldap_fixtures import configure_ldap

    configure_ldap(settings, slapd, LDAP_CONNECT_TIMEOUT=1, LDAP_OPERATION_TIMEOUT=3)
    return slapd


def test_ready_binds_to_ldap(client: Client, db: None, ldap_configured: Any) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "ldap": "ok"}


def test_ready_with_a_wrong_ldap_bind_password(
    client: Client, db: None, ldap_configured: Any, settings: Settings
) -> None:
    settings.AUTH_LDAP_BIND_PASSWORD = "not-the-service-password"
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "ldap": "error"}


def test_ready_with_ldap_down(client: Client, db: None, ldap_configured: Any) -> None:
    ldap_configured.stop()
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["ldap"]


def test_ready_with_a_hung_ldap_answers_within_the_connect_timeout(
    client: Client, db: None, ldap_configured: Any
) -> None:
    """A stopped (SIGSTOP) slapd accepts TCP but never answers the bind."""
    ldap_configured.pause()
    started = time.monotonic()
    response = client.get("/ready")
    assert time.monotonic() - started < 2.0  # LDAP_CONNECT_TIMEOUT = 1
    assert response.status_code == 503
    assert response.json()["checks"]["ldap"] == "timeout"
