"""A LOCAL STAND-IN for GitHub's and Google's OAuth endpoints (they are unreachable from CI).

A real HTTP server on 127.0.0.1 that answers as the providers' documented APIs
do: authorize (redirect back with code and state), token, GitHub's /user,
/user/emails and org/team membership (204 member, 404 not), Google's userinfo.
keyhouse reaches it over real HTTP through social-core; only the providers'
login pages are skipped (the authorize endpoint signs in ``next_user``).
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit


class StandIn:
    def __init__(self) -> None:
        self.next_user: dict[str, Any] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.org_members: dict[str, set[str]] = {}
        self.team_members: dict[str, set[str]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _user(self) -> dict[str, Any] | None:
                auth = self.headers.get("Authorization", "")
                return standin.tokens.get(auth.split(" ", 1)[-1])

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                path = parts.path
                if path in ("/login/oauth/authorize", "/o/oauth2/auth"):
                    code = secrets.token_hex(8)
                    standin.codes[code] = dict(standin.next_user)
                    target = (
                        query["redirect_uri"]
                        + "?"
                        + urlencode({"code": code, "state": query.get("state", "")})
                    )
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                    return
                user = self._user()
                if user is None:
                    self._json(401, {"message": "Bad credentials"})
                elif path == "/user":
                    self._json(200, {k: user[k] for k in ("login", "id", "name", "email")})
                elif path == "/user/emails":
                    self._json(200, user["emails"])
                elif path.startswith("/orgs/") or path.startswith("/teams/"):
                    _, kind, group, _, login = path.split("/")
                    members = standin.org_members if kind == "orgs" else standin.team_members
                    if login in members.get(group, set()):
                        self.send_response(204)
                        self.end_headers()
                    else:
                        self._json(404, {"message": "Not Found"})
                elif path == "/userinfo":
                    self._json(200, user)
                else:
                    self._json(404, {"message": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                user = standin.codes.pop(form.get("code", ""), None)
                if user is None:
                    self._json(400, {"error": "bad_verification_code"})
                    return
                token = secrets.token_hex(16)
                standin.tokens[token] = user
                self._json(200, {"access_token": token, "token_type": "bearer", "scope": ""})

        return Handler
