"""The service behind the proxy in the gateway tests: it echoes what it received.

A stdlib ``http.server`` on a free loopback port, in a thread of the test
process. Every request gets a JSON answer with its method, URI, headers and body,
so a test sees exactly what the proxy let through (identity headers, no API key).
Zulip-shaped, so the real clients can call it: ``/api/v1/register`` and
``/api/v1/messages`` answer a Zulip error whose message names the user the
proxy said it was, which zulip-terminal prints ("Error connecting to Zulip
server: …") and exits on: proof its requests reached the upstream as that user.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What zulip-terminal asks for right after logging in (zulip-clients.md §1.3).
CLIENT_START = ("/api/v1/register", "/api/v1/messages")
SEEN_AS = "upstream saw Remote-User={user} X-Keyhouse-User-Id={user_id}"


class _Echo(BaseHTTPRequestHandler):
    server: EchoServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        seen: dict[str, Any] = {
            "method": self.command,
            "uri": self.path,
            # Every header as received, repeated ones too, names as sent.
            "headers": [[name, value] for name, value in self.headers.items()],
            "body": body,
        }
        self.server.requests.append(seen)
        path = self.path.split("?", 1)[0]
        if path in CLIENT_START:
            user = self.headers.get("Remote-User", "")
            user_id = self.headers.get("X-Keyhouse-User-Id", "")
            answer = {
                "result": "error",
                "msg": SEEN_AS.format(user=user, user_id=user_id),
                "code": "BAD_REQUEST",
            }
            status = 400
        else:
            answer = {"result": "success", "msg": "", "seen": seen}
            status = 200
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass  # quiet: the tests read self.server.requests


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.requests: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> EchoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def header(seen: dict[str, Any], name: str) -> list[str]:
    """Every value of one header the upstream received (names are case-insensitive)."""
    return [v for k, v in seen["headers"] if k.lower() == name.lower()]
