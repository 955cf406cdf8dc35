"""keyhouse's PostgreSQL backend against a private cluster that hangs, stops and restarts.

Each test builds its own connection (``DatabaseWrapper``) to a throwaway cluster:
the test database, whatever it is, is not involved. The durations are bounded
only generously ("fails, does not hang"): without the backend the paused
server's query blocks until TCP gives up, minutes later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import dj_database_url
import pytest
from django.db import OperationalError, connections
from django.db.utils import load_backend
from pytest_django.fixtures import Settings

from keyhouse.db.config import ENGINE, postgres_options
from keyhouse.db.errors import DatabaseUnavailable
from keyhouse.db.postgresql.base import BREAKER, DatabaseWrapper
from keyhouse.outages import DependencyUnavailable
from tests.faults import ThrowawayPostgres, postgres_cluster

HUNG = 10.0  # seconds: far above the 2 s timeouts, far below a TCP timeout


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    """One private cluster for the module (initdb costs seconds); tests may stop or pause it."""
    with postgres_cluster() as server:
        yield server


@pytest.fixture
def throwaway_postgres(cluster: ThrowawayPostgres) -> Iterator[ThrowawayPostgres]:
    """The module's cluster, running again and with an empty breaker after each test."""
    BREAKER.reset()
    yield cluster
    cluster.resume()
    if cluster.pg_ctl("status", check=False).returncode != 0:
        cluster.start()
    BREAKER.reset()  # the test database may be PostgreSQL: don't leave it "down"


def connect(cluster: ThrowawayPostgres) -> DatabaseWrapper:
    """A connection configured as settings.py configures ``default`` for a postgresql:// URL."""
    db = dj_database_url.parse(cluster.url, conn_max_age=60, conn_health_checks=True)
    db["ENGINE"] = ENGINE
    db["OPTIONS"] = postgres_options(db.get("OPTIONS", {}), 2.0, 2.0)
    db = connections.configure_settings({"default": db})["default"]
    wrapper = load_backend(ENGINE).DatabaseWrapper(db, "outage")
    assert isinstance(wrapper, DatabaseWrapper)
    return wrapper


def one(wrapper: DatabaseWrapper, sql: str = "SELECT 1") -> object:
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0] if cursor.description else None


def timed(call) -> tuple[float, BaseException | None]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - returned to the test
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


@pytest.mark.django_db(databases=[])
def test_a_query_on_a_hung_server_fails_and_the_next_fails_at_once(
    throwaway_postgres: ThrowawayPostgres,
) -> None:
    wrapper = connect(throwaway_postgres)
    try:
        assert one(wrapper) == 1
        throwaway_postgres.pause()
        first, exc = timed(lambda: one(wrapper))
        assert isinstance(exc, DatabaseUnavailable) and isinstance(exc, OperationalError), exc
        assert first < HUNG
        assert BREAKER.is_open
        second, exc = timed(lambda: one(wrapper))
        assert isinstance(exc, DependencyUnavailable)
        assert second < 0.5  # no wait at all while the breaker is open
        throwaway_postgres.resume()
        BREAKER.reset()  # instead of waiting out its 5 s
        assert one(wrapper) == 1
    finally:
        throwaway_postgres.resume()
        wrapper.close()


@pytest.mark.django_db(databases=[])
def test_connecting_to_a_hung_server_times_out(throwaway_postgres: ThrowawayPostgres) -> None:
    throwaway_postgres.pause()
    wrapper = connect(throwaway_postgres)
    try:
        seconds, exc = timed(lambda: one(wrapper))
        assert isinstance(exc, DatabaseUnavailable), exc
        assert seconds < HUNG
    finally:
        throwaway_postgres.resume()
        wrapper.close()


@pytest.mark.django_db(databases=[])
def test_a_stopped_server_fails_fast(throwaway_postgres: ThrowawayPostgres) -> None:
    throwaway_postgres.stop()
    wrapper = connect(throwaway_postgres)
    seconds, exc = timed(lambda: one(wrapper))
    assert isinstance(exc, DatabaseUnavailable), exc
    assert seconds < HUNG
    assert BREAKER.is_open
    seconds, exc = timed(lambda: one(connect(throwaway_postgres)))
    assert isinstance(exc, DatabaseUnavailable) and seconds < 0.5


@pytest.mark.django_db(databases=[])
def test_connecting_waits_out_a_restart(
    throwaway_postgres: ThrowawayPostgres, settings: Settings
) -> None:
    """Refused while the server starts again: retried within DATABASE_CONNECT_TIMEOUT."""
    settings.DATABASE_CONNECT_TIMEOUT = 30.0  # the start below must fit, however slow CI is
    throwaway_postgres.stop()
    starter = threading.Timer(0.5, throwaway_postgres.start)
    starter.start()
    wrapper = connect(throwaway_postgres)
    try:
        assert one(wrapper) == 1
        assert not BREAKER.is_open
    finally:
        starter.join()
        wrapper.close()


@pytest.mark.django_db(databases=[])
def test_a_read_is_replayed_after_a_restart_a_write_is_not(
    throwaway_postgres: ThrowawayPostgres,
) -> None:
    wrapper = connect(throwaway_postgres)
    try:
        one(wrapper, "CREATE TABLE IF NOT EXISTS t (x int)")
        with wrapper.cursor() as cursor:
            throwaway_postgres.restart()
            cursor.execute("SELECT count(*) FROM t")  # connection lost: run again, fresh
            assert cursor.fetchone()[0] == 0
        with wrapper.cursor() as cursor:
            throwaway_postgres.restart()
            with pytest.raises(OperationalError) as raised:
                cursor.execute("INSERT INTO t VALUES (1)")  # may have committed: not replayed
            assert not isinstance(raised.value, DependencyUnavailable)
        assert not BREAKER.is_open  # a restart is not an outage
        assert one(wrapper, "SELECT count(*) FROM t") == 0  # a fresh connection, no error
    finally:
        wrapper.close()


@pytest.mark.django_db(databases=[])
def test_statement_timeout_holds_except_for_migrations(
    throwaway_postgres: ThrowawayPostgres,
) -> None:
    wrapper = connect(throwaway_postgres)
    try:
        with pytest.raises(OperationalError, match="statement timeout"):
            one(wrapper, "SELECT pg_sleep(3)")
        assert not BREAKER.is_open  # the server answered: a slow query, not an outage
        assert one(wrapper) == 1  # the connection survived the cancel
        with wrapper.without_timeouts():
            one(wrapper, "SELECT pg_sleep(3)")
        with pytest.raises(OperationalError, match="statement timeout"):
            one(wrapper, "SELECT pg_sleep(3)")
    finally:
        wrapper.close()
