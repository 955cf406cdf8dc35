"""``keyhouse serve`` and ``keyhouse demo``: the server, and the demo it serves."""

from __future__ import annotations

import argparse

from keyhouse.cli.base import CliError, Command
from keyhouse.config_keys import SERVERS
from keyhouse.ops.demo import ensure_demo
from keyhouse.ops.serve import ServerUnavailable, default_workers, serve


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9991)


class Serve(Command):
    name = "serve"
    help = "migrate, then serve with gunicorn (or granian: --server, SERVER)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_address(parser)
        parser.add_argument("--workers", type=int, default=default_workers())
        parser.add_argument(
            "--server", choices=SERVERS, default=None, help="the HTTP server (default: SERVER)"
        )

    def handle(self, args: argparse.Namespace) -> None:
        try:
            serve(args.host, args.port, args.workers, args.server)
        except ServerUnavailable as exc:
            raise CliError(str(exc)) from None


class Demo(Command):
    name = "demo"
    help = "create the demo realm and user (idempotent)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_address(parser)

    def handle(self, args: argparse.Namespace) -> None:
        print(ensure_demo(args.host, args.port))


COMMANDS = [Serve(), Demo()]
