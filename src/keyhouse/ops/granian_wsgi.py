"""What gunicorn does around keyhouse's WSGI app, done for granian, which does not.

granian (ops/granian_server.py) parses HTTP in Rust and calls the app with an
environ of its own making. Measured against gunicorn's (tests/ops/test_granian_wsgi.py):

- **It starts from a copy of the worker's ``os.environ``.** Every variable (a
  database URL with its password, a secret key) would sit in ``request.META``, where
  Django's error reports show it; gunicorn's environ holds the request only. The
  wrapper removes them again (a few dict pops per request).
- **It never sets ``wsgi.url_scheme`` from ``X-Forwarded-Proto``.** gunicorn does,
  for a peer in ``FORWARDED_ALLOW_IPS`` (its variable; 127.0.0.1 and ::1 by
  default), with three headers (``secure_scheme_headers``), and answers 400 when
  they contradict each other; so does the wrapper. Deployments that relied on it
  (nginx on loopback, ``USE_X_FORWARDED_PROTO`` off) keep their Secure cookies.
- **Its access log has no response size**; the wrapper writes gunicorn's line
  (ops/access_log.py's format, the path without its query, redacted).

Not possible here: gunicorn drops request headers whose names hold an underscore
(``X_Remote_User`` would otherwise arrive as ``HTTP_X_REMOTE_USER`` and override
the proxy's ``X-Remote-User``). granian's environ no longer says which spelling a
header had, so that stays the proxy's job (docs/decisions.md, "Serving stack").

The wrapper also hands granian a non-streaming Django response as one bytes
object, the path granian sends without calling back into Python per chunk;
Django's ``close()`` (its ``request_finished`` signal) then runs just before the
body is sent instead of just after.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from keyhouse.ops.access_log import format_access_line

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

ACCESS_LOGGER = "granian.access"
# What granian sets from the request or itself in every environ: an environment
# variable of the same name is replaced, never leaked.
_ALWAYS_SET = frozenset(
    {
        "GATEWAY_INTERFACE",
        "SCRIPT_NAME",
        "SERVER_SOFTWARE",
        "SERVER_PROTOCOL",
        "SERVER_NAME",
        "SERVER_PORT",
        "REMOTE_ADDR",
        "REQUEST_METHOD",
        "PATH_INFO",
        "QUERY_STRING",
    }
)
# Request keys granian sets only when the request has the header: an environment
# variable of that name is removed unless the request sent it (with another value).
_REQUEST_OPTIONAL = ("CONTENT_TYPE", "CONTENT_LENGTH")
# gunicorn's default secure_scheme_headers, as environ keys.
SECURE_SCHEME_HEADERS = (
    ("HTTP_X_FORWARDED_PROTOCOL", "ssl"),
    ("HTTP_X_FORWARDED_PROTO", "https"),
    ("HTTP_X_FORWARDED_SSL", "on"),
)
_CONTRADICTORY = b"Contradictory scheme headers\n"


class ForwardedAllowed:
    """gunicorn's ``forwarded_allow_ips``: addresses and networks, or ``*`` for every peer."""

    def __init__(self, spec: str) -> None:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        self.everyone = "*" in items
        self._exact = frozenset(i for i in items if "/" not in i)
        self._networks = tuple(
            ipaddress.ip_network(i, strict=False) for i in items if "/" in i and i != "*"
        )

    def __contains__(self, address: object) -> bool:
        if self.everyone or address in self._exact:
            return True
        if not self._networks or not isinstance(address, str):
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)


def forwarded_allowed(environ: Mapping[str, str]) -> ForwardedAllowed:
    """As gunicorn reads it: ``FORWARDED_ALLOW_IPS``, else loopback."""
    return ForwardedAllowed(environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"))


def environment_leaks(environ: Mapping[str, str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The variables granian copies into every request's environ.

    Returns the keys to drop always, and the keys a request could also have sent
    (``HTTP_*``, ``CONTENT_*``) with the value to drop them at.
    """
    always: list[str] = []
    unless_sent: dict[str, str] = {}
    for key, value in environ.items():
        if key in _ALWAYS_SET:
            continue
        if key.startswith("HTTP_") or key in _REQUEST_OPTIONAL:
            unless_sent[key] = value
        else:
            always.append(key)
    return tuple(always), unless_sent


class GranianWSGI:
    """keyhouse's WSGI app as granian should call it (see the module's docstring)."""

    def __init__(
        self,
        app: WSGIApp,
        access_log: bool,
        process_environ: Mapping[str, str] | None = None,
    ) -> None:
        source = os.environ if process_environ is None else process_environ
        self._app = app
        self._leaked, self._leaked_unless_sent = environment_leaks(source)
        self._allowed = forwarded_allowed(source)
        self._access = logging.getLogger(ACCESS_LOGGER) if access_log else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        for key in self._leaked:
            environ.pop(key, None)
        for key, value in self._leaked_unless_sent.items():
            if environ.get(key) == value:
                del environ[key]
        if self._scheme_refused(environ):
            start_response(
                "400 Bad Request",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(_CONTRADICTORY)))],
            )
            self._log(environ, 400, len(_CONTRADICTORY), started)
            return [_CONTRADICTORY]
        response: Any = self._app(environ, start_response)
        status = getattr(start_response, "status", "-")  # granian's keeps what it was given
        if isinstance(response, list):
            self._log(environ, status, sum(map(len, response)), started)
            return response
        if getattr(response, "streaming", True):  # files, generators: granian iterates them
            self._log(environ, status, "-", started)
            return response
        try:
            body = b"".join(response)
        finally:
            response.close()
        self._log(environ, status, len(body), started)
        return [body]

    def _scheme_refused(self, environ: dict[str, Any]) -> bool:
        """Set the scheme from a trusted peer's headers, as gunicorn; True if they disagree."""
        sent = [(key, value) for key, value in SECURE_SCHEME_HEADERS if key in environ]
        if not sent or environ.get("REMOTE_ADDR") not in self._allowed:
            return False
        schemes = {"https" if environ[key] == value else "http" for key, value in sent}
        if len(schemes) > 1:
            return True
        environ["wsgi.url_scheme"] = schemes.pop()
        return False

    def _log(self, environ: dict[str, Any], status: Any, size: int | str, started: float) -> None:
        if self._access is None:
            return
        millis = int((time.perf_counter() - started) * 1000)
        self._access.info(format_access_line(environ, status, size, millis))
