"""The ``keyhouse`` command: serve, and manage realms and users from the shell.

Every command migrates the database on demand, so it works right after install on
an empty data dir. Operator mistakes print one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from keyhouse.config_keys import ConfigError
from keyhouse.outages import DependencyUnavailable

PROG = "keyhouse"


class CliError(Exception):
    """A refusal to show the operator as one line."""


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyhouse.settings")
    import django

    django.setup()


# pg_advisory_lock key ("keyhouse" in ASCII) serializing migrations on PostgreSQL.
MIGRATE_LOCK_ID = 0x6B6579686F757365


def _migrate() -> None:
    from django.core.management import call_command
    from django.db import connection

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


def _read_password_stdin() -> str:
    data = sys.stdin.read()
    if data.endswith("\r\n"):
        data = data[:-2]
    elif data.endswith("\n"):
        data = data[:-1]
    if not data:
        raise CliError("no password on standard input")
    return data


def _realm(subdomain: str) -> Any:
    from keyhouse.realms.resolve import get_realm

    realm = get_realm(subdomain)
    if realm is None:
        raise CliError(f"no realm with subdomain {subdomain!r}")
    return realm


def _user(realm_subdomain: str, email: str) -> Any:
    from keyhouse.users.models import User

    realm = _realm(realm_subdomain)
    user = User.objects.get_by_delivery_email(email, realm)
    if user is None:
        raise CliError(f"no user {email!r} in realm {realm_subdomain!r}")
    return user


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())


# --- serve ------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> None:
    from keyhouse.ops.serve import serve

    serve(args.host, args.port, args.workers)


def cmd_demo(args: argparse.Namespace) -> None:
    from keyhouse.ops.demo import ensure_demo

    print(ensure_demo(args.host, args.port))


# --- realms -----------------------------------------------------------------


def cmd_realm_create(args: argparse.Namespace) -> None:
    from keyhouse.realms.actions import RealmActionError, create_realm
    from keyhouse.realms.methods import parse_auth_methods

    try:
        realm = create_realm(args.subdomain, args.name, parse_auth_methods(args.auth_methods))
    except (RealmActionError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(f"created realm {realm.subdomain!r} ({realm.name})")


def _realm_row(realm: Any) -> dict[str, Any]:
    return {
        "subdomain": realm.subdomain,
        "name": realm.name,
        "deactivated": realm.deactivated,
        "auth_methods": list(realm.authentication_methods),
        "users": realm.users.count(),
    }


def cmd_realm_list(args: argparse.Namespace) -> None:
    from keyhouse.realms.models import Realm

    rows = [_realm_row(r) for r in Realm.objects.all()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    shown = [
        {**r, "subdomain": r["subdomain"] or '""', "auth_methods": ",".join(r["auth_methods"])}
        for r in rows
    ]
    _print_table(shown, ["subdomain", "name", "deactivated", "auth_methods", "users"])


def cmd_realm_set_active(active: bool) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> None:
        realm = _realm(args.subdomain)
        realm.deactivated = not active
        realm.save(update_fields=["deactivated"])
        print(f"{'reactivated' if active else 'deactivated'} realm {realm.subdomain!r}")

    return run


def cmd_realm_set_auth_methods(args: argparse.Namespace) -> None:
    from keyhouse.realms.methods import parse_auth_methods

    realm = _realm(args.subdomain)
    try:
        realm.authentication_methods = parse_auth_methods(args.auth_methods)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    realm.save(update_fields=["authentication_methods"])
    print(f"realm {realm.subdomain!r} auth methods: {','.join(realm.authentication_methods)}")


# --- users ------------------------------------------------------------------

ROLE_NAMES = {"owner": 100, "admin": 200, "moderator": 300, "member": 400, "guest": 600}


def cmd_user_create(args: argparse.Namespace) -> None:
    from keyhouse.users.actions import UserActionError, create_user
    from keyhouse.users.password_policy import PasswordTooWeakError

    realm = _realm(args.realm)
    password = _read_password_stdin() if args.password_stdin else None
    try:
        user = create_user(
            realm, args.email, args.full_name, role=ROLE_NAMES[args.role], password=password
        )
    except (UserActionError, PasswordTooWeakError) as exc:
        raise CliError(str(exc)) from None
    print(f"created user {user.delivery_email} (id {user.id}) in realm {realm.subdomain!r}")


def cmd_user_set_password(args: argparse.Namespace) -> None:
    from keyhouse.users.actions import change_password
    from keyhouse.users.password_policy import PasswordTooWeakError

    user = _user(args.realm, args.email)
    password = _read_password_stdin()
    try:
        change_password(user, password)
    except PasswordTooWeakError as exc:
        raise CliError(str(exc)) from None
    print(f"password set for {user.delivery_email}")


def cmd_user_set_active(active: bool) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> None:
        from keyhouse.users.actions import set_active

        user = _user(args.realm, args.email)
        set_active(user, active)
        print(f"{'reactivated' if active else 'deactivated'} user {user.delivery_email}")

    return run


def cmd_user_list(args: argparse.Namespace) -> None:
    realm = _realm(args.realm)
    role_names = {v: k for k, v in ROLE_NAMES.items()}
    rows = [
        {
            "user_id": u.id,
            "email": u.delivery_email,
            "full_name": u.full_name,
            "role": role_names.get(u.role, str(u.role)),
            "is_active": u.is_active,
            "has_password": u.has_usable_password(),
            "date_joined": u.date_joined.isoformat(),
        }
        for u in realm.users.order_by("id")
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    _print_table(rows, ["user_id", "email", "full_name", "role", "is_active", "has_password"])


def cmd_user_regenerate_api_key(args: argparse.Namespace) -> None:
    from keyhouse.users.actions import regenerate_api_key

    user = _user(args.realm, args.email)
    regenerate_api_key(user)
    # The new key is not printed: it reaches the user through fetch_api_key or the
    # web, never through a terminal's scrollback or a log.
    print(f"regenerated API key for {user.delivery_email}; the old key no longer works")


# --- admin (Django admin staff) ---------------------------------------------


def cmd_admin_create(args: argparse.Namespace) -> None:
    from django.db import transaction

    from keyhouse.users.actions import UserActionError, create_user, make_staff
    from keyhouse.users.models import User
    from keyhouse.users.password_policy import PasswordTooWeakError

    realm = _realm(args.realm)
    password = _read_password_stdin()
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


# --- audit ------------------------------------------------------------------

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
USER_AGENT_SHOWN = 40


def parse_since(value: str, now: datetime) -> datetime:
    """An ISO 8601 date or date-time (naive means UTC), or a duration back from ``now``."""
    text = value.strip()
    try:
        match = _DURATION.fullmatch(text)
        if match:
            return now - timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
        when = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        pass
    else:
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    raise CliError(
        f"--since: expected an ISO 8601 date or date-time, or a duration like 30m, 2h, 7d;"
        f" got {value!r}"
    )


def _printable(text: str) -> str:
    """Typed usernames and user agents may hold terminal escapes: show them inert."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def _attempt_row(attempt: Any) -> dict[str, Any]:
    return {
        "time": attempt.timestamp.isoformat(),
        "realm": attempt.subdomain,
        "username": attempt.username,
        "user_id": attempt.user_id,
        "ip": attempt.client_ip,
        "method": attempt.method,
        "outcome": attempt.outcome,
        "reason": attempt.reason,
        "user_agent": attempt.user_agent,
    }


def _shown_attempt(row: dict[str, Any]) -> dict[str, Any]:
    agent = row["user_agent"]
    if len(agent) > USER_AGENT_SHOWN:
        agent = agent[: USER_AGENT_SHOWN - 1] + "\u2026"
    return {
        "time": datetime.fromisoformat(row["time"]).isoformat(timespec="seconds"),
        "realm": _printable(row["realm"]) or '""',
        "username": _printable(row["username"]) or '""',
        "user_id": "-" if row["user_id"] is None else row["user_id"],
        "ip": row["ip"] or "-",
        "outcome": row["outcome"],
        "reason": row["reason"] or "-",
        "user_agent": _printable(agent) or "-",
    }


def cmd_audit_list(args: argparse.Namespace) -> None:
    from django.db.models import Q
    from django.utils import timezone

    from keyhouse.auth.models import LoginAttempt

    if args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    attempts = LoginAttempt.objects.all()
    if args.realm is not None:
        attempts = attempts.filter(subdomain=args.realm)
    if args.user is not None:
        attempts = attempts.filter(
            Q(username__iexact=args.user) | Q(user__delivery_email__iexact=args.user)
        )
    if args.since is not None:
        attempts = attempts.filter(timestamp__gte=parse_since(args.since, timezone.now()))
    rows = [_attempt_row(a) for a in attempts.order_by("-timestamp", "-id")[: args.limit]]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    _print_table(
        [_shown_attempt(r) for r in rows],
        ["time", "realm", "username", "user_id", "ip", "outcome", "reason", "user_agent"],
    )


def cmd_audit_prune(args: argparse.Namespace) -> None:
    from django.conf import settings

    from keyhouse.auth.audit import prune_login_attempts

    days = settings.AUDIT_RETENTION_DAYS
    if days <= 0:
        print("AUDIT_RETENTION_DAYS is 0: login attempts are kept forever; nothing pruned")
        return
    print(f"pruned {prune_login_attempts()} login attempts older than {days} days")


# --- ldap -------------------------------------------------------------------


def _ldap_realms(subdomain: str | None) -> list[Any]:
    from django.conf import settings

    from keyhouse.realms.methods import ldap_auth_enabled
    from keyhouse.realms.models import Realm

    if not settings.AUTH_LDAP_SERVER_URI:
        raise CliError("LDAP is not configured (set AUTH_LDAP_SERVER_URI in the config file)")
    realms = [_realm(subdomain)] if subdomain is not None else list(Realm.objects.all())
    chosen = [r for r in realms if ldap_auth_enabled(r)]
    if not chosen:
        raise CliError("no realm with the ldap authentication method enabled")
    return chosen


def cmd_ldap_sync(args: argparse.Namespace) -> None:
    from keyhouse.auth.exceptions import DirectoryUnavailable
    from keyhouse.auth.ldap_sync import sync

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


def cmd_ldap_test(args: argparse.Namespace) -> None:
    from keyhouse.auth.exceptions import DirectoryUnavailable
    from keyhouse.auth.ldap_sync import describe

    realm = _ldap_realms(args.realm)[0]
    try:
        print(json.dumps(describe(realm, args.username), indent=2, default=str))
    except DirectoryUnavailable as exc:
        raise CliError(f"LDAP directory unavailable ({exc})") from None


# --- parser -----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from keyhouse.ops.serve import default_workers

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate, then serve with gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9991)
    serve.add_argument("--workers", type=int, default=default_workers())
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="create the demo realm and user (idempotent)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=9991)
    demo.set_defaults(func=cmd_demo)

    realm = sub.add_parser("realm", help="manage realms").add_subparsers(
        dest="realm_command", required=True
    )
    p = realm.add_parser("create", help="create a realm")
    p.add_argument("--subdomain", required=True, help='"" for the root realm')
    p.add_argument("--name", required=True)
    p.add_argument("--auth-methods", default="email", help="comma-separated: email,ldap,dev")
    p.set_defaults(func=cmd_realm_create)
    p = realm.add_parser("list", help="list realms")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_realm_list)
    for name, active in (("deactivate", False), ("reactivate", True)):
        p = realm.add_parser(name, help=f"{name} a realm")
        p.add_argument("--subdomain", required=True)
        p.set_defaults(func=cmd_realm_set_active(active))
    p = realm.add_parser("set-auth-methods", help="choose the realm's login methods")
    p.add_argument("--subdomain", required=True)
    p.add_argument("--auth-methods", required=True)
    p.set_defaults(func=cmd_realm_set_auth_methods)

    user = sub.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True
    )
    p = user.add_parser("create", help="create a user")
    p.add_argument("--realm", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--full-name", required=True)
    p.add_argument("--role", choices=list(ROLE_NAMES), default="member")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_user_create)
    p = user.add_parser("set-password", help="set a user's password from stdin")
    p.add_argument("--realm", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true", required=True)
    p.set_defaults(func=cmd_user_set_password)
    for name, active in (("deactivate", False), ("reactivate", True)):
        p = user.add_parser(name, help=f"{name} a user")
        p.add_argument("--realm", required=True)
        p.add_argument("--email", required=True)
        p.set_defaults(func=cmd_user_set_active(active))
    p = user.add_parser("list", help="list a realm's users")
    p.add_argument("--realm", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_user_list)
    p = user.add_parser("regenerate-api-key", help="replace a user's API key")
    p.add_argument("--realm", required=True)
    p.add_argument("--email", required=True)
    p.set_defaults(func=cmd_user_regenerate_api_key)

    admin_cmd = sub.add_parser("admin", help="Django admin (/admin/) staff").add_subparsers(
        dest="admin_command", required=True
    )
    p = admin_cmd.add_parser("create", help="create a staff user, or promote one, with a password")
    p.add_argument("--email", required=True)
    p.add_argument("--full-name", required=True, help="used when the user is created")
    p.add_argument("--realm", default="", help='realm subdomain (default: "" the root realm)')
    p.add_argument("--password-stdin", action="store_true", required=True)
    p.set_defaults(func=cmd_admin_create)

    audit = sub.add_parser("audit", help="the login audit trail").add_subparsers(
        dest="audit_command", required=True
    )
    p = audit.add_parser("list", help="login attempts, newest first")
    p.add_argument("--realm", help='subdomain ("" for the root realm)')
    p.add_argument("--user", help="email or username as typed (case-insensitive)")
    p.add_argument("--since", help="ISO 8601 date/time (UTC if no offset) or 30m, 2h, 7d")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit_list)
    p = audit.add_parser("prune", help="delete attempts older than AUDIT_RETENTION_DAYS")
    p.set_defaults(func=cmd_audit_prune)
    ldap_cmd = sub.add_parser("ldap", help="LDAP directory tools").add_subparsers(
        dest="ldap_command", required=True
    )
    p = ldap_cmd.add_parser("sync", help="sync names and active status from the directory")
    p.add_argument("--realm", default=None, help="only this realm's subdomain")
    p.set_defaults(func=cmd_ldap_sync)
    p = ldap_cmd.add_parser("test", help="show how a username maps (no password involved)")
    p.add_argument("username")
    p.add_argument("--realm", default="", help='realm subdomain (default: "" the root realm)')
    p.set_defaults(func=cmd_ldap_test)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from keyhouse.data_dir import private_umask

    parser = build_parser()
    args = parser.parse_args(argv)
    private_umask()  # the database, its WAL and mails hold secrets (keyhouse/data_dir.py)
    try:
        _setup_django()
        _migrate()
        args.func(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:  # the config file's own line already names file and key
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except DependencyUnavailable as exc:
        # Raised before the change is written (users/api_key_cache.py): never half-done.
        print(
            f"{PROG}: error: {exc.component} is unavailable; nothing was changed"
            f" (try again in {exc.retry_after} s)",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # noqa: BLE001 - operators get one line, never a traceback
        print(f"{PROG}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
