"""granian's environ, as keyhouse's app gets it under ``SERVER = "granian"`` (ops/granian_wsgi.py).

Requests go through granian's own Python side (``granian.wsgi._callback_wrapper``,
which builds every request's environ from the worker's ``os.environ`` and the
request) and GranianWSGI, into an app that records what it was given, or into
``keyhouse.wsgi.application`` itself. ``RecordingProtocol`` stands in for the
one part of granian that is not Python, the Rust object that writes the
response to the socket. The whole server runs under granian in the e2e
directories (``KEYHOUSE_SERVER=granian pytest tests/e2e ...``).
"""

from __future__ import annotations

import datetime
import io
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from keyhouse.ops.access_log import AccessLogger
from keyhouse.users.models import User
from tests.ops.test_access_log import Request, Response, config

granian_wsgi = pytest.importorskip("granian.wsgi")
from keyhouse.ops.granian_wsgi import ACCESS_LOGGER, GranianWSGI  # noqa: E402

Environ = dict[str, Any]
App = Callable[[Environ, Callable[..., Any]], Any]


class RecordingProtocol:
    """Stands in for granian's Rust response object: keeps what would be sent."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.as_bytes = False

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body, self.as_bytes = status, headers, body, True

    def response_iter(self, status: int, headers: list[tuple[str, str]], body: Any) -> None:
        self.status, self.headers, self.body = status, headers, b"".join(body)
        body.close()


def scope(
    path: str = "/health", query: str = "", addr: str = "127.0.0.1", **headers: str
) -> Environ:
    """The request part of an environ, with the keys granian's Rust side sets."""
    found: Environ = {
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "9991",
        "REMOTE_ADDR": addr,
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "HTTP_HOST": "testserver",
    }
    found.update(headers)
    return found


def through_granian(app: App, request: Environ) -> RecordingProtocol:
    """One request through granian's environ-building wrapper; what it would send."""
    runner = granian_wsgi._callback_wrapper(app, {}, None)
    proto = RecordingProtocol()
    runner(proto, request)
    return proto


class Echo:
    """An app that records the environ it was called with."""

    def __init__(self) -> None:
        self.seen: Environ = {}

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        self.seen = dict(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


@pytest.fixture
def echo() -> Echo:
    return Echo()


def test_no_environment_variable_reaches_the_app(
    monkeypatch: pytest.MonkeyPatch, echo: Echo
) -> None:
    monkeypatch.setenv("KEYHOUSE_SECRET_KEY", "canary-secret")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("SERVER_NAME", "from-the-environment")
    through_granian(echo, scope())
    assert echo.seen["KEYHOUSE_SECRET_KEY"] == "canary-secret"  # granian alone leaks it
    through_granian(GranianWSGI(echo, access_log=False), scope())
    assert "KEYHOUSE_SECRET_KEY" not in echo.seen
    assert "PATH" not in echo.seen and "HTTP_PROXY" not in echo.seen
    assert echo.seen["SERVER_NAME"] == "127.0.0.1"  # the request's own value stays
    assert echo.seen["SERVER_SOFTWARE"] == "Granian"
    through_granian(GranianWSGI(echo, access_log=False), scope(HTTP_PROXY="sent-by-client"))
    assert echo.seen["HTTP_PROXY"] == "sent-by-client"  # a header the request did send stays


@pytest.mark.parametrize(
    ("addr", "headers", "scheme"),
    [
        ("127.0.0.1", {"HTTP_X_FORWARDED_PROTO": "https"}, "https"),
        ("::1", {"HTTP_X_FORWARDED_PROTO": "https"}, "https"),
        ("127.0.0.1", {"HTTP_X_FORWARDED_SSL": "on"}, "https"),
        ("127.0.0.1", {"HTTP_X_FORWARDED_PROTOCOL": "ssl"}, "https"),
        ("127.0.0.1", {"HTTP_X_FORWARDED_PROTO": "http"}, "http"),
        ("127.0.0.1", {}, "http"),
        ("203.0.113.9", {"HTTP_X_FORWARDED_PROTO": "https"}, "http"),  # not a trusted peer
    ],
)
def test_the_scheme_follows_a_loopback_proxy_as_under_gunicorn(
    echo: Echo, addr: str, headers: dict[str, str], scheme: str
) -> None:
    sent = through_granian(GranianWSGI(echo, access_log=False), scope(addr=addr, **headers))
    assert sent.status == 200
    assert echo.seen["wsgi.url_scheme"] == scheme


def test_contradictory_scheme_headers_are_refused(echo: Echo) -> None:
    headers = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_SSL": "off"}
    sent = through_granian(GranianWSGI(echo, access_log=False), scope(**headers))
    assert (sent.status, sent.body) == (400, b"Contradictory scheme headers\n")
    assert echo.seen == {}  # the app never ran


def test_forwarded_allow_ips_is_read_as_gunicorn_reads_it(
    monkeypatch: pytest.MonkeyPatch, echo: Echo
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8, 192.0.2.1")
    app = GranianWSGI(echo, access_log=False)
    for addr, scheme in (("10.1.2.3", "https"), ("192.0.2.1", "https"), ("127.0.0.1", "http")):
        through_granian(app, scope(addr=addr, HTTP_X_FORWARDED_PROTO="https"))
        assert echo.seen["wsgi.url_scheme"] == scheme, addr
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    everyone = GranianWSGI(echo, access_log=False)
    through_granian(everyone, scope(addr="203.0.113.9", HTTP_X_FORWARDED_PROTO="https"))
    assert echo.seen["wsgi.url_scheme"] == "https"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access_lines() -> Iterator[Lines]:
    log = logging.getLogger(ACCESS_LOGGER)
    saved = (list(log.handlers), log.level, log.propagate)
    handler = Lines()
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    yield handler
    log.handlers[:], level, log.propagate = saved[0], saved[1], saved[2]
    log.setLevel(level)


def test_the_access_line_is_gunicorns(access_lines: Lines, echo: Echo) -> None:
    """Field for field the line gunicorn's access log writes, but the milliseconds."""
    request = scope(
        path="/accounts/password/reset/MQ/c0ffee-0123456789abcdef/",
        query="password=hunter2",
        HTTP_USER_AGENT='ZulipMobile/27 "quoted"',
    )
    through_granian(GranianWSGI(echo, access_log=True), dict(request))
    gunicorn = Lines()
    logger = AccessLogger(config())
    logger.access_log.handlers[:] = [gunicorn]
    logger.access(Response(status="200 OK", sent=2), Request(), request, datetime.timedelta(0))
    assert len(access_lines.lines) == 1
    ours, theirs = (
        re.sub(r" \d+ms ", " Nms ", x) for x in (access_lines.lines[0], *gunicorn.lines)
    )
    assert ours == theirs
    assert "/accounts/password/reset/MQ/<redacted>/" in ours
    assert "hunter2" not in ours


def test_no_access_line_in_json_mode(access_lines: Lines, echo: Echo) -> None:
    through_granian(GranianWSGI(echo, access_log=False), scope())
    assert access_lines.lines == []


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """As the test client does: Django would close the test's connection mid-transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_keyhouse_gets_secure_cookies_behind_a_loopback_proxy(
    user: User, keep_test_connection: None
) -> None:
    """The real app: the login page's CSRF cookie is Secure, as under gunicorn's defaults."""
    from keyhouse.wsgi import application

    finished: list[bool] = []

    def note(**_: Any) -> None:
        finished.append(True)

    request_finished.connect(note)
    try:
        sent = through_granian(
            GranianWSGI(application, access_log=False),
            scope(path="/login/", HTTP_X_FORWARDED_PROTO="https"),
        )
    finally:
        request_finished.disconnect(note)
    assert sent.status == 200, sent.body
    assert sent.as_bytes  # one bytes object, no per-chunk calls back into Python
    assert finished == [True]  # Django's close() ran
    cookies = [v.strip() for k, v in sent.headers if k.lower() == "set-cookie"]
    assert any(c.startswith("csrftoken=") and "Secure" in c for c in cookies), cookies
    plain = through_granian(GranianWSGI(application, access_log=False), scope(path="/login/"))
    cookies = [v for k, v in plain.headers if k.lower() == "set-cookie"]
    assert cookies and not any("Secure" in c for c in cookies), cookies
