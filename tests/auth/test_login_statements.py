"""What one login costs the stores: statements, round trips, commits (docs/performance.md,
"What a login writes").

Counted below the ORM (tests/round_trips.py): SQLite's trace callback, libpq's protocol
trace, every command a redis-py connection sends. Once per rate-limit store; the
PostgreSQL + Redis run (`make test`, second pass) counts PostgreSQL's. The figures are
the table in docs/performance.md: a change that adds a round trip fails here, and the
table must follow.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.auth.ratelimit import stores
from keyhouse.users.models import User
from tests.conftest import PASSWORD, age
from tests.round_trips import Counts, counted

URL = "/api/v1/fetch_api_key"
IP = "203.0.113.7"  # not loopback: the per-IP limit counts it too

# (database, rate-limit store, outcome) → (database round trips, commits, Redis round trips)
EXPECTED = {
    ("sqlite", "database", "success"): (7, 4, 0),
    ("sqlite", "database", "failure"): (6, 3, 0),
    ("sqlite", "redis", "success"): (4, 2, 2),
    ("sqlite", "redis", "failure"): (4, 2, 1),
    ("postgresql", "database", "success"): (17, 2, 0),
    ("postgresql", "database", "failure"): (12, 2, 0),
    ("postgresql", "redis", "success"): (4, 2, 2),
    ("postgresql", "redis", "failure"): (4, 2, 1),
}


def matching(counts: Counts, pattern: str) -> list[str]:
    return [s for s in counts.statements if re.match(pattern, s.lstrip(), re.IGNORECASE)]


@pytest.mark.django_db(transaction=True)  # autocommit, as under a server: no test transaction
@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_one_login_costs_what_the_docs_say(
    user: User,
    outcome: str,
    ratelimit_store: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.AUDIT_PRUNE_EVERY = 0
    # The database stores delete expired hits with 1 % of hits, at random: one extra
    # statement in about one run in fifty. Counted here is the login itself.
    monkeypatch.setattr(stores.random, "random", lambda: 1.0)
    age(user)  # old enough for the new-login email (sent off the request, no query)
    client = Client()
    # A first attempt compiles the prepared queries and loads the Redis script.
    client.post(URL, {"username": user.delivery_email, "password": "warm-up"}, REMOTE_ADDR=IP)
    password = PASSWORD if outcome == "success" else "wrong"
    with counted() as counts:
        response = client.post(
            URL, {"username": user.delivery_email, "password": password}, REMOTE_ADDR=IP
        )
    assert response.status_code == (200 if outcome == "success" else 401)
    found = (counts.round_trips, counts.commits, counts.redis_round_trips)
    expected = EXPECTED[(connection.vendor, ratelimit_store, outcome)]
    assert found == expected, "\n".join([counts.summary(), *counts.statements])

    # No redundant reads: the realm once, the account once (limits, backend, audit).
    assert len(matching(counts, r'SELECT .* FROM "realms_realm"')) == 1
    assert len(matching(counts, r'SELECT .* FROM "users_user"')) == 1
    # One audit entry: written before the password check, its outcome after it.
    assert len(matching(counts, r'INSERT INTO "keyhouse_auth_loginattempt"')) == 1
    assert len(matching(counts, r'UPDATE "keyhouse_auth_loginattempt"')) == 1
    if connection.vendor == "sqlite" and ratelimit_store == "database":
        # Both limits (IP, username) in one statement; their figures in one more.
        assert len(matching(counts, r"INSERT INTO keyhouse_ratelimit_hit")) == 1
        assert len(matching(counts, r"SELECT 0, count\(\*\)")) == 1
    if ratelimit_store == "redis":
        assert counts.redis_commands[0].count("EVALSHA") == 1  # both limits, one script
