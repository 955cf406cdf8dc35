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
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction

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


# One key to hit and the rules it is checked against.
Hit = tuple[str, list[Rule]]


class RateLimitStore(Protocol):
    """Every store answers ``hit_many`` in one round trip (one statement, one script).

    ``hit_many`` checks and records the keys in order and stops at the first refusal:
    the answers are one per key up to and including a refused one, so keys before
    it stay counted and keys after it are not touched, exactly as separate ``hit``
    calls that stop at the first ``RateLimited`` (a login's IP, then its username).
    """

    def hit(self, key: str, rules: list[Rule]) -> StoreAnswer: ...

    def hit_many(self, hits: Sequence[Hit]) -> list[StoreAnswer]: ...

    def clear(self, key: str) -> None: ...

    def clear_many(self, keys: Collection[str]) -> None: ...

    def refund(self, key: str, recorded: str) -> None: ...

    def joint_transaction(self) -> AbstractContextManager[object]:
        """Where the store and the audit trail can commit together (the database store
        on PostgreSQL), a transaction for both; elsewhere nothing."""
        ...


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
    """One row per key holding its newest-first log; the row lock serializes hits.

    ``hit_many`` locks and updates its keys in one transaction, and the sign-in
    pipeline writes the login's audit entry in the same one (``joint_transaction``):
    one commit for the limits and the audit trail.
    """

    def hit(self, key: str, rules: list[Rule]) -> StoreAnswer:
        return self.hit_many([(key, rules)])[0]

    def hit_many(self, hits: Sequence[Hit]) -> list[StoreAnswer]:
        answers: list[StoreAnswer] = []
        # Inside the pipeline's joint transaction no savepoint of its own: a failed
        # hit fails the login (a 503) and its transaction with it.
        with transaction.atomic(savepoint=False):
            for key, rules in hits:
                answers.append(self._hit_locked(_row_key(key), rules))
                if answers[-1].limited:
                    break
        if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
            from keyhouse.auth.models import RateLimitBucket

            RateLimitBucket.objects.filter(expires_at__lt=time.time()).delete()
        return answers

    @staticmethod
    def _hit_locked(key: str, rules: list[Rule]) -> StoreAnswer:
        from keyhouse.auth.models import RateLimitBucket

        keep = max(n for _, n in rules)
        horizon = max(w for w, _ in rules)
        bucket = RateLimitBucket.objects.select_for_update().filter(key=key).first()
        if bucket is None:
            try:
                with transaction.atomic():
                    bucket = RateLimitBucket.objects.create(key=key, log=[], expires_at=0)
            except IntegrityError:  # created concurrently; now lock it
                bucket = RateLimitBucket.objects.select_for_update().get(key=key)
        now = time.time()  # once the row is ours: the log stays newest first
        log = [t for t in bucket.log if t > now - horizon]
        limited, wait = decide(log, rules, now)
        if limited:
            return StoreAnswer(True, wait, 0)
        log = [now, *log][:keep]
        bucket.log = log
        bucket.expires_at = now + horizon
        bucket.save(update_fields=["log", "expires_at"])
        remaining, reset = window_state(log, rules, now)
        return StoreAnswer(False, reset, remaining, repr(now))

    def clear(self, key: str) -> None:
        self.clear_many([key])

    def clear_many(self, keys: Collection[str]) -> None:
        from keyhouse.auth.models import RateLimitBucket

        RateLimitBucket.objects.filter(key__in=[_row_key(k) for k in keys]).delete()

    def refund(self, key: str, recorded: str) -> None:
        from keyhouse.auth.models import RateLimitBucket

        with transaction.atomic():
            bucket = RateLimitBucket.objects.select_for_update().filter(key=_row_key(key)).first()
            if bucket is not None and float(recorded) in bucket.log:
                bucket.log.remove(float(recorded))
                bucket.save(update_fields=["log"])

    def joint_transaction(self) -> AbstractContextManager[object]:
        return transaction.atomic()


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
        wrapper = connections[DEFAULT_DB_ALIAS]  # once: each use of the proxy looks it up
        wrapper.ensure_connection()
        return wrapper.connection.cursor()

    def hit(self, key: str, rules: list[Rule]) -> StoreAnswer:
        """One key (every API-key request): the statements of ``hit_many``, without its
        bookkeeping for several keys."""
        key = _row_key(key)
        now = time.time()
        horizon = max(w for w, _ in rules)
        params: list[object] = [key, now, random.getrandbits(62), now + horizon]
        for window, n in rules:
            params += [key, n - 1, now - window]
        with closing(self._cursor()) as cursor:
            cursor.execute(_sqlite_hit_sql((len(rules),)), params)
            if cursor.rowcount != 1:
                return StoreAnswer(True, self._wait(cursor, key, rules, now), 0)
            window, n = rules[-1]
            cursor.execute(_sqlite_state_sql(1), [key, now - window])
            _, live, oldest = cursor.fetchone()
            self._housekeeping(cursor, key, now, horizon)
        return self._answer(live, oldest, window, n, now)

    @staticmethod
    def _answer(live: int, oldest: float | None, window: int, n: int, now: float) -> StoreAnswer:
        if oldest is None:
            # A clear() (a successful login) ran between the two statements and
            # took this hit with the rest: the window is empty, as after a clear.
            # Reading the state as it is now keeps the write lock off Python code.
            return StoreAnswer(False, 0.0, n, repr(now))
        return StoreAnswer(False, oldest + window - now, max(0, n - live), repr(now))

    def hit_many(self, hits: Sequence[Hit]) -> list[StoreAnswer]:
        """One ``INSERT … SELECT`` records every hit no rule refuses, stopping at the first
        refused key; one ``SELECT`` then reads the headers' figures for all of them."""
        if len(hits) == 1:
            return [self.hit(*hits[0])]
        keys = [_row_key(key) for key, _ in hits]
        now = time.time()
        checks: list[object] = []
        rows: list[object] = []
        for key, (_, rules) in zip(keys, hits, strict=True):
            for window, n in rules:
                checks += [key, n - 1, now - window]
            rows += [key, now, random.getrandbits(62), now + max(w for w, _ in rules)]
        params = checks + rows  # as the SQL has them
        with closing(self._cursor()) as cursor:
            cursor.execute(_sqlite_hit_sql(tuple(len(rules) for _, rules in hits)), params)
            recorded = cursor.rowcount
            answers = self._recorded_answers(cursor, keys[:recorded], hits, now)
            if recorded < len(hits):
                key, rules = keys[recorded], hits[recorded][1]
                answers.append(StoreAnswer(True, self._wait(cursor, key, rules, now), 0))
            for key, (_, rules) in zip(keys[:recorded], hits, strict=False):
                self._housekeeping(cursor, key, now, max(w for w, _ in rules))
        return answers

    @staticmethod
    def _recorded_answers(
        cursor: sqlite3.Cursor, keys: list[str], hits: Sequence[Hit], now: float
    ) -> list[StoreAnswer]:
        """Hits left and seconds to reset in each key's widest window, just after the hit."""
        if not keys:
            return []
        params: list[object] = []
        for key, (_, rules) in zip(keys, hits, strict=False):
            params += [key, now - rules[-1][0]]
        cursor.execute(_sqlite_state_sql(len(keys)), params)
        state = {i: (live, oldest) for i, live, oldest in cursor.fetchall()}
        answers = []
        for i, (_, rules) in enumerate(hits[: len(keys)]):
            window, n = rules[-1]
            answers.append(SqliteStore._answer(*state[i], window, n, now))
        return answers

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
        self.clear_many([key])

    def clear_many(self, keys: Collection[str]) -> None:
        rows = sorted({_row_key(key) for key in keys})
        if not rows:
            return
        marks = ", ".join("?" * len(rows))
        with closing(self._cursor()) as cursor:
            cursor.execute(f"DELETE FROM {HITS_TABLE} WHERE key IN ({marks})", rows)

    def joint_transaction(self) -> AbstractContextManager[object]:
        # Never a transaction here: it would hold SQLite's database-wide write lock
        # from its first write to COMMIT, across Python code waiting for the GIL.
        return nullcontext()

    def refund(self, key: str, recorded: str) -> None:
        with closing(self._cursor()) as cursor:
            cursor.execute(
                f"DELETE FROM {HITS_TABLE} WHERE (key, at, tiebreak) IN "
                f"(SELECT key, at, tiebreak FROM {HITS_TABLE} WHERE key = ? AND at = ? LIMIT 1)",
                [_row_key(key), float(recorded)],
            )


HITS_TABLE = "keyhouse_ratelimit_hit"  # made by migration 0003 (SQLite only)


@lru_cache(maxsize=16)
def _sqlite_hit_sql(rules_per_key: tuple[int, ...]) -> str:
    """Insert each key's hit unless, for some rule of it or of a key before it, the n-th
    newest hit is inside the rule's window.

    The refusals are computed once, before any row goes in (a MATERIALIZED common table
    expression; SQLite also buffers an INSERT whose SELECT reads its own table): a key's
    own new hit never counts against the key after it. Parameters: every key's rules
    (key, n - 1, now - window), then every key's row (key, at, tiebreak, expires_at);
    for a single key (every API-key request: no CTE), its row first, then its rules.
    """
    refused_by_rule = (
        f"EXISTS (SELECT 1 FROM (SELECT at FROM {HITS_TABLE} WHERE key = ?"
        " ORDER BY at DESC LIMIT 1 OFFSET ?) WHERE at > ?)"
    )
    if len(rules_per_key) == 1:
        conditions = " OR ".join([refused_by_rule] * rules_per_key[0])
        return (
            f"INSERT INTO {HITS_TABLE} (key, at, tiebreak, expires_at)"
            f" SELECT ?, ?, ?, ? WHERE NOT ({conditions})"
        )
    refusals = " UNION ALL ".join(
        f"SELECT {i} AS i WHERE " + " OR ".join([refused_by_rule] * nrules)
        for i, nrules in enumerate(rules_per_key)
    )
    rows = " UNION ALL ".join(
        f"SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM refused WHERE i <= {i})"
        for i in range(len(rules_per_key))
    )
    # INSERT first: Python's sqlite3 reports a rowcount only for statements that
    # start with INSERT, UPDATE, DELETE or REPLACE.
    return (
        f"INSERT INTO {HITS_TABLE} (key, at, tiebreak, expires_at)"
        f" WITH refused(i) AS MATERIALIZED ({refusals}) {rows}"
    )


@lru_cache(maxsize=16)
def _sqlite_state_sql(nkeys: int) -> str:
    """(index, live hits, oldest live hit) for each (key, window start) parameter pair."""
    return " UNION ALL ".join(
        f"SELECT {i}, count(*), min(at) FROM {HITS_TABLE} WHERE key = ? AND at > ?"
        for i in range(nkeys)
    )


# The whole check-and-record runs inside Redis, atomically, on Redis's clock
# (one clock for every server). A log is a list, newest first, as Zulip's. The keys
# are checked and recorded in order, and the first refused one ends the script.
# ARGV: for each key, its number of rules, then (window, n) for each rule, widest
# last. The reply: four items per key answered (limited, seconds, remaining,
# stamp). Floats go back as strings: Lua numbers become integers in replies.
_HIT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%.6f', now)
local reply = {}
local a = 1
for k = 1, #KEYS do
  local key = KEYS[k]
  local nrules = tonumber(ARGV[a])
  local first = a + 1
  a = first + 2 * nrules
  local keep, horizon, wait = 0, 0, 0
  for i = 0, nrules - 1 do
    local window, n = tonumber(ARGV[first + 2*i]), tonumber(ARGV[first + 2*i + 1])
    if n > keep then keep = n end
    if window > horizon then horizon = window end
    local nth = redis.call('LINDEX', key, n - 1)
    if nth and tonumber(nth) + window > now then
      wait = math.max(wait, tonumber(nth) + window - now)
    end
  end
  if wait > 0 then
    table.insert(reply, 1); table.insert(reply, tostring(wait))
    table.insert(reply, 0); table.insert(reply, '')
    return reply
  end
  redis.call('LPUSH', key, stamp)
  redis.call('LTRIM', key, 0, keep - 1)
  redis.call('EXPIRE', key, math.ceil(horizon))
  local lwindow, ln = tonumber(ARGV[a - 2]), tonumber(ARGV[a - 1])
  local live, oldest = 0, now
  for _, v in ipairs(redis.call('LRANGE', key, 0, -1)) do
    local ts = tonumber(v)
    if ts > now - lwindow then live = live + 1; oldest = ts end
  end
  table.insert(reply, 0); table.insert(reply, tostring(oldest + lwindow - now))
  table.insert(reply, math.max(0, ln - live)); table.insert(reply, stamp)
end
return reply
"""


class RedisStore:
    """Hits in Redis lists, checked and recorded by one Lua script (every key of a
    login in one call: one round trip).

    Every call goes through the Redis breaker (redis_client.py): with Redis down or
    hung the limit cannot be checked, so the request fails closed with a fast 503
    (``DependencyUnavailable``) rather than going unlimited or waiting.
    keyhouse talks to one Redis (no cluster), so one script may touch several keys.
    """

    def __init__(self, url: str) -> None:
        import redis

        from keyhouse.redis_client import connection_options

        self._redis = redis.Redis.from_url(url, **connection_options())
        self._script = self._redis.register_script(_HIT_SCRIPT)
        self._prefix = "keyhouse:ratelimit:"
        self._url = url

    def hit(self, key: str, rules: list[Rule]) -> StoreAnswer:
        return self.hit_many([(key, rules)])[0]

    def hit_many(self, hits: Sequence[Hit]) -> list[StoreAnswer]:
        args: list[int] = []
        for _, rules in hits:
            args.append(len(rules))
            args += [x for rule in rules for x in rule]
        with guarded(self._url):
            reply = self._script(keys=[self._prefix + key for key, _ in hits], args=args)
        answers = []
        for i in range(0, len(reply), 4):
            limited, secs, remaining, stamp = reply[i : i + 4]
            answers.append(
                StoreAnswer(bool(int(limited)), float(secs), int(remaining), stamp.decode() or None)
            )
        return answers

    def clear(self, key: str) -> None:
        self.clear_many([key])

    def clear_many(self, keys: Collection[str]) -> None:
        if not keys:
            return
        with guarded(self._url):
            self._redis.delete(*(self._prefix + key for key in keys))

    def refund(self, key: str, recorded: str) -> None:
        with guarded(self._url):
            self._redis.lrem(self._prefix + key, 1, recorded)

    def joint_transaction(self) -> AbstractContextManager[object]:
        return nullcontext()  # Redis and the database commit apart


@lru_cache(maxsize=4)
def _store_for(redis_url: str, vendor: str) -> RateLimitStore:
    if redis_url:
        return RedisStore(redis_url)
    return SqliteStore() if vendor == "sqlite" else DatabaseStore()


def get_store() -> RateLimitStore:
    return _store_for(settings.REDIS_URL, connections[DEFAULT_DB_ALIAS].vendor)
