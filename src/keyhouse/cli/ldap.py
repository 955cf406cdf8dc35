"""``keyhouse ldap ...``: sync users from the directory, show how a username maps."""

from __future__ import annotations

import argparse
import json
from types import ModuleType

from django.conf import settings

from keyhouse.auth.exceptions import DirectoryUnavailable
from keyhouse.cli.base import CliError, Command, Group
from keyhouse.cli.helpers import realm_or_error
from keyhouse.realms.methods import ldap_auth_enabled
from keyhouse.realms.models import Realm

# LDAP is an optional extra (pip install 'keyhouse[ldap]'): without it every other
# command must still work, so its absence is only an error for these two commands.
ldap_sync: ModuleType | None
try:
    from keyhouse.auth import ldap_sync
except ModuleNotFoundError as exc:
    if exc.name not in {"django_auth_ldap", "ldap"}:
        raise
    ldap_sync, _MISSING = None, exc.name


def _ldap_sync() -> ModuleType:
    if ldap_sync is None:
        raise CliError(
            f"LDAP support is not installed ({_MISSING} is missing; install keyhouse[ldap])"
        )
    return ldap_sync


def _ldap_realms(subdomain: str | None) -> list[Realm]:
    if not settings.AUTH_LDAP_SERVER_URI:
        raise CliError("LDAP is not configured (set AUTH_LDAP_SERVER_URI in the config file)")
    realms = [realm_or_error(subdomain)] if subdomain is not None else list(Realm.objects.all())
    chosen = [r for r in realms if ldap_auth_enabled(r)]
    if not chosen:
        raise CliError("no realm with the ldap authentication method enabled")
    return chosen


class Sync(Command):
    name = "sync"
    help = "sync names and active status from the directory"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--realm", default=None, help="only this realm's subdomain")

    def handle(self, args: argparse.Namespace) -> None:
        sync = _ldap_sync().sync
        try:
            report = sync(_ldap_realms(args.realm))
        except DirectoryUnavailable as exc:
            raise CliError(f"LDAP directory unavailable ({exc}); nothing was changed") from None
        for label, emails in (
            ("renamed", report.renamed),
            ("deactivated", report.deactivated),
            ("reactivated", report.reactivated),
            ("not found in LDAP", report.missing),
            ("error", report.errors),
        ):
            for email in emails:
                print(f"{label}: {email}")
        print(
            f"{len(report.renamed)} renamed, {len(report.deactivated)} deactivated, "
            f"{len(report.reactivated)} reactivated, {len(report.missing)} not found, "
            f"{report.unchanged} unchanged"
        )


class Test(Command):
    name = "test"
    help = "show how a username maps (no password involved)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--realm", default="", help='realm subdomain (default: "" the root realm)'
        )

    def handle(self, args: argparse.Namespace) -> None:
        describe = _ldap_sync().describe
        realm = _ldap_realms(args.realm)[0]
        try:
            print(json.dumps(describe(realm, args.username), indent=2, default=str))
        except DirectoryUnavailable as exc:
            raise CliError(f"LDAP directory unavailable ({exc})") from None


COMMANDS = [Group("ldap", "LDAP directory tools", [Sync(), Test()])]
