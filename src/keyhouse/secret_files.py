"""A secret given inline, or as a file (the ``*_FILE`` settings) read each time it is used.

A file keeps the secret out of the config file (mode 0600, owned by keyhouse), and
reading it at use means rotating it needs no restart. The file wins when both are
given. Pure: no Django, so the config table and every sign-in method can share it.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger("keyhouse.secrets")


def read_secret(value: str | None, path: str | None) -> str:
    """The file's content (stripped) if ``path`` is set, else ``value``; "" if unreadable.

    An unreadable file is logged by path (never by content) and yields "", which the
    caller treats as "not configured": a clear refusal instead of a 500.
    """
    if path:
        try:
            return Path(path).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            logger.error("secret file %s cannot be read: %s", path, type(exc).__name__)
            return ""
    return value or ""
