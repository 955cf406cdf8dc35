"""The SQLite rate-limit store's table (auth/ratelimit/stores.py, SqliteStore).

SQLite only, and no Django model: the store reaches it with raw SQL alone. It is
a WITHOUT ROWID table whose primary key is the only index, so recording a hit
writes one b-tree, not a table and its indexes. On other databases the store is
not used and the table is not made.
"""

from django.db import migrations

TABLE = "keyhouse_ratelimit_hit"


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "sqlite":
        return
    schema_editor.execute(
        f"CREATE TABLE {TABLE} ("
        " key TEXT NOT NULL,"
        " at REAL NOT NULL,"
        # Tells apart two hits on one key at the same instant.
        " tiebreak INTEGER NOT NULL,"
        " expires_at REAL NOT NULL,"
        " PRIMARY KEY (key, at, tiebreak)"
        ") WITHOUT ROWID"
    )


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP TABLE IF EXISTS {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("keyhouse_auth", "0002_ratelimit_bucket")]

    operations = [migrations.RunPython(create, drop)]
