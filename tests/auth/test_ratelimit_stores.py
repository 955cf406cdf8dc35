"""The stores themselves: one semantics, including refunds, in the database and in Redis."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.test import RequestFactory

from keyhouse.auth.ratelimit import RateLimited, clear, hit, refund
from keyhouse.auth.ratelimit.stores import decide, get_store


def test_decide_is_zulips_rule() -> None:
    now = 1000.0
    log = [999.0, 995.0, 980.0]  # newest first
    assert decide(log, [(10, 2)], now) == (True, 5.0)  # 2nd newest + 10 > now
    assert decide(log, [(10, 3)], now) == (False, 0.0)  # 3rd newest is 20 s old
    assert decide(log, [(10, 4)], now) == (False, 0.0)  # fewer hits than the rule allows
    limited, wait = decide(log, [(10, 3), (30, 3)], now)
    assert limited and wait == 10.0  # the widest refusal wins


def test_refusals_are_not_recorded(settings, ratelimit_store: str) -> None:  # type: ignore[no-untyped-def]
    settings.RATE_LIMITING_RULES = {"test": [(60, 2)]}
    entity = uuid.uuid4().hex
    hit(None, "test", entity)
    hit(None, "test", entity)
    for _ in range(3):
        with pytest.raises(RateLimited):
            hit(None, "test", entity)
    store = get_store()
    assert (
        type(store).__name__
        == {
            "database": "SqliteStore" if connection.vendor == "sqlite" else "DatabaseStore",
            "redis": "RedisStore",
        }[ratelimit_store]
    )


def test_refund_gives_the_hit_back(settings, ratelimit_store: str) -> None:  # type: ignore[no-untyped-def]
    settings.RATE_LIMITING_RULES = {"test": [(60, 2)], "other": [(60, 1)]}
    entity = uuid.uuid4().hex
    request = RequestFactory().get("/")
    hit(request, "test", entity)
    hit(request, "other", entity)
    refund(request, {"test"})
    hit(None, "test", entity)  # refunded: the log is empty, so two hits fit …
    hit(None, "test", entity)
    with pytest.raises(RateLimited):
        hit(None, "test", entity)  # … and a third does not
    with pytest.raises(RateLimited):
        hit(None, "other", entity)  # not refunded: still counted


def test_remaining_counts_down(settings, ratelimit_store: str) -> None:  # type: ignore[no-untyped-def]
    settings.RATE_LIMITING_RULES = {"test": [(1, 100), (60, 3)]}
    entity = uuid.uuid4().hex
    assert [hit(None, "test", entity).remaining for _ in range(3)] == [2, 1, 0]


@pytest.mark.django_db(transaction=True)
def test_database_store_is_atomic_across_connections(settings) -> None:  # type: ignore[no-untyped-def]
    """Ten threads (ten connections) at once on a new key: exactly the limit gets through.

    Covers the row creation race too: all find no row, one inserts, the others
    wait on the unique key, then lock the row (SELECT … FOR UPDATE on PostgreSQL).
    """
    if connection.vendor == "sqlite":
        pytest.skip(
            "SQLite's in-memory test database is shared between threads through a shared"
            " cache, whose table locks ignore the busy timeout; the e2e test"
            " test_abuse_across_workers covers SQLite with a real file and real workers"
        )
    settings.REDIS_URL = ""
    settings.RATE_LIMITING_RULES = {"test": [(60, 5)]}
    entity = uuid.uuid4().hex
    start = threading.Barrier(10)

    def attempt(_: int) -> str:
        start.wait()
        try:
            hit(None, "test", entity)
            return "allowed"
        except RateLimited:
            return "refused"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = Counter(pool.map(attempt, range(10)))
    assert outcomes == {"allowed": 5, "refused": 5}


def test_long_keys_fit_the_database_column(settings, ratelimit_store: str) -> None:  # type: ignore[no-untyped-def]
    """An LDAP username may be thousands of characters; PostgreSQL refuses over-long values."""
    settings.RATE_LIMITING_RULES = {"test": [(60, 1)]}
    long_entity, other = "x" * 4000, "x" * 3999 + "y"
    hit(None, "test", long_entity)
    with pytest.raises(RateLimited):
        hit(None, "test", long_entity)
    hit(None, "test", other)  # same first 200 characters, still its own bucket
    clear("test", long_entity)
    hit(None, "test", long_entity)
