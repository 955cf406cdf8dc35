"""``keyhouse admin create``: a staff user with a password for Django's /admin/."""

from __future__ import annotations

import argparse

from django.db import transaction

from keyhouse.cli.base import CliError, Command, Group
from keyhouse.cli.helpers import read_password_stdin, realm_or_error
from keyhouse.users.actions import UserActionError, create_user, make_staff
from keyhouse.users.models import User
from keyhouse.users.password_policy import PasswordTooWeakError


class Create(Command):
    name = "create"
    help = "create a staff user, or promote one, with a password"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--full-name", required=True, help="used when the user is created")
        parser.add_argument(
            "--realm", default="", help='realm subdomain (default: "" the root realm)'
        )
        parser.add_argument("--password-stdin", action="store_true", required=True)

    def handle(self, args: argparse.Namespace) -> None:
        realm = realm_or_error(args.realm)
        password = read_password_stdin()
        existing = User.objects.get_by_delivery_email(args.email, realm)
        if existing is not None and not existing.is_active:
            raise CliError(
                f"user {existing.delivery_email} is deactivated;"
                f" reactivate it first (keyhouse user reactivate)"
            )
        try:
            with transaction.atomic():
                user = existing or create_user(realm, args.email, args.full_name)
                make_staff(user, password)
        except (UserActionError, PasswordTooWeakError) as exc:
            raise CliError(str(exc)) from None
        verb = "promoted" if existing is not None else "created"
        print(
            f"{verb} staff user {user.delivery_email} (id {user.id}) in realm {realm.subdomain!r};"
            f" log in at /admin/ on that realm's host"
        )


COMMANDS = [Group("admin", "Django admin (/admin/) staff", [Create()])]
