"""Lookups and output shared by the command modules (imported after ``django.setup()``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from keyhouse.cli.base import CliError
from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import get_realm
from keyhouse.users.models import User


def realm_or_error(subdomain: str) -> Realm:
    realm = get_realm(subdomain)
    if realm is None:
        raise CliError(f"no realm with subdomain {subdomain!r}")
    return realm


def user_or_error(realm_subdomain: str, email: str) -> User:
    realm = realm_or_error(realm_subdomain)
    user = User.objects.get_by_delivery_email(email, realm)
    if user is None:
        raise CliError(f"no user {email!r} in realm {realm_subdomain!r}")
    return user


def read_password_stdin() -> str:
    """The password is stdin minus one line ending: never an argument (ps, shell history)."""
    data = sys.stdin.read()
    if data.endswith("\r\n"):
        data = data[:-2]
    elif data.endswith("\n"):
        data = data[:-1]
    if not data:
        raise CliError("no password on standard input")
    return data


def print_json(rows: list[dict[str, Any]]) -> None:
    print(json.dumps(rows, indent=2))


def print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    """Aligned columns with an upper-case header; trailing spaces stripped."""
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())
