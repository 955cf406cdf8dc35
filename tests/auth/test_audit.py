"""The login audit trail: what an entry holds, that it never breaks a login, and pruning."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest
from django.test import Client, RequestFactory
from pytest_django.fixtures import Settings

from keyhouse.auth import audit, audit_rows
from keyhouse.auth.audit import outcome_for_exception, prune_login_attempts, record_login_attempt
from keyhouse.auth.hashing_gate import HashingOverloaded
from keyhouse.auth.models import LoginAttempt
from keyhouse.auth.ratelimit import RateLimited
from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from tests.conftest import PASSWORD

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_opportunistic_pruning(settings: Settings) -> None:
    """Tests that want pruning on the login path turn it on themselves."""
    settings.AUDIT_PRUNE_EVERY = 0
    settings.AUDIT_RETENTION_DAYS = 90


def login_request(
    ip: str = "198.51.100.4", agent: str = "ZulipMobile/27.0", **meta: str
) -> HttpRequest:
    return RequestFactory().post(
        "/api/v1/fetch_api_key", REMOTE_ADDR=ip, HTTP_USER_AGENT=agent, **meta
    )


def record(request: HttpRequest, realm: Realm | None, username: str, **kw: object) -> None:
    fields: dict[str, object] = {"user": None, "outcome": "failure", "reason": "X"}
    fields.update(kw)
    record_login_attempt(request, realm=realm, username=username, **fields)  # type: ignore[arg-type]


def old_entry(age: timedelta, username: str = "old@example.com") -> LoginAttempt:
    return LoginAttempt.objects.create(
        timestamp=NOW - age, username=username, method="password", outcome="failure"
    )


def test_success_entry_holds_every_field(realm: Realm, user: User) -> None:
    before = datetime.now(UTC)
    record_login_attempt(
        login_request(),
        realm=realm,
        username="HAMLET@example.com",
        user=user,
        outcome="success",
        reason="",
        method="ldap",
    )
    entry = LoginAttempt.objects.get()
    assert before <= entry.timestamp <= datetime.now(UTC)
    assert (entry.realm, entry.subdomain, entry.username, entry.user) == (
        realm,
        "",
        "HAMLET@example.com",
        user,
    )
    assert (entry.client_ip, entry.user_agent) == ("198.51.100.4", "ZulipMobile/27.0")
    assert (entry.method, entry.outcome, entry.reason) == ("ldap", "success", "")


def test_method_defaults_to_password(realm: Realm) -> None:
    record(login_request(), realm, "nobody@example.com")
    assert LoginAttempt.objects.get().method == "password"


def test_refusal_is_tied_to_the_account_the_username_names(realm: Realm, user: User) -> None:
    record(login_request(), realm, "hamlet@EXAMPLE.com", reason="AUTHENTICATION_FAILED")
    record(login_request(), realm, "ghost@example.com", reason="AUTHENTICATION_FAILED")
    entries = {e.username: e.user_id for e in LoginAttempt.objects.all()}
    assert entries == {"hamlet@EXAMPLE.com": user.id, "ghost@example.com": None}


def test_subdomain_survives_realm_deletion(realm: Realm, db: None) -> None:
    chat = Realm.objects.create(subdomain="chat", name="Chat", authentication_methods=["email"])
    record(login_request(), chat, "x@example.com")
    chat.delete()
    entry = LoginAttempt.objects.get()
    assert (entry.realm_id, entry.subdomain) == (None, "chat")


def test_user_deletion_keeps_the_entry(realm: Realm, user: User) -> None:
    record(login_request(), realm, "hamlet@example.com", user=user, outcome="success", reason="")
    user.delete()
    entry = LoginAttempt.objects.get()
    assert (entry.user_id, entry.username) == (None, "hamlet@example.com")


def test_long_values_are_truncated(realm: Realm) -> None:
    record(login_request(agent="A" * 1000), realm, "u" * 500 + "@example.com")
    entry = LoginAttempt.objects.get()
    assert entry.username == "u" * 254
    assert entry.user_agent == "A" * 256


def test_nul_characters_are_replaced(realm: Realm) -> None:
    record(login_request(agent="bot\x00"), realm, "a\x00b")
    entry = LoginAttempt.objects.get()
    assert (entry.username, entry.user_agent) == ("a\ufffdb", "bot\ufffd")


def test_missing_user_agent_and_unusable_peer_address(realm: Realm) -> None:
    request = RequestFactory().post("/api/v1/fetch_api_key", REMOTE_ADDR="")
    request.META.pop("HTTP_USER_AGENT", None)
    record(request, realm, "x@example.com")
    entry = LoginAttempt.objects.get()
    assert (entry.client_ip, entry.user_agent) == (None, "")


def test_ipv6_address_stored_without_zone(realm: Realm) -> None:
    record(login_request(ip="fe80::1%eth0"), realm, "x@example.com")
    assert LoginAttempt.objects.get().client_ip == "fe80::1"


def test_client_ip_behind_a_trusted_proxy(realm: Realm, settings: Settings) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = login_request(ip="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.7")
    record(request, realm, "x@example.com")
    assert LoginAttempt.objects.get().client_ip == "203.0.113.9"


def test_forwarded_for_ignored_from_an_untrusted_peer(realm: Realm, settings: Settings) -> None:
    settings.TRUSTED_PROXIES = []
    record(login_request(ip="192.0.2.1", HTTP_X_FORWARDED_FOR="203.0.113.9"), realm, "x@ex.com")
    assert LoginAttempt.objects.get().client_ip == "192.0.2.1"


def test_failed_write_is_logged_not_raised(
    realm: Realm, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(audit_rows, "insert_row", refuse)
    with caplog.at_level(logging.ERROR, logger="keyhouse.auth.audit"):
        record(login_request(), realm, "x@example.com")  # does not raise
    assert [r.getMessage() for r in caplog.records] == [
        "Could not record a login attempt (realm '', outcome failure, reason X)"
    ]
    assert caplog.records[0].exc_info is not None
    assert LoginAttempt.objects.count() == 0


def test_failed_write_does_not_break_the_login(
    client: Client, user: User, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise DatabaseError("database is locked")

    monkeypatch.setattr(audit_rows, "insert_row", refuse)
    with caplog.at_level(logging.ERROR, logger="keyhouse.auth.audit"):
        response = client.post(
            "/api/v1/fetch_api_key", {"username": "hamlet@example.com", "password": PASSWORD}
        )
    assert response.status_code == 200
    assert response.json()["api_key"] == user.api_key
    assert len(caplog.records) == 1
    assert PASSWORD not in caplog.text


def failing_insert(*args: object, **kwargs: object) -> None:
    """A real database error from the database itself (PostgreSQL aborts the transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM keyhouse_no_such_table")


def test_failed_write_inside_a_transaction_leaves_it_usable(
    realm: Realm, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(audit_rows, "insert_row", failing_insert)
    with caplog.at_level(logging.ERROR, logger="keyhouse.auth.audit"):
        with transaction.atomic():
            record(login_request(), realm, "x@example.com")
            # Without the savepoint PostgreSQL would refuse every further query here.
            assert Realm.objects.filter(pk=realm.pk).exists()
    assert len(caplog.records) == 1


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_entry_is_committed_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    realm = Realm.objects.create(subdomain="", name="Org", authentication_methods=["email"])
    assert not connection.in_atomic_block
    record(login_request(), realm, "ok@example.com")
    assert not connection.in_atomic_block  # nothing left open
    assert list(LoginAttempt.objects.values_list("username", flat=True)) == ["ok@example.com"]

    monkeypatch.setattr(audit_rows, "insert_row", failing_insert)
    with caplog.at_level(logging.ERROR, logger="keyhouse.auth.audit"):
        record(login_request(), realm, "lost@example.com")  # logged, not raised
    assert len(caplog.records) == 1
    assert LoginAttempt.objects.count() == 1  # the connection still works


def test_prune_deletes_only_entries_past_retention(db: None) -> None:
    old_entry(timedelta(days=90, seconds=1), "expired@example.com")
    old_entry(timedelta(days=89, hours=23), "kept@example.com")
    assert prune_login_attempts(now=NOW) == 1
    assert list(LoginAttempt.objects.values_list("username", flat=True)) == ["kept@example.com"]


def test_prune_follows_the_retention_setting(db: None, settings: Settings) -> None:
    settings.AUDIT_RETENTION_DAYS = 7
    old_entry(timedelta(days=8))
    old_entry(timedelta(days=6))
    assert prune_login_attempts(now=NOW) == 1
    assert LoginAttempt.objects.count() == 1


def test_zero_retention_keeps_everything(db: None, settings: Settings) -> None:
    settings.AUDIT_RETENTION_DAYS = 0
    old_entry(timedelta(days=3650))
    assert prune_login_attempts(now=NOW) == 0
    assert LoginAttempt.objects.count() == 1


def test_prune_limit_deletes_oldest_first(db: None) -> None:
    for days in (300, 200, 100):
        old_entry(timedelta(days=days), f"{days}@example.com")
    assert prune_login_attempts(now=NOW, limit=2) == 2
    assert list(LoginAttempt.objects.values_list("username", flat=True)) == ["100@example.com"]


def test_prune_defaults_to_the_current_time(db: None) -> None:
    LoginAttempt.objects.create(
        timestamp=datetime.now(UTC) - timedelta(days=91), method="password", outcome="failure"
    )
    assert prune_login_attempts() == 1


def test_recording_prunes_when_every_insert_may(realm: Realm, settings: Settings) -> None:
    settings.AUDIT_PRUNE_EVERY = 1
    LoginAttempt.objects.create(
        timestamp=datetime.now(UTC) - timedelta(days=91),
        username="expired@example.com",
        method="password",
        outcome="failure",
    )
    record(login_request(), realm, "new@example.com")
    assert list(LoginAttempt.objects.values_list("username", flat=True)) == ["new@example.com"]


def test_recording_never_prunes_when_disabled(realm: Realm, settings: Settings) -> None:
    settings.AUDIT_PRUNE_EVERY = 0
    LoginAttempt.objects.create(
        timestamp=datetime.now(UTC) - timedelta(days=91), method="password", outcome="failure"
    )
    for _ in range(20):
        record(login_request(), realm, "new@example.com")
    assert LoginAttempt.objects.count() == 21


def test_recording_prunes_about_once_per_setting(
    realm: Realm, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.AUDIT_PRUNE_EVERY = 1000
    draws: list[int] = []

    def randrange(n: int) -> int:
        draws.append(n)
        return 1  # any draw but 0 means "not this time"

    monkeypatch.setattr(audit.random, "randrange", randrange)
    LoginAttempt.objects.create(
        timestamp=datetime.now(UTC) - timedelta(days=91), method="password", outcome="failure"
    )
    record(login_request(), realm, "new@example.com")
    assert draws == [1000]
    assert LoginAttempt.objects.count() == 2


def test_failed_prune_is_logged_and_the_entry_kept(
    realm: Realm,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.AUDIT_PRUNE_EVERY = 1

    def refuse(**kwargs: object) -> int:
        raise DatabaseError("database is locked")

    monkeypatch.setattr(audit, "prune_login_attempts", refuse)
    with caplog.at_level(logging.ERROR, logger="keyhouse.auth.audit"):
        record(login_request(), realm, "new@example.com")
    assert [r.getMessage() for r in caplog.records] == ["Could not prune the login audit trail"]
    assert LoginAttempt.objects.count() == 1


class PerUserRateLimited(RateLimited):
    """Subclasses count too."""


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RateLimited(3.0), ("rate_limited", "RATE_LIMIT_HIT")),
        (PerUserRateLimited(3.0), ("rate_limited", "RATE_LIMIT_HIT")),
        (HashingOverloaded(1.0), ("overloaded", "SERVER_OVERLOADED")),
        (ValueError("boom"), ("failure", "INTERNAL_ERROR")),
        (DatabaseError("gone"), ("failure", "INTERNAL_ERROR")),
    ],
)
def test_outcome_for_exception(exc: Exception, expected: tuple[str, str]) -> None:
    assert outcome_for_exception(exc) == expected
