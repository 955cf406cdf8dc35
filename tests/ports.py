"""A free loopback port for the servers tests start (SMTP, slapd, Redis, keyhouse)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the kernel just handed out on loopback (a race is possible, so callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def distinct_free_ports(count: int) -> list[int]:
    """``count`` different free ports, for servers that must name each other before they start.

    All are held at once while chosen, so no two are the same (``free_port`` called
    twice may hand out one port twice); another process may still take one later.
    """
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
