"""``keyhouse user ...``: create, list, (de)activate users, set passwords, replace API keys,
reset two-factor sign-in."""

from __future__ import annotations

import argparse

from keyhouse.auth.audit import record_account_event
from keyhouse.auth.second_factor import remove_devices
from keyhouse.cli.base import CliError, Command, Group
from keyhouse.cli.helpers import (
    print_json,
    print_table,
    read_password_stdin,
    realm_or_error,
    user_or_error,
)
from keyhouse.users.actions import (
    UserActionError,
    change_password,
    create_user,
    regenerate_api_key,
    set_active,
)
from keyhouse.users.models import Role
from keyhouse.users.password_policy import PasswordTooWeakError

# --role takes Zulip's role names, which are Role's labels ("owner", "admin", ...).
ROLES_BY_NAME = {role.label: role for role in Role}


def role_name(value: int) -> str:
    return Role(value).label if value in Role.values else str(value)


def _add_user(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--realm", required=True)
    parser.add_argument("--email", required=True)


class Create(Command):
    name = "create"
    help = "create a user"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_user(parser)
        parser.add_argument("--full-name", required=True)
        parser.add_argument("--role", choices=list(ROLES_BY_NAME), default=Role.MEMBER.label)
        parser.add_argument("--password-stdin", action="store_true")

    def handle(self, args: argparse.Namespace) -> None:
        realm = realm_or_error(args.realm)
        password = read_password_stdin() if args.password_stdin else None
        try:
            user = create_user(
                realm, args.email, args.full_name, role=ROLES_BY_NAME[args.role], password=password
            )
        except (UserActionError, PasswordTooWeakError) as exc:
            raise CliError(str(exc)) from None
        print(f"created user {user.delivery_email} (id {user.id}) in realm {realm.subdomain!r}")


class SetPassword(Command):
    name = "set-password"
    help = "set a user's password from stdin"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_user(parser)
        parser.add_argument("--password-stdin", action="store_true", required=True)

    def handle(self, args: argparse.Namespace) -> None:
        user = user_or_error(args.realm, args.email)
        password = read_password_stdin()
        try:
            change_password(user, password)
        except PasswordTooWeakError as exc:
            raise CliError(str(exc)) from None
        print(f"password set for {user.delivery_email}")


class _SetActive(Command):
    active: bool

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_user(parser)

    def handle(self, args: argparse.Namespace) -> None:
        user = user_or_error(args.realm, args.email)
        set_active(user, self.active)
        print(f"{'reactivated' if self.active else 'deactivated'} user {user.delivery_email}")


class Deactivate(_SetActive):
    name = "deactivate"
    help = "deactivate a user"
    active = False


class Reactivate(_SetActive):
    name = "reactivate"
    help = "reactivate a user"
    active = True


class List(Command):
    name = "list"
    help = "list a realm's users"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--realm", required=True)
        parser.add_argument("--json", action="store_true")

    def handle(self, args: argparse.Namespace) -> None:
        realm = realm_or_error(args.realm)
        rows = [
            {
                "user_id": u.id,
                "email": u.delivery_email,
                "full_name": u.full_name,
                "role": role_name(u.role),
                "is_active": u.is_active,
                "has_password": u.has_usable_password(),
                "date_joined": u.date_joined.isoformat(),
            }
            for u in realm.users.order_by("id")
        ]
        if args.json:
            print_json(rows)
            return
        print_table(rows, ["user_id", "email", "full_name", "role", "is_active", "has_password"])


class RegenerateApiKey(Command):
    name = "regenerate-api-key"
    help = "replace a user's API key"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_user(parser)

    def handle(self, args: argparse.Namespace) -> None:
        user = user_or_error(args.realm, args.email)
        regenerate_api_key(user)
        # The new key is not printed: it reaches the user through fetch_api_key or the
        # web, never through a terminal's scrollback or a log.
        print(f"regenerated API key for {user.delivery_email}; the old key no longer works")


class ResetTwoFactor(Command):
    name = "reset-2fa"
    help = "remove a user's two-factor devices and backup codes (a lost phone)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_user(parser)

    def handle(self, args: argparse.Namespace) -> None:
        user = user_or_error(args.realm, args.email)
        removed = remove_devices(user)
        if not removed:
            print(f"{user.delivery_email} has no two-factor devices; nothing to reset")
            return
        record_account_event(None, user, method="cli", reason="TWO_FACTOR_RESET")
        noun = "device" if removed == 1 else "devices"
        print(
            f"reset two-factor sign-in for {user.delivery_email}: removed {removed} {noun};"
            " the password alone signs in until they enrol again"
        )


COMMANDS = [
    Group(
        "user",
        "manage users",
        [
            Create(),
            SetPassword(),
            Deactivate(),
            Reactivate(),
            List(),
            RegenerateApiKey(),
            ResetTwoFactor(),
        ],
    )
]
