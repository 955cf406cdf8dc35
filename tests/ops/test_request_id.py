"""Request ids: echoed or made up, on every log line; JSON logs carry no secrets."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.ops.log_format import JsonFormatter
from keyhouse.ops.request_id import RequestIdFilter, request_id_var
from keyhouse.users.models import User
from tests.conftest import PASSWORD


def test_a_valid_incoming_id_is_echoed(client: Client, db: None) -> None:
    response = client.get("/api/v1/server_settings", HTTP_X_REQUEST_ID="lb-7f3a.42:req_9")
    assert response["X-Request-ID"] == "lb-7f3a.42:req_9"


def test_an_id_is_generated_when_none_comes(client: Client, db: None) -> None:
    first = client.get("/api/v1/server_settings")["X-Request-ID"]
    second = client.get("/health")["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


@pytest.mark.parametrize(
    "incoming",
    ["has space", "x" * 65, "line\nbreak", 'quote"', "", "ünï", "a;b", "<script>"],
)
def test_an_invalid_incoming_id_is_replaced(client: Client, db: None, incoming: str) -> None:
    echoed = client.get("/health", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"]
    assert echoed != incoming
    assert len(echoed) == 32 and int(echoed, 16) >= 0


def test_errors_carry_the_id_too(client: Client, db: None) -> None:
    response = client.get("/api/v1/no-such-endpoint", HTTP_X_REQUEST_ID="abc")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "abc"


def test_the_filter_adds_the_current_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    token = request_id_var.set("req-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    assert record.request_id == "req-1"  # type: ignore[attr-defined]
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    RequestIdFilter().filter(outside)
    assert outside.request_id == "-"  # type: ignore[attr-defined]


# --- JSON logs ----------------------------------------------------------------------


@pytest.fixture
def json_log(settings: Settings) -> Iterator[io.StringIO]:
    """The root logger also writes JSON lines to a buffer, as LOG_FORMAT = "json" does."""
    settings.LOG_FORMAT = "json"
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line]


def test_json_access_line_has_the_request_and_no_secret(
    client: Client, user: User, json_log: io.StringIO
) -> None:
    """Credentials in the Authorization header, the query string and the body stay out."""
    api_key = user.api_key
    token = base64.b64encode(f"{user.delivery_email}:{api_key}".encode()).decode()
    response = client.post(
        f"/api/v1/fetch_api_key?password={PASSWORD}&note=querysecret",
        {"username": user.delivery_email, "password": PASSWORD},
        HTTP_AUTHORIZATION=f"Basic {token}",
        HTTP_X_REQUEST_ID="req-under-test",
        REMOTE_ADDR="192.0.2.10",
    )
    assert response.status_code == 200
    output = json_log.getvalue()
    access = [e for e in lines(json_log) if e["logger"] == "keyhouse.access"]
    assert len(access) == 1
    entry = access[0]
    assert entry["request_id"] == "req-under-test"
    assert entry["method"] == "POST"
    assert entry["route"] == "/api/v1/fetch_api_key"
    assert entry["status"] == 200
    assert isinstance(entry["duration_ms"], float)
    assert entry["client_ip"] == "192.0.2.10"
    for secret in (PASSWORD, api_key, token, "querysecret", "Basic "):
        assert secret not in output


def test_no_access_line_in_plain_mode(
    client: Client, db: None, json_log: io.StringIO, settings: Settings
) -> None:
    """gunicorn writes the access log then; a second line per request would be noise."""
    settings.LOG_FORMAT = "plain"
    client.get("/health")
    assert not [e for e in lines(json_log) if e["logger"] == "keyhouse.access"]


def test_log_lines_inside_a_request_carry_its_id(json_log: io.StringIO) -> None:
    token = request_id_var.set("inside-1")
    try:
        logging.getLogger("keyhouse.test").warning("something happened", extra={"realm": "x"})
    finally:
        request_id_var.reset(token)
    (entry,) = lines(json_log)
    assert entry["request_id"] == "inside-1"
    assert entry["message"] == "something happened"
    assert entry["realm"] == "x"
    assert entry["level"] == "WARNING"


def test_djangos_request_extra_is_never_written(
    client: Client, db: None, json_log: io.StringIO
) -> None:
    """Its repr carries the query string, where fetch_api_key accepts a password."""
    from django.test import RequestFactory

    request = RequestFactory().get("/api/v1/fetch_api_key?password=hunter2-secret")
    # django.request logs only at CRITICAL in keyhouse (settings.LOGGING); the
    # formatter must be safe whatever the level.
    logging.getLogger("django.request").critical(
        "Internal Server Error: %s", request.path, extra={"status_code": 500, "request": request}
    )
    (entry,) = lines(json_log)
    assert "hunter2-secret" not in json_log.getvalue()
    assert entry["status_code"] == 500


def test_keyhouse_log_format_json_configures_logging(tmp_path: Path) -> None:
    """The environment variable reaches settings.LOGGING: a real process logs JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYHOUSE_", "PYTEST_"))}
    env |= {
        "KEYHOUSE_LOG_FORMAT": "json",
        "KEYHOUSE_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "keyhouse.settings",
    }
    code = "import django, logging; django.setup(); logging.getLogger('keyhouse.x').warning('hi')"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stderr.strip().splitlines()[-1])
    assert entry["message"] == "hi"
    assert entry["logger"] == "keyhouse.x"
    assert entry["request_id"] == "-"


def test_an_unknown_log_format_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYHOUSE_", "PYTEST_"))}
    env |= {"KEYHOUSE_LOG_FORMAT": "xml", "KEYHOUSE_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import keyhouse.settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "LOG_FORMAT" in result.stderr
