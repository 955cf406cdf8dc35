"""``keyhouse``'s entry point: set Django up, load the command modules, run one command.

Errors are the operator's interface: a refusal (``CliError``), a bad config file
(``ConfigError``) or a dependency outage (``DependencyUnavailable``) is one line on
stderr and exit 1; so is an unexpected exception, whose traceback is printed too
with ``--debug`` or ``KEYHOUSE_LOG_LEVEL=DEBUG``. Usage errors are argparse's (exit 2).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

import django
from django.apps import apps
from django.conf import settings

from keyhouse.cli.base import PROG, CliError, Command, Group
from keyhouse.cli.migrate import migrate
from keyhouse.config_keys import ConfigError
from keyhouse.data_dir import private_umask
from keyhouse.outages import DependencyUnavailable

DESCRIPTION = "The ``keyhouse`` command: serve, and manage realms and users from the shell."

# Imported in this order after django.setup() (base.py says why); each has COMMANDS.
COMMAND_MODULES = (
    "keyhouse.cli.serve",
    "keyhouse.cli.realm",
    "keyhouse.cli.user",
    "keyhouse.cli.admin",
    "keyhouse.cli.audit",
    "keyhouse.cli.ldap",
)


def setup_django() -> None:
    """Once per process: a second ``django.setup()`` would reapply LOGGING."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyhouse.settings")
    if not apps.ready:
        django.setup()


def load_commands() -> list[Command | Group]:
    entries: list[Command | Group] = []
    for name in COMMAND_MODULES:
        entries.extend(importlib.import_module(name).COMMANDS)
    return entries


def _add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], command: Command
) -> None:
    parser = sub.add_parser(command.name, help=command.help)
    command.add_arguments(parser)
    parser.set_defaults(command=command)


def build_parser(entries: Sequence[Command | Group]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of an unexpected error"
    )
    sub = parser.add_subparsers(dest="command_name", required=True)
    for entry in entries:
        if isinstance(entry, Group):
            group = sub.add_parser(entry.name, help=entry.help).add_subparsers(
                dest=f"{entry.name}_command", required=True
            )
            for command in entry.commands:
                _add_command(group, command)
        else:
            _add_command(sub, entry)
    return parser


def _debug_wanted(argv: Sequence[str]) -> bool:
    """``--debug`` before the command, or LOG_LEVEL DEBUG (environment or config file)."""
    if "--debug" in argv[: next((i for i, a in enumerate(argv) if not a.startswith("-")), None)]:
        return True
    if os.environ.get("KEYHOUSE_LOG_LEVEL", "").strip().upper() == "DEBUG":
        return True
    return apps.ready and str(getattr(settings, "LOG_LEVEL", "")).upper() == "DEBUG"


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    private_umask()  # the database, its WAL and mails hold secrets (keyhouse/data_dir.py)
    try:
        setup_django()
        args = build_parser(load_commands()).parse_args(argv)
        migrate()
        args.command.handle(args)
    except CliError as exc:
        return _error(str(exc))
    except ConfigError as exc:  # the config file's own line already names file and key
        return _error(str(exc))
    except DependencyUnavailable as exc:
        # Raised before the change is written (users/api_key_cache.py): never half-done.
        return _error(
            f"{exc.component} is unavailable; nothing was changed"
            f" (try again in {exc.retry_after} s)"
        )
    except Exception as exc:  # noqa: BLE001 - operators get one line; --debug adds the rest
        if _debug_wanted(argv):
            traceback.print_exc()
        return _error(f"{type(exc).__name__}: {exc}")
    return 0
