"""Create the peer's database and users; print their credentials as JSON.

Run with bench/.venv-peer's python from this directory. Users are inserted in
bulk with one precomputed Argon2 hash (every login costs one verification all
the same) and one DRF token each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--login-users", type=int, required=True)
    parser.add_argument("--api-users", type=int, required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    password_hash = make_password(args.password)
    login = [f"login{i}@bench.example" for i in range(args.login_users)]
    api = [f"api{i}@bench.example" for i in range(args.api_users)]
    with transaction.atomic():
        users = User.objects.bulk_create(
            [User(username=e, email=e, password=password_hash, first_name="Bench") for e in login]
            + [User(username=e, email=e, password="!", first_name="Bench") for e in api],
            batch_size=500,
        )
        tokens = Token.objects.bulk_create(
            [Token(user=u, key=Token.generate_key()) for u in users[len(login) :]],
            batch_size=500,
        )
    json.dump(
        {"password_hash": password_hash, "login": login, "api": [t.key for t in tokens]}, sys.stdout
    )


if __name__ == "__main__":
    main()
