"""The stores themselves: one semantics, including refunds, in the database and in Redis."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from django.db import connection, connections
from django.test import RequestFactory

from keyhouse.auth.ratelimit import RateLimited, clear, clear_all, hit, hit_all, refund
from keyhouse.auth.ratelimit.stores import HITS_TABLE, SqliteStore, decide, get_store
from tests.e2e.harness import REPO_ROOT, clean_env


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


# --- SqliteStore: a row per hit in a WITHOUT ROWID table (migration 0003) ----------


@pytest.fixture
def sqlite_store(db: None) -> SqliteStore:
    """A fresh store (its own sweep clock), on the test database's connection."""
    if connection.vendor != "sqlite":
        pytest.skip(
            f"SqliteStore and its table exist on SQLite only; this run uses {connection.vendor}"
        )
    return SqliteStore()


def put_hit(key: str, at: float, expires_at: float, tiebreak: int = 0) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {HITS_TABLE} (key, at, tiebreak, expires_at) VALUES (%s, %s, %s, %s)",
            [key, at, tiebreak, expires_at],
        )


def hits_of(key: str) -> list[float]:
    """The key's hit times, newest first (the order ``decide`` reads)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT at FROM {HITS_TABLE} WHERE key = %s ORDER BY at DESC", [key])
        return [at for (at,) in cursor.fetchall()]


def test_sqlite_hit_table_is_without_rowid_with_only_its_key(sqlite_store: SqliteStore) -> None:
    """Recording a hit then writes one b-tree: no rowid table beside it, no extra index."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT type, sql FROM sqlite_master WHERE tbl_name = %s", [HITS_TABLE])
        [(kind, sql)] = cursor.fetchall()  # no CREATE INDEX rows either
        cursor.execute(f"PRAGMA index_list({HITS_TABLE})")
        origins = [row[3] for row in cursor.fetchall()]
    assert kind == "table"
    assert sql.rstrip().endswith("WITHOUT ROWID")
    assert "PRIMARY KEY (key, at, tiebreak)" in sql
    assert origins == ["pk"]  # the primary key is the table itself


def test_per_key_housekeeping_drops_only_that_keys_expired_hits(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now, horizon = time.time(), 100.0
    for i in range(3):
        put_hit("k:mine", now - horizon - 10 - i, now - 10 - i)  # older than the widest window
        put_hit("k:other", now - horizon - 10 - i, now - 10 - i)
    put_hit("k:mine", now - horizon + 5, now + 5)  # old, but still inside the window
    put_hit("k:mine", now - 1, now + horizon - 1)
    sqlite_store._next_sweep = now + 3600  # no sweep in this test
    monkeypatch.setattr(random, "random", lambda: 0.5)  # the 99 % of hits that skip it
    with closing(sqlite_store._cursor()) as cursor:
        sqlite_store._housekeeping(cursor, "k:mine", now, horizon)
    assert len(hits_of("k:mine")) == 5
    monkeypatch.setattr(random, "random", lambda: 0.0)  # the 1 % that clean up
    with closing(sqlite_store._cursor()) as cursor:
        sqlite_store._housekeeping(cursor, "k:mine", now, horizon)
    assert hits_of("k:mine") == [now - 1, now - horizon + 5]
    assert len(hits_of("k:other")) == 3  # another key's: the sweep's job


def test_sweep_drops_every_keys_expired_hits_once_a_minute(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key hit once (a username tried once) is never hit again to clean up after itself."""
    monkeypatch.setattr(random, "random", lambda: 0.5)  # no per-key housekeeping
    now = time.time()
    put_hit("k:once", now - 500, now - 400)
    put_hit("k:twice", now - 500, now - 400)
    put_hit("k:twice", now - 50, now + 50)  # live: must stay
    put_hit("k:later", now - 20, now + 30)  # live now, expired half a minute on
    assert sqlite_store.hit("k:new", [(60, 5)]).limited is False  # first hit: sweep is due
    assert hits_of("k:once") == []
    assert hits_of("k:twice") == [now - 50]
    assert hits_of("k:later") == [now - 20]
    assert len(hits_of("k:new")) == 1
    assert sqlite_store._next_sweep == pytest.approx(time.time() + SqliteStore.SWEEP_EVERY, abs=5)
    with closing(sqlite_store._cursor()) as cursor:  # 31 s on: expired, but no sweep due
        sqlite_store._housekeeping(cursor, "k:new", now + 31, 60.0)
    assert hits_of("k:later") == [now - 20]
    sqlite_store._next_sweep = 0.0  # as if a minute had passed since the last sweep
    with closing(sqlite_store._cursor()) as cursor:
        sqlite_store._housekeeping(cursor, "k:new", now + 31, 60.0)
    assert hits_of("k:later") == []
    assert hits_of("k:twice") == [now - 50]


def test_housekeeping_during_hits_never_drops_live_hits(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With housekeeping on every hit, the limit still counts every hit in its window."""
    monkeypatch.setattr(random, "random", lambda: 0.0)
    key = f"k:{uuid.uuid4().hex}"
    rules = [(1, 100), (3600, 4)]
    for _ in range(4):
        sqlite_store._next_sweep = 0.0
        assert sqlite_store.hit(key, rules).limited is False
    sqlite_store._next_sweep = 0.0
    assert sqlite_store.hit(key, rules).limited is True
    assert len(hits_of(key)) == 4


def test_refund_removes_one_of_two_hits_at_the_same_instant(sqlite_store: SqliteStore) -> None:
    """Two workers may stamp one key with one time.time(); the tiebreak keeps both rows."""
    now = time.time()
    put_hit("k:tie", now, now + 60, tiebreak=1)
    put_hit("k:tie", now, now + 60, tiebreak=2)
    put_hit("k:tie", now - 1, now + 59)
    sqlite_store.refund("k:tie", repr(now))
    assert hits_of("k:tie") == [now, now - 1]
    sqlite_store.refund("k:tie", repr(now))
    assert hits_of("k:tie") == [now - 1]
    sqlite_store.refund("k:tie", repr(now))  # nothing left at that time: nothing else goes
    assert hits_of("k:tie") == [now - 1]


def test_refund_takes_back_the_recorded_hit(sqlite_store: SqliteStore) -> None:
    key = f"k:{uuid.uuid4().hex}"
    first = sqlite_store.hit(key, [(60, 5)])
    second = sqlite_store.hit(key, [(60, 5)])
    assert first.recorded is not None and second.recorded is not None
    sqlite_store.refund(key, first.recorded)
    assert hits_of(key) == [float(second.recorded)]


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param([(10, 2), (60, 3)], id="wide-rule-waits-longest"),
        pytest.param([(10, 2), (60, 10)], id="only-narrow-rule-refuses"),
        pytest.param([(5, 1), (10, 2), (60, 3)], id="three-rules"),
    ],
)
def test_refusal_wait_is_the_widest_rules_as_decide_says(
    sqlite_store: SqliteStore, rules: list[tuple[int, int]]
) -> None:
    key = f"k:{uuid.uuid4().hex}"
    start = time.time()
    for age in (1.0, 5.0, 8.0):
        put_hit(key, start - age, start - age + 60)
    log = hits_of(key)
    before = time.time()
    answer = sqlite_store.hit(key, rules)
    after = time.time()
    assert answer.limited and answer.remaining == 0 and answer.recorded is None
    # decide() on the same rows, at the earliest and latest instants the store could use
    assert decide(log, rules, after)[1] <= answer.secs_to_freedom <= decide(log, rules, before)[1]
    assert hits_of(key) == log  # the refusal is not recorded


def test_sqlite_hit_survives_a_concurrent_clear(tmp_path: Path) -> None:
    """A login's clear() between a hit's insert and its count left no row: a TypeError (500).

    Threads hammer hit and clear on one key of a real SQLite file, each thread with
    its own connection, as gunicorn's threads do (issue #12, B4).
    """
    env = clean_env(KEYHOUSE_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run(
        [sys.executable, "-m", "tests.auth.sqlite_store_hammer", "3"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["hits"] > 1000 and report["clears"] > 1000, report  # the race was exercised
    assert report["errors"] == 0, report
    assert report["answers_ok"], report


# --- Several keys in one call (a login's IP and username: hit_all) ---------------


def test_hit_all_counts_every_key_in_one_call(settings, ratelimit_store: str) -> None:  # type: ignore[no-untyped-def]
    settings.RATE_LIMITING_RULES = {"ip": [(60, 2)], "name": [(1, 100), (60, 3)]}
    ip, name = uuid.uuid4().hex, uuid.uuid4().hex
    results = hit_all(None, [("ip", ip), ("name", name)])
    assert [(r.domain, r.remaining, r.max_calls) for r in results] == [("ip", 1, 2), ("name", 2, 3)]
    # The first key's last allowed hit does not count against the second key's
    # (the refusals are decided before any hit goes in).
    results = hit_all(None, [("ip", ip), ("name", name)])
    assert [r.remaining for r in results] == [0, 1]
    assert hit(None, "name", name).remaining == 0  # three hits on the name, as counted


def test_hit_all_stops_at_the_first_refused_key(settings, ratelimit_store: str) -> None:  # type: ignore[no-untyped-def]
    settings.RATE_LIMITING_RULES = {"ip": [(60, 1)], "name": [(60, 5)]}
    ip, name = uuid.uuid4().hex, uuid.uuid4().hex
    hit(None, "ip", ip)
    request = RequestFactory().get("/")
    with pytest.raises(RateLimited):
        hit_all(request, [("ip", ip), ("name", name)])
    assert hit(None, "name", name).remaining == 4  # the refused IP's attempt never reached it
    # The other way round: the name refused, the IP before it stays counted.
    settings.RATE_LIMITING_RULES = {"ip": [(60, 5)], "name": [(60, 1)]}
    ip, name = uuid.uuid4().hex, uuid.uuid4().hex
    hit(None, "name", name)
    with pytest.raises(RateLimited):
        hit_all(None, [("ip", ip), ("name", name)])
    assert hit(None, "ip", ip).remaining == 3


def test_refund_after_hit_all_gives_both_back(settings, ratelimit_store: str) -> None:  # type: ignore[no-untyped-def]
    settings.RATE_LIMITING_RULES = {"ip": [(60, 1)], "name": [(60, 1)]}
    ip, name = uuid.uuid4().hex, uuid.uuid4().hex
    request = RequestFactory().get("/")
    hit_all(request, [("ip", ip), ("name", name)])
    refund(request, {"ip", "name"})
    hit_all(None, [("ip", ip), ("name", name)])  # both free again


def test_clear_all_forgets_every_entity(settings, ratelimit_store: str) -> None:  # type: ignore[no-untyped-def]
    settings.RATE_LIMITING_RULES = {"name": [(60, 1)]}
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    hit_all(None, [("name", a), ("name", b)])
    clear_all("name", {a, b})
    hit_all(None, [("name", a), ("name", b)])
