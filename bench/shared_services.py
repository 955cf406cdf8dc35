"""The fleet stage's shared components, throwaway, and what a load costs each of them.

- `throwaway_database`: a PostgreSQL database of the bench's own on the
  machine's server (127.0.0.1:5432, user postgres, trust auth), dropped on the
  way out whatever happened (``WITH (FORCE)`` ends servers still connected);
- `RedisServer`: a `redis-server` of the bench's own on a free port, nothing
  saved to disk, stopped on the way out (never the shared 6379);
- `Ledger`: what a stretch of load cost PostgreSQL and Redis: statements
  (transactions) and rows from `pg_stat_database`, commands from Redis's
  `INFO commandstats`, CPU of both, read between loads.

pg_stat_statements is not loaded on these machines, and keyhouse's /metrics
counts no statements, so PostgreSQL's cost is counted per database: every
statement Django runs outside `atomic()` is its own transaction (autocommit),
so `xact_commit + xact_rollback` is the statement count, less what runs inside
one transaction. The bench reads these from the `postgres` database, so its
own queries are not in the counts.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from procstat import cpu_by_pid
from psycopg import sql
from servers import HOST, free_port

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# PostgreSQL 15 backends publish their counters at most once a second while busy,
# and an idle backend with counts pending publishes them 10 s later
# (PGSTAT_IDLE_INTERVAL): a reading is only complete that long after the load.
PG_STATS_SETTLE_SECONDS = 11.5
PG_COUNTERS = (
    "xact_commit",
    "xact_rollback",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
)


@dataclass(frozen=True)
class Database:
    name: str

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{self.name}"


def _admin(statement: sql.Composed) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


def create_database(name: str, template: str | None = None) -> Database:
    """A new database, empty or a copy of ``template`` (which nobody may be connected to)."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    _admin(statement)
    return Database(name)


def drop_database(db: Database) -> None:
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name)))


@contextlib.contextmanager
def throwaway_database(prefix: str) -> Iterator[Database]:
    """``<prefix>_<hex>``, created now and dropped when the block ends, however it ends."""
    db = create_database(f"{prefix}_{secrets.token_hex(4)}")
    try:
        yield db
    finally:
        drop_database(db)


class RedisServer:
    """A redis-server we started on a free port, persisting nothing."""

    def __init__(self, workdir: Path, log: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", HOST,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(workdir),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.client = redis.Redis(host=HOST, port=self.port)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            with contextlib.suppress(redis.ConnectionError):
                if self.client.ping():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"redis-server not ready after {timeout:.0f}s")

    def command_calls(self) -> dict[str, int]:
        """Calls per command since the server started, our own INFO calls left out."""
        stats: dict[str, Any] = self.client.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): int(v["calls"])
            for name, v in stats.items()
            if name != "cmdstat_info"
        }

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def analyze(db: Database) -> None:
    """Fresh planner statistics, as autovacuum would give a settled database."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def pg_counters(db: Database) -> dict[str, int]:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT {} FROM pg_stat_database WHERE datname = %s").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in PG_COUNTERS)
            ),
            (db.name,),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"no pg_stat_database row for {db.name}")
    return dict(zip(PG_COUNTERS, (int(x) for x in row), strict=True))


def pg_backends(db: Database) -> list[int]:
    """The pids of the PostgreSQL backends serving ``db`` now."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (db.name,)
        ).fetchall()
    return [int(r[0]) for r in rows]


@dataclass
class Reading:
    """One point between loads: the counters and CPU seconds of PostgreSQL and Redis."""

    at: float
    pg: dict[str, int]
    redis_calls: dict[str, int]
    pg_cpu: dict[int, float]
    redis_cpu: float


class Ledger:
    """Readings between loads; `cost(a, b)` is what happened between two of them, per request.

    `read()` takes the CPU figures at once (the load just ended), then waits
    PG_STATS_SETTLE_SECONDS for PostgreSQL's counters to be complete. Nothing
    may touch the database between two readings but the load being measured.
    """

    def __init__(self, db: Database, redis_server: RedisServer) -> None:
        self.db, self.redis = db, redis_server

    def read(self) -> Reading:
        pg_cpu = cpu_by_pid(pg_backends(self.db))
        redis_cpu = cpu_by_pid([self.redis.proc.pid]).get(self.redis.proc.pid, 0.0)
        calls = self.redis.command_calls()
        at = time.monotonic()
        time.sleep(PG_STATS_SETTLE_SECONDS)
        return Reading(at, pg_counters(self.db), calls, pg_cpu, redis_cpu)

    @staticmethod
    def cost(before: Reading, after: Reading, requests: int) -> dict[str, Any]:
        """Per request: statements and rows in PostgreSQL, commands in Redis, CPU ms of each.

        A backend that started during the load counts from zero; one that
        ended during it is missed (connections live 60 s: rare).
        """
        n = max(1, requests)
        pg = {k: after.pg[k] - before.pg[k] for k in PG_COUNTERS}
        calls = {
            k: v - before.redis_calls.get(k, 0)
            for k, v in after.redis_calls.items()
            if v - before.redis_calls.get(k, 0)
        }
        pg_cpu = sum(t - before.pg_cpu.get(p, 0.0) for p, t in after.pg_cpu.items())
        return {
            "requests": requests,
            "pg_transactions": round((pg["xact_commit"] + pg["xact_rollback"]) / n, 2),
            # Rows scans returned (index entries included) and rows fetched from the table.
            "pg_tup_returned": round(pg["tup_returned"] / n, 1),
            "pg_tup_fetched": round(pg["tup_fetched"] / n, 1),
            "pg_rows_written": round(
                (pg["tup_inserted"] + pg["tup_updated"] + pg["tup_deleted"]) / n, 2
            ),
            "pg_cpu_ms": round(1000 * pg_cpu / n, 3),
            "redis_commands": round(sum(calls.values()) / n, 2),
            "redis_by_command": {k: round(v / n, 2) for k, v in sorted(calls.items())},
            "redis_cpu_ms": round(1000 * (after.redis_cpu - before.redis_cpu) / n, 3),
            "pg_totals": pg,
        }
