"""The database is down or hung: an outage and a database error at once."""

from __future__ import annotations

from django.db import OperationalError

from keyhouse.outages import DependencyUnavailable


class DatabaseUnavailable(DependencyUnavailable, OperationalError):
    """Raised by the database backend instead of waiting on a database known to be bad.

    Both bases on purpose: code that handles ``OperationalError`` (a retry, a
    rollback) keeps working, and the API answers it as the 503 of any outage.
    """

    def __init__(self, retry_after: int = 5) -> None:
        DependencyUnavailable.__init__(self, "database", retry_after)
