"""``keyhouse realm ...``: create, list, (de)activate realms, choose their login methods.

And whether the gateway's ``/auth/verify`` takes their web sessions (docs/gateway.md),
and their other settings (``realm set``).
"""

from __future__ import annotations

import argparse
from typing import Any

from keyhouse.cli.base import CliError, Command, Group
from keyhouse.cli.helpers import print_json, print_table, realm_or_error
from keyhouse.realms.actions import (
    RealmActionError,
    create_realm,
    set_realm_active,
)
from keyhouse.realms.methods import parse_auth_methods
from keyhouse.realms.models import Realm


class Create(Command):
    name = "create"
    help = "create a realm"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--subdomain", required=True, help='"" for the root realm')
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--auth-methods", default="email", help="comma-separated: email,ldap,dev,oidc"
        )

    def handle(self, args: argparse.Namespace) -> None:
        try:
            realm = create_realm(args.subdomain, args.name, parse_auth_methods(args.auth_methods))
        except (RealmActionError, ValueError) as exc:
            raise CliError(str(exc)) from None
        print(f"created realm {realm.subdomain!r} ({realm.name})")


def _row(realm: Realm) -> dict[str, Any]:
    return {
        "subdomain": realm.subdomain,
        "name": realm.name,
        "deactivated": realm.deactivated,
        "auth_methods": list(realm.authentication_methods),
        "gateway_sessions": realm.gateway_sessions,
        "users": realm.users.count(),
    }


class List(Command):
    name = "list"
    help = "list realms"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, args: argparse.Namespace) -> None:
        rows = [_row(r) for r in Realm.objects.all()]
        if args.json:
            print_json(rows)
            return
        shown = [
            {**r, "subdomain": r["subdomain"] or '""', "auth_methods": ",".join(r["auth_methods"])}
            for r in rows
        ]
        print_table(shown, ["subdomain", "name", "deactivated", "auth_methods", "users"])


class _SetActive(Command):
    active: bool

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--subdomain", required=True)

    def handle(self, args: argparse.Namespace) -> None:
        realm = realm_or_error(args.subdomain)
        set_realm_active(realm, self.active)
        print(f"{'reactivated' if self.active else 'deactivated'} realm {realm.subdomain!r}")


class Deactivate(_SetActive):
    name = "deactivate"
    help = "deactivate a realm"
    active = False


class Reactivate(_SetActive):
    name = "reactivate"
    help = "reactivate a realm"
    active = True


class SetAuthMethods(Command):
    name = "set-auth-methods"
    help = "choose the realm's login methods"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--subdomain", required=True)
        parser.add_argument("--auth-methods", required=True)

    def handle(self, args: argparse.Namespace) -> None:
        realm = realm_or_error(args.subdomain)
        try:
            realm.authentication_methods = parse_auth_methods(args.auth_methods)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        realm.save(update_fields=["authentication_methods"])
        print(f"realm {realm.subdomain!r} auth methods: {','.join(realm.authentication_methods)}")


ON_OFF = {"on": True, "off": False}

# `realm set`'s switches: option → (Realm field, help). One command for every
# on/off setting, so each new one is a row here, not a command of its own.
SWITCHES: dict[str, tuple[str, str]] = {
    "gateway-sessions": (
        "gateway_sessions",
        "on: /auth/verify accepts the realm's web sessions (docs/gateway.md)",
    ),
    "require-2fa-for-api-keys": (
        "require_2fa_for_api_keys",
        "on: accounts with two-factor sign-in get API keys only through the browser"
        " (fetch_api_key refuses the password alone; docs/security.md)",
    ),
}


class Set(Command):
    name = "set"
    help = "change a realm's on/off settings"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--subdomain", required=True)
        for option, (_field, text) in SWITCHES.items():
            parser.add_argument(f"--{option}", choices=list(ON_OFF), help=text)

    def handle(self, args: argparse.Namespace) -> None:
        chosen = {
            option: getattr(args, option.replace("-", "_"))
            for option in SWITCHES
            if getattr(args, option.replace("-", "_")) is not None
        }
        if not chosen:
            options = " or ".join(f"--{option} on|off" for option in SWITCHES)
            raise CliError(f"nothing to set: give {options}")
        realm = realm_or_error(args.subdomain)
        for option, value in chosen.items():
            setattr(realm, SWITCHES[option][0], ON_OFF[value])
        # A plain save: the API-key cache's Realm hooks drop what they hold for it.
        realm.save(update_fields=[SWITCHES[option][0] for option in chosen])
        for option, value in chosen.items():
            print(f"realm {realm.subdomain!r}: {option} {value}")


COMMANDS = [
    Group(
        "realm",
        "manage realms",
        [
            Create(),
            List(),
            Deactivate(),
            Reactivate(),
            SetAuthMethods(),
            Set(),
        ],
    )
]
