"""``LOG_FORMAT = "json"``: one JSON object per line, for log collectors.

The standard library plus orjson (already a dependency, used for every API
body) rather than python-json-logger: the whole formatter is the few lines
below, and one fewer dependency is one fewer thing to audit and upgrade.

Every text field goes through keyhouse/redact.py (the message, string extras,
the traceback), so a JSON line holds no secret even from a handler without the
``redact`` filter.

Imported by the LOGGING config before the apps are ready: no models here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from keyhouse.redact import redact_text

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
# Extras never written: Django's ``request`` (its repr carries the query string,
# where fetch_api_key accepts a password).
_DROPPED_EXTRAS = frozenset({"request"})


def _plain(value: Any) -> Any:
    """JSON-native values as they are, anything else as its str()."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return redact_text(str(value))


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id, pid, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or "-",
            "pid": record.process,  # which gunicorn worker
        }
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRS or key in _DROPPED_EXTRAS or key in entry:
                continue
            entry[key] = _plain(value)
        if record.exc_info or record.exc_text:  # exc_text: what the redact filter made of it
            entry["exc"] = redact_text(
                record.exc_text or self.formatException(record.exc_info or (None, None, None))
            )
        if record.stack_info:
            entry["stack"] = redact_text(self.formatStack(record.stack_info))
        try:
            return orjson.dumps(entry).decode()
        except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
            return orjson.dumps(
                {k: v if isinstance(v, str) else str(v) for k, v in entry.items()}
            ).decode()
