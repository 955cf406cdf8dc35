"""``keyhouse audit ...``: read and prune the login audit trail (auth/audit.py)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from keyhouse.auth.audit import prune_login_attempts
from keyhouse.auth.models import LoginAttempt
from keyhouse.cli.base import CliError, Command, Group
from keyhouse.cli.helpers import print_json, print_table

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


def _attempt_row(attempt: LoginAttempt) -> dict[str, Any]:
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


class List(Command):
    name = "list"
    help = "login attempts, newest first"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--realm", help='subdomain ("" for the root realm)')
        parser.add_argument("--user", help="email or username as typed (case-insensitive)")
        parser.add_argument("--since", help="ISO 8601 date/time (UTC if no offset) or 30m, 2h, 7d")
        parser.add_argument("--limit", type=int, default=100)
        parser.add_argument("--json", action="store_true")

    def handle(self, args: argparse.Namespace) -> None:
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
            print_json(rows)
            return
        print_table(
            [_shown_attempt(r) for r in rows],
            ["time", "realm", "username", "user_id", "ip", "outcome", "reason", "user_agent"],
        )


class Prune(Command):
    name = "prune"
    help = "delete attempts older than AUDIT_RETENTION_DAYS"

    def handle(self, args: argparse.Namespace) -> None:
        days = settings.AUDIT_RETENTION_DAYS
        if days <= 0:
            print("AUDIT_RETENTION_DAYS is 0: login attempts are kept forever; nothing pruned")
            return
        print(f"pruned {prune_login_attempts()} login attempts older than {days} days")


COMMANDS = [Group("audit", "the login audit trail", [List(), Prune()])]
