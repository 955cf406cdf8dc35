"""Fill a keyhouse data dir for the benchmark; print what the load needs as JSON.

Run with .venv's python and KEYHOUSE_DATA_DIR set, after ``keyhouse realm create``
(which migrates). Users go in through the ORM's bulk_create, not the CLI one by
one: 100 000 users take seconds, and bulk_create keeps up with model defaults
that a hand-written INSERT would miss.

    seed.py init --login-users N --api-users M --password P
        N login users sharing one hash of P made by keyhouse's hasher (every
        login still costs one full verification); M API users with unusable
        passwords. Prints the hash, the Argon2 parameters, emails and API keys.
    seed.py grow --total N
        Adds users with unusable passwords until the root realm has N, then
        prints the count and the query plan of the users/me lookup.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyhouse.settings")

BATCH = 5000


def _setup() -> None:
    import django

    django.setup()


def _root_realm():  # type: ignore[no-untyped-def]
    from keyhouse.realms.models import Realm

    return Realm.objects.get(subdomain="")


def _unusable() -> str:
    return "!" + secrets.token_urlsafe(30)  # Django's unusable-password marker


def init(login_users: int, api_users: int, password: str) -> dict[str, object]:
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from keyhouse.users.models import User

    realm = _root_realm()
    # Not brand new: a login within a minute of sign-up sends no "new login" email
    # (auth/login_notifications.py), and every benchmark login should cost the same.
    joined = timezone.now() - timedelta(days=1)
    password_hash = make_password(password)  # keyhouse's Argon2id at the configured parameters
    login = [f"login{i}@bench.example" for i in range(login_users)]
    api = [f"api{i}@bench.example" for i in range(api_users)]
    with transaction.atomic():
        User.objects.bulk_create(
            [
                User(
                    realm=realm,
                    delivery_email=e,
                    full_name="Bench Login",
                    password=password_hash,
                    date_joined=joined,
                )
                for e in login
            ]
            + [
                User(
                    realm=realm,
                    delivery_email=e,
                    full_name="Bench API",
                    password=_unusable(),
                    date_joined=joined,
                )
                for e in api
            ],
            batch_size=BATCH,
        )
    refresh_planner_statistics()
    keys = dict(
        User.objects.filter(delivery_email__in=api).values_list("delivery_email", "api_key")
    )
    return {
        "argon2": {
            "memory_cost": settings.ARGON2_MEMORY_COST,
            "time_cost": settings.ARGON2_TIME_COST,
            "parallelism": settings.ARGON2_PARALLELISM,
        },
        "server": {
            "server": settings.SERVER,  # what the stages other than "serving" run
            "threads": settings.SERVER_THREADS,
            "hashing_slots": settings.HASHING_SLOTS,  # 0: one per core, shared by the workers
            "hashing_max_wait": settings.HASHING_MAX_WAIT,
            "hashing_max_waiters": settings.HASHING_MAX_WAITERS,
        },
        "password_hash": password_hash,
        "login": login,
        "api": [[e, keys[e]] for e in api],
    }


def refresh_planner_statistics() -> None:
    """After a bulk load, what autovacuum would do a minute later: ANALYZE (PostgreSQL).

    PostgreSQL plans from its table statistics. Until they are refreshed it takes the
    users table for a few rows and looks an email up through the realm_id index,
    reading every user of the realm: about 2 300 rows fetched per login at 1 000
    users, 100 times that at 100 000. Autovacuum refreshes them on its own, but only
    after its next round, and never where it is off (as on this project's machines).
    SQLite plans these lookups from their indexes without statistics.
    """
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def grow(total: int) -> dict[str, object]:
    from django.db import transaction

    from keyhouse.users.models import User

    realm = _root_realm()
    have = User.objects.filter(realm=realm).count()
    started = time.perf_counter()
    for start in range(have, total, BATCH):
        with transaction.atomic():
            User.objects.bulk_create(
                [
                    User(
                        realm=realm,
                        delivery_email=f"grow{i}@bench.example",
                        full_name=f"Bench Grow {i}",
                        password=_unusable(),
                    )
                    for i in range(start, min(start + BATCH, total))
                ]
            )
    refresh_planner_statistics()
    inserted = max(0, total - have)
    seconds = time.perf_counter() - started
    # The lookup users/me makes for a Basic-auth request (api/basic_auth.py).
    plan = User.objects.with_email("api0@bench.example").explain()
    return {
        "users": User.objects.filter(realm=realm).count(),
        "inserted": inserted,
        "insert_seconds": round(seconds, 2),
        "lookup_plan": plan,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init")
    p.add_argument("--login-users", type=int, required=True)
    p.add_argument("--api-users", type=int, required=True)
    p.add_argument("--password", required=True)
    p = sub.add_parser("grow")
    p.add_argument("--total", type=int, required=True)
    args = parser.parse_args()
    _setup()
    if args.command == "init":
        result = init(args.login_users, args.api_users, args.password)
    else:
        result = grow(args.total)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
