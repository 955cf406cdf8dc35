"""The connection options that bound every wait on PostgreSQL (read by settings.py).

No Django import here: settings.py calls this while settings are being built.
"""

from __future__ import annotations

from typing import Any

ENGINE = "keyhouse.db.postgresql"


def postgres_options(
    options: dict[str, Any], connect_timeout: float, statement_timeout: float
) -> dict[str, Any]:
    """``options`` (from the URL) plus libpq timeouts and keepalives.

    The timeouts are these settings' whatever the URL says, because the backend's
    watchdog and connect retries follow the settings too:

    - ``connect_timeout``: libpq's, per attempt (whole seconds, 2 at least);
      ``keyhouse.db.postgresql`` retries a refusing server within the same budget.
    - ``statement_timeout`` (server side, milliseconds) via the startup ``options``,
      after any the URL gives (the last ``-c`` wins); ``0`` turns it off.
    - TCP keepalives (the URL may change them): a server whose host vanished (no
      RST, no FIN) is noticed on an idle pooled connection within about a minute,
      not the kernel's two hours.
    """
    merged: dict[str, Any] = {
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        **options,
        "connect_timeout": max(2, round(connect_timeout)),
    }
    startup = f"-c statement_timeout={round(statement_timeout * 1000)}"
    merged["options"] = f"{options['options']} {startup}" if options.get("options") else startup
    return merged
