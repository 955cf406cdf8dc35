"""The project's own app: what must happen once at start-up, before any request.

Settings are declarations (importing them creates no file); the data dir, its
secret key, SQLite file and mail dir are made private here, in ``ready()``, which
every entry point runs through ``django.setup()`` (the CLI, ``keyhouse.wsgi``
in each server worker, tests).
"""

from __future__ import annotations

from pathlib import Path

from django.apps import AppConfig
from django.conf import settings

from keyhouse import test_hooks
from keyhouse.data_dir import prepare

_SQLITE = "django.db.backends.sqlite3"
_FILE_MAIL = "django.core.mail.backends.filebased.EmailBackend"


class KeyhouseConfig(AppConfig):
    name = "keyhouse"
    verbose_name = "keyhouse"

    def ready(self) -> None:
        database = settings.DATABASES["default"]
        sqlite = database["ENGINE"] == _SQLITE and str(database["NAME"]) != ":memory:"
        prepare(
            Path(settings.DATA_DIR),
            settings.SECRET_KEY,
            Path(database["NAME"]) if sqlite else None,
            Path(settings.EMAIL_FILE_PATH) if settings.EMAIL_BACKEND == _FILE_MAIL else None,
        )
        test_hooks.install()  # nothing unless a test armed a crash point
