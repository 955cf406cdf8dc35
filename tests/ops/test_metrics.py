"""Metrics move with traffic, keep their labels bounded, and /metrics is not public.

In tests there is no PROMETHEUS_MULTIPROC_DIR, so values live in the default
registry; tests/e2e/test_ops_e2e.py covers the multiprocess mode.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from pytest_django.fixtures import Settings

from keyhouse.auth.hashing_gate import get_gate
from keyhouse.ops import metrics  # noqa: F401 - connects the signal receivers
from keyhouse.ops.routes import UNMATCHED
from keyhouse.users.models import User
from tests.conftest import PASSWORD


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests_total(route: str, method: str = "GET", status: str = "2xx", code: str = "") -> float:
    labels = {"route": route, "method": method, "status": status, "code": code}
    return value("keyhouse_http_requests_total", **labels)


def all_label_values() -> Iterator[str]:
    for family in REGISTRY.collect():
        for sample in family.samples:
            yield from sample.labels.values()


@pytest.fixture(autouse=True)
def database_store(settings: Settings) -> None:
    """The database rate-limit store, whatever the environment says."""
    settings.REDIS_URL = ""


def login(client: Client, password: str) -> int:
    response = client.post(
        "/api/v1/fetch_api_key", {"username": "hamlet@example.com", "password": password}
    )
    return response.status_code


def test_requests_are_counted_and_timed_by_route(client: Client, db: None) -> None:
    route = "/api/v1/server_settings"
    before = requests_total(route)
    timed_before = value("keyhouse_http_request_duration_seconds_count", route=route, method="GET")
    for _ in range(3):
        assert client.get(route).status_code == 200
    assert requests_total(route) == before + 3
    assert (
        value("keyhouse_http_request_duration_seconds_count", route=route, method="GET")
        == timed_before + 3
    )


def test_unknown_paths_share_one_label(client: Client, db: None) -> None:
    """Made-up paths must not mint a time series each (unbounded cardinality)."""
    token = secrets.token_hex(8)
    before = requests_total(UNMATCHED, status="4xx")
    for i in range(3):
        assert client.get(f"/no-such-{token}/{i}").status_code == 404
    assert requests_total(UNMATCHED, status="4xx") == before + 3
    assert not [v for v in all_label_values() if token in v]


def test_unknown_methods_share_one_label(client: Client, db: None) -> None:
    token = "X" + secrets.token_hex(4).upper()
    before = requests_total("/api/v1/server_settings", method="OTHER", status="4xx", code="")
    client.generic(token, "/api/v1/server_settings")
    after = requests_total("/api/v1/server_settings", method="OTHER", status="4xx", code="")
    assert after == before + 1
    assert token not in set(all_label_values())


def test_api_errors_carry_the_zulip_code(client: Client, user: User) -> None:
    labels = {"status": "4xx", "code": "AUTHENTICATION_FAILED", "method": "POST"}
    before = requests_total("/api/v1/fetch_api_key", **labels)
    assert login(client, "wrong password") == 401
    assert requests_total("/api/v1/fetch_api_key", **labels) == before + 1


def test_login_attempts_by_outcome(client: Client, user: User) -> None:
    def attempts(outcome: str, reason: str) -> float:
        return value(
            "keyhouse_login_attempts_total", method="password", outcome=outcome, reason=reason
        )

    failures, successes = attempts("failure", "AUTHENTICATION_FAILED"), attempts("success", "")
    assert login(client, "wrong password") == 401
    assert login(client, PASSWORD) == 200
    assert attempts("failure", "AUTHENTICATION_FAILED") == failures + 1
    assert attempts("success", "") == successes + 1


def test_rate_limit_hits_by_domain(client: Client, user: User, settings: Settings) -> None:
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "authenticate_by_username": [(1800, 1)],
    }
    before = value("keyhouse_rate_limit_hits_total", domain="authenticate_by_username")
    assert login(client, "wrong password") == 401
    assert login(client, "wrong password") == 429
    assert login(client, "wrong password") == 429
    assert value("keyhouse_rate_limit_hits_total", domain="authenticate_by_username") == before + 2


def test_hashing_queue_length_gauge(settings: Settings) -> None:
    """One slot held: a second verification waits, and the gauge shows it waiting."""
    settings.HASHING_SLOTS = 1
    settings.HASHING_MAX_WAIT = 5.0
    settings.HASHING_MAX_WAITERS = 8
    gate = get_gate()
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with gate.slot():
            holding.set()
            release.wait(5)

    def wait_for_slot() -> None:
        with gate.slot():
            pass

    base = value("keyhouse_hashing_queue_length")
    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(5)
    waiter = threading.Thread(target=wait_for_slot)
    waiter.start()
    try:
        deadline = time.monotonic() + 5
        while value("keyhouse_hashing_queue_length") != base + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert value("keyhouse_hashing_queue_length") == base + 1
    finally:
        release.set()
        holder.join(5)
        waiter.join(5)
    assert value("keyhouse_hashing_queue_length") == base


def test_hashing_slots_gauges(settings: Settings) -> None:
    """The budget's size and its free slots, read when scraped."""
    settings.HASHING_SLOTS = 3
    assert value("keyhouse_hashing_slots") == 3
    assert value("keyhouse_hashing_slots_free") == 3
    with get_gate().slot():
        assert value("keyhouse_hashing_slots_free") == 2
    assert value("keyhouse_hashing_slots_free") == 3


# --- /metrics -----------------------------------------------------------------------


def test_metrics_from_loopback(client: Client, db: None) -> None:
    client.get("/api/v1/server_settings")
    response = client.get("/metrics")  # the test client's REMOTE_ADDR is 127.0.0.1
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert (
        'keyhouse_http_requests_total{code="",method="GET",route="/api/v1/server_settings"' in text
    )
    assert "keyhouse_hashing_queue_length" in text
    assert "keyhouse_hashing_slots_free" in text


def test_metrics_refused_to_other_addresses(client: Client, db: None) -> None:
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert response.json()["result"] == "error"
    assert b"keyhouse_" not in response.content


def test_metrics_allowed_ips_setting(client: Client, db: None, settings: Settings) -> None:
    settings.METRICS_ALLOWED_IPS = ["203.0.113.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback no longer listed


def test_metrics_refused_through_an_untrusted_proxy(
    client: Client, db: None, settings: Settings
) -> None:
    """Behind nginx on loopback, without TRUSTED_PROXIES, every client looks local."""
    settings.TRUSTED_PROXIES = []
    response = client.get("/metrics", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert response.status_code == 403


def test_metrics_through_a_trusted_proxy_use_the_client_address(
    client: Client, db: None, settings: Settings
) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 403
    settings.METRICS_ALLOWED_IPS = ["198.51.100.0/24"]
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 200
