"""Child process for the hit/clear race test: threads hammer one key of a SqliteStore.

Run as ``python -m tests.auth.sqlite_store_hammer SECONDS`` with ``KEYHOUSE_DATA_DIR``
set: the store then works on a real SQLite file, one connection per thread, as in a
gunicorn worker (the test database of pytest-django is a shared-cache in-memory
one, whose table locks would hide the race). Prints one JSON line: counts and
the first errors.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

HITTERS = 4
CLEARERS = 2
# So large a budget that no hit is refused: every hit runs both statements.
RULES = [(60, 10_000_000)]


def main(seconds: float) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyhouse.settings")
    import django

    django.setup()
    from django.db import connection

    from keyhouse.auth.ratelimit.stores import SqliteStore
    from keyhouse.cli.migrate import migrate

    migrate()
    connection.close()
    store = SqliteStore()
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    counts = {"hits": 0, "clears": 0}
    errors: list[str] = []
    answers_ok = True

    def work(kind: str) -> None:
        nonlocal answers_ok
        done = 0
        while time.monotonic() < deadline:
            try:
                if kind == "hits":
                    answer = store.hit("race@example.com", RULES)
                    if answer.limited or answer.secs_to_freedom < 0 or answer.remaining < 0:
                        answers_ok = False
                else:
                    store.clear("race@example.com")
            except Exception as exc:  # noqa: BLE001 - the test reports every kind of failure
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
            done += 1
        connection.close()
        with lock:
            counts[kind] += done

    threads = [threading.Thread(target=work, args=("hits",)) for _ in range(HITTERS)]
    threads += [threading.Thread(target=work, args=("clears",)) for _ in range(CLEARERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({**counts, "errors": len(errors), "first_errors": errors[:3],
                      "answers_ok": answers_ok}))  # fmt: skip


if __name__ == "__main__":
    main(float(sys.argv[1]))
