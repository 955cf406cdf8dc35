"""``keyhouse serve`` and ``keyhouse demo``: the server, and the demo it serves."""

from __future__ import annotations

import argparse

from keyhouse.cli.base import Command
from keyhouse.ops.demo import ensure_demo
from keyhouse.ops.serve import default_workers, serve


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9991)


class Serve(Command):
    name = "serve"
    help = "migrate, then serve with gunicorn"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_address(parser)
        parser.add_argument("--workers", type=int, default=default_workers())

    def handle(self, args: argparse.Namespace) -> None:
        serve(args.host, args.port, args.workers)


class Demo(Command):
    name = "demo"
    help = "create the demo realm and user (idempotent)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_address(parser)

    def handle(self, args: argparse.Namespace) -> None:
        print(ensure_demo(args.host, args.port))


COMMANDS = [Serve(), Demo()]
