"""Migrate on demand, so every command works on an empty data dir."""

from __future__ import annotations

import contextlib

from django.core.management import call_command
from django.db import connection

# pg_advisory_lock key ("keyhouse" in ASCII) serializing migrations on PostgreSQL.
MIGRATE_LOCK_ID = 0x6B6579686F757365


def migrate() -> None:
    if connection.vendor != "postgresql":
        call_command("migrate", interactive=False, verbosity=0)
        return
    # Several servers (or a server and a command) sharing one database may start at
    # once; unserialized, all but one fail creating the same tables. One migrates
    # while the others wait, then find nothing left to do. Neither the wait nor a
    # migration is bounded by DATABASE_STATEMENT_TIMEOUT (keyhouse/db/postgresql/).
    unbounded = getattr(connection, "without_timeouts", contextlib.nullcontext)
    with unbounded():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK_ID])
        try:
            call_command("migrate", interactive=False, verbosity=0)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK_ID])
