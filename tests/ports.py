"""A free loopback port for the servers tests start (SMTP, slapd, Redis, keyhouse)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the kernel just handed out on loopback (a race is possible, so callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
