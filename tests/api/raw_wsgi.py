"""Send raw bytes through the production WSGI application, as gunicorn would.

Django's test client builds a plain ``WSGIRequest`` itself, so it cannot show
what ``keyhouse.wsgi.application`` does with a request whose construction
fails, and it refuses some inputs (text it cannot encode) before sending them.
Here the environ is built from bytes exactly as a WSGI server builds it
(PEP 3333: Latin-1 strings), and an exception escaping the application is
reported as the bare 500 a server would send.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from keyhouse.wsgi import application


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    content: bytes = b""

    def json(self) -> Any:
        return json.loads(self.content)


def latin1(data: bytes | str) -> str:
    return data.decode("iso-8859-1") if isinstance(data, bytes) else data


def call_wsgi(
    method: str,
    path: str,
    *,
    query: bytes | str = b"",
    body: bytes = b"",
    content_type: bytes | str | None = None,
    headers: Mapping[str, bytes | str] | None = None,
) -> RawResponse:
    """One request through ``keyhouse.wsgi.application``; ``path`` may be percent-encoded.

    Django's close_old_connections is unhooked meanwhile, as the test client
    does: it would close the test's database connection mid-transaction.
    """
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("iso-8859-1"),
        "QUERY_STRING": latin1(query),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    if content_type is not None:
        environ["CONTENT_TYPE"] = latin1(content_type)
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = latin1(value)

    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> None:
        started.append((status, response_headers))

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        try:
            result = application(environ, start_response)
        except Exception as exc:  # what gunicorn answers when the application raises
            return RawResponse(500, {}, f"application raised {exc!r}".encode())
        try:
            content = b"".join(result)
        finally:
            result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    status, response_headers = started[0]
    return RawResponse(
        int(status.split(" ", 1)[0]),
        {name.lower(): value for name, value in response_headers},
        content,
    )
