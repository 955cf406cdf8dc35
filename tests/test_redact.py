"""keyhouse/redact.py: secret path segments (read off the URLconf) and query values.

Each case is a line keyhouse, Django or gunicorn really writes; the wiring into
the handlers and the JSON formatter is exercised here with the real LOGGING
config, and end to end by tests/e2e/test_no_secret_leaks.py.
"""

from __future__ import annotations

import io
import logging
import time

import orjson
import pytest
from django.conf import settings

from keyhouse.ops.log_format import JsonFormatter
from keyhouse.redact import REDACTED, RedactingFilter, redact_path, redact_query, redact_text

TOKEN = "dj0kk9-ec8aeb5e431cc5a05384fa27b3528de5"
LOGIN_TOKEN = "GxZRDVJ2BbFXvRgywcFmA3KafS34Ndu7"
RESET = f"/accounts/password/reset/MQ/{TOKEN}/"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (RESET, f"/accounts/password/reset/MQ/{REDACTED}/"),
        # Without its trailing slash (a mail client ate it) the link 404s, but still works.
        (RESET[:-1], f"/accounts/password/reset/MQ/{REDACTED}"),
        (RESET + "junk", f"/accounts/password/reset/MQ/{REDACTED}/junk"),
        (f"/accounts/login/subdomain/{LOGIN_TOKEN}", f"/accounts/login/subdomain/{REDACTED}"),
        ("/accounts/password/reset/MQ/set-password/", "/accounts/password/reset/MQ/set-password/"),
        ("/api/v1/users/me", "/api/v1/users/me"),
        ("/accounts/password/reset/", "/accounts/password/reset/"),
        ("/", "/"),
        ("", ""),
        (None, None),
    ],
)
def test_path_segments_named_token_in_the_urlconf_are_redacted(
    path: str | None, expected: str | None
) -> None:
    assert redact_path(path) == expected


def test_a_path_with_its_query() -> None:
    path = "/api/v1/fetch_api_key?username=a@example.com&password=hunter2&PassWord=x"
    assert redact_path(path) == (
        f"/api/v1/fetch_api_key?username=a@example.com&password={REDACTED}&PassWord={REDACTED}"
    )


@pytest.mark.parametrize(
    "key",
    ["password", "api_key", "mobile_flow_otp", "desktop_flow_otp", "otp_encrypted_api_key",
     "csrfmiddlewaretoken", "new_password1", "old_password", "access_token", "pass%77ord"],
)  # fmt: skip
def test_secret_query_keys(key: str) -> None:
    assert redact_query(f"a=1&{key}=s3cret&b=2") == f"a=1&{key}={REDACTED}&b=2"


def test_plain_keys_and_empty_values_stay() -> None:
    text = "username=alice&next=/login/&password=&realm=forum"
    assert redact_query(text) == text


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        # gunicorn's error log, the target in a repr
        (f"Invalid HTTP request line: 'GET {RESET}\\x7f HTTP/1.1'", TOKEN),
        ("Invalid HTTP request line: 'GET /api/v1/fetch_api_key?password=hunter2 HTTP/1.1'",
         "hunter2"),
        # Django's CSRF refusal, and keyhouse's own 500 line
        (f"Forbidden (CSRF cookie not set.): {RESET}", TOKEN),
        (f"Internal server error on GET /accounts/login/subdomain/{LOGIN_TOKEN}", LOGIN_TOKEN),
        # a full URL, e.g. in a traceback's repr of a request
        (f"<WSGIRequest: GET 'https://forum.example.com{RESET}'>", TOKEN),
        (f"redirect to /login/?next=/accounts/login/subdomain/{LOGIN_TOKEN}", LOGIN_TOKEN),
        ("body: username=a@example.com&password=hunter2", "hunter2"),
    ],
)  # fmt: skip
def test_free_text(line: str, secret: str) -> None:
    redacted = redact_text(line)
    assert secret not in redacted
    assert REDACTED in redacted
    assert redact_text(redacted) == redacted  # idempotent: the formatter may redact again


def test_text_without_secrets_is_unchanged() -> None:
    for line in ("Password reset email queued for user 3", "GET /api/v1/users/me 200",
                 "2026/12/03 HTTP/1.1 a=b", 'key "x" = 3'):  # fmt: skip
        assert redact_text(line) == line


def _capture(fmt: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(fmt)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"keyhouse.test_redact.{id(stream)}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_the_filter_redacts_arguments_and_tracebacks() -> None:
    logger, stream = _capture(logging.Formatter("%(message)s"))
    logger.warning("Forbidden (%s): %s", "CSRF cookie not set.", RESET)
    try:
        raise ValueError(f"bad link {RESET}")
    except ValueError:
        logger.exception("failed on %s", f"/accounts/login/subdomain/{LOGIN_TOKEN}")
    out = stream.getvalue()
    assert TOKEN not in out and LOGIN_TOKEN not in out
    assert out.count(REDACTED) == 3
    assert "ValueError: bad link /accounts/password/reset/MQ/" in out


def test_the_json_formatter_redacts_message_extras_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())  # no filter: the formatter alone must hold
    logger = logging.getLogger("keyhouse.test_redact.json")
    logger.propagate, logger.handlers = False, [handler]
    try:
        raise ValueError(RESET)
    except ValueError:
        logger.error("on %s", RESET, exc_info=True, extra={"path": RESET, "parts": [RESET]})
    entry = orjson.loads(stream.getvalue())
    assert TOKEN not in stream.getvalue()
    assert entry["message"] == f"on /accounts/password/reset/MQ/{REDACTED}/"
    assert entry["path"] == entry["parts"][0] == f"/accounts/password/reset/MQ/{REDACTED}/"
    assert "ValueError" in entry["exc"]


def test_the_logging_config_puts_the_filter_on_every_handler() -> None:
    for name, handler in settings.LOGGING["handlers"].items():
        assert "redact" in handler.get("filters", []), name
    root = logging.getLogger()
    assert any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters)


def test_bench_redacting_a_line_is_cheap() -> None:
    """Printed figures, and a generous bound: it runs on every log line."""
    lines = [
        '127.0.0.1 "GET /api/v1/users/me HTTP/1.1" 200 512 3ms "ZulipMobile/27.1"',
        "Password reset email queued for user 3",
        f"Forbidden (CSRF cookie not set.): {RESET}",
    ]
    n = 20000
    for line in lines:
        started = time.perf_counter()
        for _ in range(n):
            redact_text(line)
        micros = (time.perf_counter() - started) / n * 1e6
        print(f"redact_text: {micros:.2f} µs for {line[:40]!r}")
        assert micros < 200  # generous: a regression to something silly, not a timing
    started = time.perf_counter()
    for _ in range(n):
        redact_path("/api/v1/users/me")
    print(f"redact_path: {(time.perf_counter() - started) / n * 1e6:.2f} µs for /api/v1/users/me")
