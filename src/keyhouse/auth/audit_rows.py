"""The audit trail's two writes on the login path, as SQL built once from the model.

Every login inserts one ``LoginAttempt`` row and, if it reached the password check,
updates it once. Through the ORM, each is a model instance, a save with its signals
and a query compiled afresh: more CPU than the database spends on the write
(docs/performance.md, "What a login writes"). Here the two statements are made
from the model's own table and column names, once per database vendor; the time
and the address go through their fields' ``get_db_prep_save``, as in the ORM's
insert (the other values are plain text and ids). On PostgreSQL they run on
Django's cursor, so the watchdog guards them.

On SQLite the new row's id comes from ``lastrowid``, not ``RETURNING``: a statement
that returns rows keeps its write transaction (SQLite's database-wide lock) open
until Python has fetched them (auth/ratelimit/stores.py, ``SqliteStore``).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from keyhouse.auth.models import LoginAttempt
from keyhouse.prepared import note_query

# The columns written by an insert, in order (the id is the database's).
INSERTED = (
    "timestamp",
    "realm",
    "subdomain",
    "username",
    "user",
    "client_ip",
    "user_agent",
    "method",
    "outcome",
    "reason",
)


@dataclass(frozen=True)
class _Statements:
    insert: str
    returning: bool
    update: str
    timestamp: Field[Any, Any]
    client_ip: Field[Any, Any]


@lru_cache(maxsize=4)
def _statements(vendor: str) -> _Statements:
    connection = connections[DEFAULT_DB_ALIAS]
    meta = LoginAttempt._meta
    qn = connection.ops.quote_name

    def column(name: str) -> str:
        return qn(str(getattr(meta.get_field(name), "column", name)))

    # SQLite's statements go to the sqlite3 cursor itself (qmark style), as the rate-limit
    # store's do: Django's cursor wrapper would rewrite each one's placeholders with a
    # regular expression, on every login.
    mark = "?" if vendor == "sqlite" else "%s"
    table, pk = qn(meta.db_table), column("id")
    columns = ", ".join(column(name) for name in INSERTED)
    returning = vendor != "sqlite" and connection.features.can_return_columns_from_insert
    user = column("user")
    return _Statements(
        insert=f"INSERT INTO {table} ({columns}) VALUES ({', '.join([mark] * len(INSERTED))})"
        + (f" RETURNING {pk}" if returning else ""),
        returning=returning,
        update=(
            f"UPDATE {table} SET {qn('outcome')} = {mark}, {qn('reason')} = {mark},"
            f" {user} = COALESCE({mark}, {user}) WHERE {pk} = {mark}"
        ),
        timestamp=meta.get_field("timestamp"),
        client_ip=meta.get_field("client_ip"),
    )


def _cursor(connection: BaseDatabaseWrapper) -> Any:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return closing(connection.connection.cursor())
    return connection.cursor()


def insert_row(
    *,
    timestamp: datetime,
    realm_id: int | None,
    subdomain: str,
    username: str,
    user_id: int | None,
    client_ip: str | None,
    user_agent: str,
    method: str,
    outcome: str,
    reason: str,
) -> int:
    """Insert one entry (values already cleaned to fit); its id."""
    connection = connections[DEFAULT_DB_ALIAS]  # once: each use of the proxy looks it up
    sql = _statements(connection.vendor)
    params = [
        sql.timestamp.get_db_prep_save(timestamp, connection),
        realm_id,
        subdomain,
        username,
        user_id,
        sql.client_ip.get_db_prep_save(client_ip, connection),
        user_agent,
        method,
        outcome,
        reason,
    ]
    with _cursor(connection) as cursor:
        cursor.execute(sql.insert, params)
        entry = int(cursor.fetchone()[0]) if sql.returning else int(cursor.lastrowid)
    if connection.vendor == "sqlite":
        note_query(connection, sql.insert, params)
    return entry


def update_row(entry: int, *, outcome: str, reason: str, user_id: int | None) -> None:
    """Write an entry's outcome; ``user_id`` None keeps the one it has."""
    connection = connections[DEFAULT_DB_ALIAS]
    sql, params = _statements(connection.vendor).update, [outcome, reason, user_id, entry]
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
    if connection.vendor == "sqlite":
        note_query(connection, sql, params)
