"""The stores themselves: one semantics, including refunds, in the database and in Redis."""

from __future__ import annotations

import uuid

import pytest
from django.test import RequestFactory

from keyhouse.auth.ratelimit import RateLimited, hit, refund
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
    assert type(store).__name__ == {"database": "DatabaseStore", "redis": "RedisStore"}[
        ratelimit_store
    ]


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
