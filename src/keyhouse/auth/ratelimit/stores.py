"""Where hit logs live: the database (default) or Redis (``KEYHOUSE_REDIS_URL``).

On SQLite (the embedded default) hits are rows, checked and recorded by one
statement; on PostgreSQL without Redis, one row per key holds its log under a row
lock. Every store implements one operation atomically — check every rule, and record
the hit only if none refuses it — so the limit holds across worker processes
and across servers sharing the store.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from keyhouse.redis_client import guarded

Rule = tuple[int, int]


@dataclass(frozen=True)
class StoreAnswer:
    limited: bool
    # Seconds until the hit would be allowed (limited), else until the oldest
    # hit in the last rule's window expires.
    secs_to_freedom: float
    # Hits left in the last rule's window after this one (0 when limited).
    remaining: int
    # Identifies the recorded hit, so it can be refunded (None when limited).
    recorded: str | None = None


class RateLimitStore(Protocol):
    def hit(self, key: str, rules: list[Rule]) -> StoreAnswer: ...

    def clear(self, key: str) -> None: ...

    def refund(self, key: str, recorded: str) -> None: ...


def decide(log: list[float], rules: list[Rule], now: float) -> tuple[bool, float]:
    """Zulip's check on a newest-first log: is this hit refused, and for how long?"""
    wait = 0.0
    for window, n in rules:
        if len(log) >= n and log[n - 1] + window > now:
            wait = max(wait, log[n - 1] + window - now)
    return wait > 0, wait


def window_state(log: list[float], rules: list[Rule], now: float) -> tuple[int, float]:
    """Hits left and seconds to reset for the last (widest) rule, as Zulip's headers use."""
    window, n = rules[-1]
    live = [t for t in log if t > now - window]
    reset = (live[-1] + window - now) if live else 0.0
    return max(0, n - len(live)), reset


def _row_key(key: str) -> str:
    """``key`` as the bucket column can hold it: long or NUL-bearing keys are hashed.

    An LDAP username may be thousands of characters (MAX_PARAM_CHARS), and
    PostgreSQL, unlike SQLite, refuses a value longer than the column and any NUL.
    """
    from keyhouse.auth.models import RateLimitBucket

    limit = RateLimitBucket._meta.get_field("key").max_length or 300
    if len(key) <= limit and "\x00" not in key:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{key[:200].replace(chr(0), '?')}:sha256:{digest}"


class DatabaseStore:
    """One row per key holding its newest-first log; the row lock serializes hits."""

    def hit(self, key: str, rules: list[Rule]) -> StoreAnswer:
        from keyhouse.auth.models import RateLimitBucket

        key = _row_key(key)
        keep = max(n for _, n in rules)
        horizon = max(w for w, _ in rules)
        with transaction.atomic():
            bucket = RateLimitBucket.objects.select_for_update().filter(key=key).first()
            if bucket is None:
                try:
                    with transaction.atomic():
                        bucket = RateLimitBucket.objects.create(key=key, log=[], expires_at=0)
                except IntegrityError:  # created concurrently; now lock it
                    bucket = RateLimitBucket.objects.select_for_update().get(key=key)
            now = time.time()
            log = [t for t in bucket.log if t > now - horizon]
            limited, wait = decide(log, rules, now)
            if not limited:
                log = [now, *log][:keep]
                bucket.log = log
                bucket.expires_at = now + horizon
                bucket.save(update_fields=["log", "expires_at"])
        if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
            RateLimitBucket.objects.filter(expires_at__lt=now).delete()
        if limited:
            return StoreAnswer(True, wait, 0)
        remaining, reset = window_state(log, rules, now)
        return StoreAnswer(False, reset, remaining, repr(now))

    def clear(self, key: str) -> None:
        from keyhouse.auth.models import RateLimitBucket

        RateLimitBucket.objects.filter(key=_row_key(key)).delete()

    def refund(self, key: str, recorded: str) -> None:
        from keyhouse.auth.models import RateLimitBucket

        with transaction.atomic():
            bucket = RateLimitBucket.objects.select_for_update().filter(key=_row_key(key)).first()
            if bucket is not None and float(recorded) in bucket.log:
                bucket.log.remove(float(recorded))
                bucket.save(update_fields=["log"])


class SqliteStore:
    """A row per hit; the check and the record are one ``INSERT … SELECT``.

    SQLite runs one writer at a time for the whole database, so a single
    statement is atomic across processes. It holds the write lock only while
    SQLite itself runs it, never across Python code: a read-modify-write done from
    Python would hold the lock while its thread waits for the GIL, and every other
    worker's writers would sleep in SQLite's busy handler (the DatabaseStore's long
    tails). No ``RETURNING`` either: a statement that returns rows keeps its write
    transaction open until Python has fetched them. Raw SQL because the ORM cannot
    say "insert if the n-th newest hit is old enough" in one statement; the table
    (migration 0003) is keyed by (key, time), its only index.

    Every API-key request passes here, so the statements go straight to the
    sqlite3 connection under Django's (same connection, same transaction): Django's
    cursor wrapper costs as much CPU as SQLite's work on these indexed statements.

    The headers' figures (hits left, seconds to reset) come from a second
    statement, so they describe the key as it is just after the hit: a concurrent
    ``clear()`` in between leaves an empty window, answered as such.

    Housekeeping: a key's expired hits go with 1 % of its hits; other keys' expired
    hits (a username tried once, say) go in a sweep at most once a minute per
    process.
    """

    SWEEP_EVERY = 60.0

    def __init__(self) -> None:
        self._next_sweep = 0.0

    @staticmethod
    def _cursor() -> sqlite3.Cursor:
        connection.ensure_connection()
        return connection.connection.cursor()

    def hit(self, key: str, rules: list[Rule]) -> StoreAnswer:
        key = _row_key(key)
        now = time.time()
        horizon = max(w for w, _ in rules)
        params: list[object] = [key, now, random.getrandbits(62), now + horizon]
        for window, n in rules:
            params += [key, n - 1, now - window]
        with closing(self._cursor()) as cursor:
            cursor.execute(_sqlite_hit_sql(len(rules)), params)
            if cursor.rowcount != 1:
                return StoreAnswer(True, self._wait(cursor, key, rules, now), 0)
            window, n = rules[-1]
            cursor.execute(
                f"SELECT count(*), min(at) FROM {HITS_TABLE} WHERE key = ? AND at > ?",
                [key, now - window],
            )
            live, oldest = cursor.fetchone()
            self._housekeeping(cursor, key, now, horizon)
        if oldest is None:
            # A clear() (a successful login) ran between the two statements and
            # took this hit with the rest: the window is empty, as after a clear.
            # Reading the state as it is now keeps the write lock off Python code.
            return StoreAnswer(False, 0.0, n, repr(now))
        return StoreAnswer(False, oldest + window - now, max(0, n - live), repr(now))

    def _housekeeping(self, cursor: sqlite3.Cursor, key: str, now: float, horizon: float) -> None:
        if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
            cursor.execute(
                f"DELETE FROM {HITS_TABLE} WHERE key = ? AND at < ?", [key, now - horizon]
            )
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_EVERY
            cursor.execute(f"DELETE FROM {HITS_TABLE} WHERE expires_at < ?", [now])

    @staticmethod
    def _wait(cursor: sqlite3.Cursor, key: str, rules: list[Rule], now: float) -> float:
        """Seconds until the refused hit would be allowed: the widest refusal (``decide``)."""
        wait = 0.0
        for window, n in rules:
            cursor.execute(
                f"SELECT at FROM {HITS_TABLE} WHERE key = ? ORDER BY at DESC LIMIT 1 OFFSET ?",
                [key, n - 1],
            )
            row = cursor.fetchone()
            if row is not None and row[0] + window > now:
                wait = max(wait, row[0] + window - now)
        return wait

    def clear(self, key: str) -> None:
        with closing(self._cursor()) as cursor:
            cursor.execute(f"DELETE FROM {HITS_TABLE} WHERE key = ?", [_row_key(key)])

    def refund(self, key: str, recorded: str) -> None:
        with closing(self._cursor()) as cursor:
            cursor.execute(
                f"DELETE FROM {HITS_TABLE} WHERE (key, at, tiebreak) IN "
                f"(SELECT key, at, tiebreak FROM {HITS_TABLE} WHERE key = ? AND at = ? LIMIT 1)",
                [_row_key(key), float(recorded)],
            )


HITS_TABLE = "keyhouse_ratelimit_hit"  # made by migration 0003 (SQLite only)


@lru_cache(maxsize=16)
def _sqlite_hit_sql(nrules: int) -> str:
    """Insert the hit unless, for some rule, the n-th newest hit is inside its window."""
    refused_by_rule = (
        f"EXISTS (SELECT 1 FROM (SELECT at FROM {HITS_TABLE} WHERE key = ?"
        " ORDER BY at DESC LIMIT 1 OFFSET ?) WHERE at > ?)"
    )
    conditions = " OR ".join([refused_by_rule] * nrules)
    return (
        f"INSERT INTO {HITS_TABLE} (key, at, tiebreak, expires_at)"
        f" SELECT ?, ?, ?, ? WHERE NOT ({conditions})"
    )


# The whole check-and-record runs inside Redis, atomically, on Redis's clock
# (one clock for every server). The log is a list, newest first, as Zulip's.
# Floats go back as strings: Lua numbers become integers in replies.
_HIT_SCRIPT = """
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local nrules = (#ARGV) / 2
local keep, horizon, wait = 0, 0, 0
for i = 1, nrules do
  local window, n = tonumber(ARGV[2*i-1]), tonumber(ARGV[2*i])
  if n > keep then keep = n end
  if window > horizon then horizon = window end
  local nth = redis.call('LINDEX', key, n - 1)
  if nth and tonumber(nth) + window > now then
    wait = math.max(wait, tonumber(nth) + window - now)
  end
end
if wait > 0 then
  return {1, tostring(wait), 0}
end
local stamp = string.format('%.6f', now)
redis.call('LPUSH', key, stamp)
redis.call('LTRIM', key, 0, keep - 1)
redis.call('EXPIRE', key, math.ceil(horizon))
local lwindow, ln = tonumber(ARGV[#ARGV-1]), tonumber(ARGV[#ARGV])
local live, oldest = 0, now
for _, v in ipairs(redis.call('LRANGE', key, 0, -1)) do
  local ts = tonumber(v)
  if ts > now - lwindow then live = live + 1; oldest = ts end
end
return {0, tostring(oldest + lwindow - now), math.max(0, ln - live), stamp}
"""


class RedisStore:
    """Hits in Redis lists, checked and recorded by one Lua script.

    Every call goes through the Redis breaker (redis_client.py): with Redis down or
    hung the limit cannot be checked, so the request fails closed with a fast 503
    (``DependencyUnavailable``) rather than going unlimited or waiting.
    """

    def __init__(self, url: str) -> None:
        import redis

        from keyhouse.redis_client import connection_options

        self._redis = redis.Redis.from_url(url, **connection_options())
        self._script = self._redis.register_script(_HIT_SCRIPT)
        self._prefix = "keyhouse:ratelimit:"
        self._url = url

    def hit(self, key: str, rules: list[Rule]) -> StoreAnswer:
        args = [x for rule in rules for x in rule]
        with guarded(self._url):
            limited, secs, remaining, *stamp = self._script(keys=[self._prefix + key], args=args)
        recorded = stamp[0].decode() if stamp else None
        return StoreAnswer(bool(int(limited)), float(secs), int(remaining), recorded)

    def clear(self, key: str) -> None:
        with guarded(self._url):
            self._redis.delete(self._prefix + key)

    def refund(self, key: str, recorded: str) -> None:
        with guarded(self._url):
            self._redis.lrem(self._prefix + key, 1, recorded)


@lru_cache(maxsize=4)
def _store_for(redis_url: str, vendor: str) -> RateLimitStore:
    if redis_url:
        return RedisStore(redis_url)
    return SqliteStore() if vendor == "sqlite" else DatabaseStore()


def get_store() -> RateLimitStore:
    return _store_for(settings.REDIS_URL, connection.vendor)
