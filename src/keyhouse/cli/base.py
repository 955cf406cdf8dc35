"""What every ``keyhouse`` command is made of (after Django's management commands).

A command is a ``Command`` subclass: ``name`` and ``help``, ``add_arguments(parser)``
declaring its flags, ``handle(args)`` doing the work. A module of this package
groups its commands in ``COMMANDS``, a list of ``Command`` (top level, like
``keyhouse serve``) and ``Group`` (``keyhouse realm create``) objects; ``runner``
builds the argparse tree from those lists.

Why Django is set up before these modules are imported: the command modules import
models and actions at their top, as the rest of keyhouse does, and a model cannot be
imported before ``django.setup()``. So ``runner.main()`` sets Django up first and
only then imports the modules named in ``runner.COMMAND_MODULES`` with
``importlib`` -- the way Django's ``ManagementUtility`` loads a command by name.
``runner`` itself, this module and ``migrate`` import nothing that needs the app
registry, which is what lets them be imported first. Shared model-level helpers
(find a realm or user, read a password, print a table) are in ``helpers.py``.

An operator's mistake is a ``CliError``: ``runner`` prints it as one line,
``keyhouse: error: <message>``, and exits 1.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import ClassVar

PROG = "keyhouse"


class CliError(Exception):
    """A refusal to show the operator as one line."""


class Command:
    """One runnable command; subclasses set ``name`` and ``help`` and implement ``handle``."""

    name: ClassVar[str]
    help: ClassVar[str]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's flags (none by default)."""

    def handle(self, args: argparse.Namespace) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Group:
    """``keyhouse NAME COMMAND``: a set of commands under one word."""

    name: str
    help: str
    commands: list[Command] = field(default_factory=list)
