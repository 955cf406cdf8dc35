"""Database guards for the bad-input tests: "nothing written", and PostgreSQL's NUL rule.

The suite runs on SQLite, which happily stores and compares strings containing
NUL; PostgreSQL refuses them with an error, which would reach the client as a
500. ``postgres_text_rules`` makes SQLite behave like PostgreSQL here, so a NUL
that slips through to a query fails the test on any database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import DataError, connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from keyhouse.users.models import User

WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def guarded_models() -> list[type[Model]]:
    """Every model a request could write: keyhouse's own apps and sessions."""
    return [
        model
        for model in apps.get_models()
        if model._meta.app_config.name.startswith("keyhouse.")
        or model._meta.app_label == "sessions"
    ]


def _values(params: Any) -> Sequence[Any]:
    if params is None:
        return ()
    if isinstance(params, Mapping):
        return list(params.values())
    return list(params)


def _refuse_nul(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    batches = _values(params) if many else [params]
    for batch in batches:
        for value in _values(batch):
            if isinstance(value, str) and "\x00" in value:
                raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return execute(sql, params, many, context)


@contextmanager
def postgres_text_rules() -> Iterator[None]:
    """Refuse query parameters containing NUL, as psycopg does against PostgreSQL."""
    with connection.execute_wrapper(_refuse_nul):
        yield


@dataclass(frozen=True)
class Snapshot:
    """Row counts of every guarded model, and one user's credentials."""

    counts: dict[str, int]
    credentials: tuple[str, str] | None

    @classmethod
    def take(cls, user: User | None = None) -> Snapshot:
        counts = {model._meta.label: model._default_manager.count() for model in guarded_models()}
        credentials = None
        if user is not None:
            fresh = User.objects.get(pk=user.pk)
            credentials = (fresh.password, fresh.api_key)
        return cls(counts, credentials)


@contextmanager
def nothing_written(user: User | None = None) -> Iterator[None]:
    """Fail unless the block leaves every row count, and the user's hash and key, as they were.

    Also fails on any write statement at all, so an UPDATE that changes no count
    (or a write to a table with no model) is caught too.
    """
    before = Snapshot.take(user)
    with CaptureQueriesContext(connection) as queries:
        yield
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITE_VERBS)]
    assert writes == [], writes
    after = Snapshot.take(user)
    assert after.counts == before.counts
    assert after.credentials == before.credentials, "password hash or API key changed"
