"""The access log (ops/access_log.py): gunicorn's own line, built from eight fields only.

AccessLogger replaces gunicorn's generic formatting with a fixed one for speed,
so operators' log parsers must not notice: for the same request, its line must be
exactly the line gunicorn's Logger writes with ACCESS_LOG_FORMAT.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from keyhouse.ops.access_log import ACCESS_LOG_FORMAT, AccessLogger

API_KEY_BASIC = "Basic aGFtbGV0QGV4YW1wbGUuY29tOnNlY3JldC1hcGkta2V5LTEyMzQ1Ng=="


@dataclass
class Response:
    """What gunicorn's worker passes as ``resp``: the fields its Logger reads."""

    status: str | int = "200 OK"
    sent: int | None = 1234
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("Content-Type", "text/json")])


@dataclass
class Request:
    """What gunicorn passes as ``req``: the Logger reads only its headers."""

    headers: list[tuple[str, str]] = field(default_factory=list)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def config(accesslog: str | None = "-") -> Config:
    cfg = Config()
    cfg.set("accesslog", accesslog)
    cfg.set("access_log_format", ACCESS_LOG_FORMAT)
    return cfg


@pytest.fixture
def lines() -> Iterator[Lines]:
    """Captures the gunicorn.access logger; gunicorn's setup rewires it, so restore it after."""
    saved = {}
    for name in ("gunicorn.access", "gunicorn.error"):
        log = logging.getLogger(name)
        saved[name] = (list(log.handlers), log.level, log.propagate)
    handler = Lines()
    yield handler
    for name, (handlers, level, propagate) in saved.items():
        log = logging.getLogger(name)
        log.handlers[:] = handlers
        log.setLevel(level)
        log.propagate = propagate


def both_lines(
    lines: Lines, resp: Response, req: Request, environ: dict[str, Any], accesslog: str | None = "-"
) -> tuple[list[str], list[str]]:
    """What gunicorn's Logger writes, and what keyhouse's writes, for one request."""
    gunicorn_logger = glogging.Logger(config(accesslog))
    keyhouse_logger = AccessLogger(config(accesslog))
    gunicorn_logger.access_log.addHandler(lines)  # one logging.Logger, shared by both
    took = datetime.timedelta(seconds=1, microseconds=234_567)
    gunicorn_logger.access(resp, req, environ, took)
    theirs, lines.lines = lines.lines, []
    keyhouse_logger.access(resp, req, environ, took)
    return theirs, lines.lines


def environ(**overrides: Any) -> dict[str, Any]:
    """A WSGI environ as gunicorn builds it for a client's API request."""
    base = {
        "REMOTE_ADDR": "203.0.113.9",
        "REMOTE_PORT": "51234",
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/fetch_api_key",
        "QUERY_STRING": "",
        "RAW_URI": "/api/v1/fetch_api_key",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "chat.example.org",
        "HTTP_USER_AGENT": "ZulipMobile/27.230 (Android 14)",
        "HTTP_AUTHORIZATION": API_KEY_BASIC,
        "wsgi.url_scheme": "https",
    }
    return {**base, **overrides}


def request_headers(env: dict[str, Any]) -> Request:
    return Request(
        [(k[5:].replace("_", "-").title(), v) for k, v in env.items() if k.startswith("HTTP_")]
    )


CASES = {
    "normal": (environ(), Response()),
    "status-as-int": (environ(), Response(status=200)),
    "error-status": (environ(), Response(status="429 Too Many Requests", sent=88)),
    "quotes-in-user-agent": (
        environ(HTTP_USER_AGENT='Mozilla/5.0 "quoted" (X11; \\"escaped\\")'),
        Response(),
    ),
    "no-user-agent": (
        {k: v for k, v in environ().items() if k != "HTTP_USER_AGENT"},
        Response(status="401 Unauthorized"),
    ),
    "query-string": (
        environ(
            REQUEST_METHOD="GET",
            PATH_INFO="/api/v1/fetch_api_key",
            QUERY_STRING="username=hamlet%40example.com&password=hunter2",
            RAW_URI="/api/v1/fetch_api_key?username=hamlet%40example.com&password=hunter2",
        ),
        Response(status="405 Method Not Allowed"),
    ),
    "quote-in-path": (
        environ(PATH_INFO='/login/"x', RAW_URI="/login/%22x", REQUEST_METHOD="GET"),
        Response(status="404 Not Found"),
    ),
    "nothing-sent": (environ(REQUEST_METHOD="HEAD"), Response(sent=None)),
    "ipv6-client-http10": (
        environ(REMOTE_ADDR="2001:db8::7", SERVER_PROTOCOL="HTTP/1.0"),
        Response(),
    ),
    "no-remote-addr": (
        {k: v for k, v in environ().items() if k != "REMOTE_ADDR"},
        Response(),
    ),
}


@pytest.mark.parametrize(("env", "resp"), CASES.values(), ids=CASES.keys())
def test_line_is_gunicorns_own(lines: Lines, env: dict[str, Any], resp: Response) -> None:
    theirs, ours = both_lines(lines, resp, request_headers(env), env)
    assert len(theirs) == 1
    assert ours == theirs


def test_line_fields(lines: Lines) -> None:
    """Pin the format itself too, so a change to both at once is seen."""
    env = environ(HTTP_USER_AGENT='Bot "1"')
    _, ours = both_lines(lines, Response(status="200 OK"), request_headers(env), env)
    assert ours == [
        '203.0.113.9 "POST /api/v1/fetch_api_key HTTP/1.1" 200 1234 1234ms "Bot \\"1\\""'
    ]


def test_query_string_never_logged(lines: Lines) -> None:
    """fetch_api_key accepts the password in the query string; the line must not carry it."""
    env, resp = CASES["query-string"]
    _, ours = both_lines(lines, resp, request_headers(env), env)
    assert ours == [
        '203.0.113.9 "GET /api/v1/fetch_api_key HTTP/1.1" 405 1234 1234ms'
        ' "ZulipMobile/27.230 (Android 14)"'
    ]
    assert "hunter2" not in ours[0] and "username" not in ours[0]


def test_authorization_never_logged(lines: Lines) -> None:
    env = environ()
    req = request_headers(env)
    assert ("Authorization", API_KEY_BASIC) in req.headers
    _, ours = both_lines(lines, Response(), req, env)
    [line] = ours
    assert API_KEY_BASIC not in line and API_KEY_BASIC.split()[1] not in line
    assert "hamlet" not in line  # nor the decoded user, which gunicorn's %(u)s would show


def test_nothing_written_when_access_log_is_off(lines: Lines) -> None:
    """JSON logging turns gunicorn's access log off (ops/serve.py): then neither writes."""
    env = environ()
    theirs, ours = both_lines(lines, Response(), request_headers(env), env, accesslog=None)
    assert theirs == ours == []


def test_secret_path_segments_redacted(lines: Lines) -> None:
    """A reset link or desktop-login token in the path: the line names the page, not the token."""
    token = "dj0kk9-ec8aeb5e431cc5a05384fa27b3528de5"
    env = environ(REQUEST_METHOD="GET", PATH_INFO=f"/accounts/password/reset/MQ/{token}/")
    _, ours = both_lines(lines, Response(status="302 Found"), request_headers(env), env)
    [line] = ours
    assert token not in line
    assert '"GET /accounts/password/reset/MQ/<redacted>/ HTTP/1.1" 302' in line


def test_gunicorns_error_log_is_redacted(lines: Lines) -> None:
    """It quotes refused request lines, query and all ("Invalid HTTP request line: …")."""
    keyhouse_logger = AccessLogger(config())
    keyhouse_logger.error_log.addHandler(lines)
    keyhouse_logger.setup(config())  # a config reload must not stack a second filter
    keyhouse_logger.warning(
        "Invalid request from ip=%s: %s",
        "203.0.113.9",
        "Invalid HTTP request line: 'GET /api/v1/fetch_api_key?password=hunter2\\x7f HTTP/1.1'",
    )
    [line] = lines.lines
    assert "hunter2" not in line and "password=<redacted>" in line
    assert len(keyhouse_logger.error_log.filters) == 1
