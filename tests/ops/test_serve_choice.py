"""``keyhouse serve``'s choice of HTTP server (ops/serve.py), checked before anything starts."""

from __future__ import annotations

import socket

import pytest

from keyhouse.ops.serve import ServerUnavailable, check_port_free


def test_a_port_something_listens_on_is_refused() -> None:
    """granian binds with SO_REUSEPORT: without this check it would share the port."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as granian's own
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerUnavailable, match=f"cannot listen on 127.0.0.1:{port}: "):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again
