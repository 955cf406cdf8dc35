"""``keyhouse audit list`` and ``keyhouse audit prune``: how operators read the trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pytest_django.fixtures import Settings

from keyhouse.auth.models import LoginAttempt
from keyhouse.cli.audit import parse_since
from keyhouse.cli.base import CliError
from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from tests.conftest import Cli

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def attempt(
    ago: timedelta, username: str, realm: Realm | None = None, **kw: object
) -> LoginAttempt:
    fields: dict[str, object] = {
        "method": "password",
        "outcome": "failure",
        "reason": "AUTHENTICATION_FAILED",
        "client_ip": "192.0.2.1",
        "user_agent": "curl/8.5",
    }
    fields.update(kw)
    return LoginAttempt.objects.create(
        timestamp=datetime.now(UTC) - ago,
        realm=realm,
        subdomain=realm.subdomain if realm else "",
        username=username,
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def chat(realm: Realm) -> Realm:
    return Realm.objects.create(subdomain="chat", name="Chat", authentication_methods=["email"])


@pytest.fixture
def trail(realm: Realm, chat: Realm, user: User) -> None:
    """Four attempts: 10 min, 90 min, 3 h and 10 days ago."""
    attempt(
        timedelta(minutes=10), "HAMLET@example.com", realm, user=user, outcome="success", reason=""
    )
    attempt(timedelta(minutes=90), "ghost@example.com", realm)
    attempt(timedelta(hours=3), "hamlet@example.com", chat)
    attempt(timedelta(days=10), "hamlet@example.com", realm, user=user)


def listed(cli: Cli, *args: str) -> list[tuple[str, str]]:
    code, out, err = cli("audit", "list", "--json", *args)
    assert (code, err) == (0, "")
    return [(row["realm"], row["username"]) for row in json.loads(out)]


def test_list_json_is_newest_first_with_every_field(cli: Cli, trail: None, user: User) -> None:
    code, out, _ = cli("audit", "list", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [(r["realm"], r["username"]) for r in rows] == [
        ("", "HAMLET@example.com"),
        ("", "ghost@example.com"),
        ("chat", "hamlet@example.com"),
        ("", "hamlet@example.com"),
    ]
    first = rows[0]
    newest = LoginAttempt.objects.order_by("-timestamp").first()
    assert newest is not None
    assert first == {
        "time": newest.timestamp.isoformat(),
        "realm": "",
        "username": "HAMLET@example.com",
        "user_id": user.id,
        "ip": "192.0.2.1",
        "method": "password",
        "outcome": "success",
        "reason": "",
        "user_agent": "curl/8.5",
    }
    assert rows[1]["user_id"] is None and rows[1]["reason"] == "AUTHENTICATION_FAILED"


def test_list_by_realm(cli: Cli, trail: None) -> None:
    assert listed(cli, "--realm", "chat") == [("chat", "hamlet@example.com")]
    assert [u for _, u in listed(cli, "--realm", "")] == [
        "HAMLET@example.com",
        "ghost@example.com",
        "hamlet@example.com",
    ]
    assert listed(cli, "--realm", "nosuch") == []


def test_list_keeps_entries_of_deleted_realms(cli: Cli, trail: None, chat: Realm) -> None:
    chat.delete()
    assert listed(cli, "--realm", "chat") == [("chat", "hamlet@example.com")]


def test_list_by_user_matches_typed_name_and_account_email(cli: Cli, trail: None) -> None:
    assert listed(cli, "--user", "Hamlet@Example.com") == [
        ("", "HAMLET@example.com"),
        ("chat", "hamlet@example.com"),
        ("", "hamlet@example.com"),
    ]
    assert listed(cli, "--user", "ghost@example.com") == [("", "ghost@example.com")]


def test_list_user_and_realm_combine(cli: Cli, trail: None) -> None:
    assert listed(cli, "--user", "hamlet@example.com", "--realm", "chat") == [
        ("chat", "hamlet@example.com")
    ]


@pytest.mark.parametrize(
    ("since", "count"),
    [("30m", 1), ("2h", 2), ("1d", 3), ("11d", 4), ("1w", 3), ("7200s", 2)],
)
def test_list_since_duration(cli: Cli, trail: None, since: str, count: int) -> None:
    assert len(listed(cli, "--since", since)) == count


def test_list_since_iso(cli: Cli, trail: None) -> None:
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    assert len(listed(cli, "--since", two_hours_ago.isoformat())) == 2
    naive_utc = two_hours_ago.replace(tzinfo=None).isoformat(timespec="seconds")
    assert len(listed(cli, "--since", naive_utc)) == 2
    zulu = two_hours_ago.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(listed(cli, "--since", zulu)) == 2
    five_days_ago = (datetime.now(UTC) - timedelta(days=5)).date().isoformat()
    assert len(listed(cli, "--since", five_days_ago)) == 3


@pytest.mark.parametrize("bad", ["yesterday", "5x", "-2h", "2024-13-01", "", "99999999999999d"])
def test_list_since_rejects_bad_values(cli: Cli, trail: None, bad: str) -> None:
    code, out, err = cli("audit", "list", f"--since={bad}")
    assert (code, out) == (1, "")
    assert err.startswith("keyhouse: error: --since: expected an ISO 8601 date")
    assert err.endswith(f"got {bad!r}\n") and err.count("\n") == 1


def test_parse_since() -> None:
    assert parse_since("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_since(" 7d ", NOW) == NOW - timedelta(days=7)
    assert parse_since("2025-05-01", NOW) == datetime(2025, 5, 1, tzinfo=UTC)
    assert parse_since("2025-05-01T10:00:00+02:00", NOW) == datetime(2025, 5, 1, 8, tzinfo=UTC)
    with pytest.raises(CliError):
        parse_since("7 days", NOW)


def test_list_limit(cli: Cli, trail: None) -> None:
    assert listed(cli, "--limit", "2") == [("", "HAMLET@example.com"), ("", "ghost@example.com")]
    code, _, err = cli("audit", "list", "--limit", "0")
    assert code == 1 and err == "keyhouse: error: --limit must be at least 1, got 0\n"


def test_list_limit_defaults_to_100(cli: Cli, realm: Realm) -> None:
    LoginAttempt.objects.bulk_create(
        LoginAttempt(username=f"u{i}@example.com", method="password", outcome="failure")
        for i in range(105)
    )
    assert len(listed(cli)) == 100


def test_list_table(cli: Cli, trail: None, user: User) -> None:
    code, out, _ = cli("audit", "list", "--limit", "2")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].split() == [
        "TIME",
        "REALM",
        "USERNAME",
        "USER_ID",
        "IP",
        "OUTCOME",
        "REASON",
        "USER_AGENT",
    ]
    assert lines[1].split()[1:] == [
        '""',
        "HAMLET@example.com",
        str(user.id),
        "192.0.2.1",
        "success",
        "-",
        "curl/8.5",
    ]
    assert lines[2].split()[1:] == [
        '""',
        "ghost@example.com",
        "-",
        "192.0.2.1",
        "failure",
        "AUTHENTICATION_FAILED",
        "curl/8.5",
    ]
    assert datetime.fromisoformat(lines[1].split()[0]).tzinfo is not None


def test_list_table_defuses_terminal_escapes_and_truncates_agents(cli: Cli, realm: Realm) -> None:
    attempt(timedelta(0), "evil\x1b[2J@example.com", realm, user_agent="A" * 60, client_ip=None)
    code, out, _ = cli("audit", "list")
    row = out.splitlines()[1].split()
    assert code == 0 and "\x1b" not in out
    assert row[2] == "evil\\x1b[2J@example.com"
    assert row[4] == "-"
    assert row[-1] == "A" * 39 + "\u2026"


def test_list_empty(cli: Cli, db: None) -> None:
    assert cli("audit", "list", "--json") == (0, "[]\n", "")
    code, out, _ = cli("audit", "list")
    assert code == 0 and out.splitlines() == [
        "TIME  REALM  USERNAME  USER_ID  IP  OUTCOME  REASON  USER_AGENT"
    ]


def test_prune(cli: Cli, realm: Realm, settings: Settings) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    attempt(timedelta(days=31), "old@example.com", realm)
    attempt(timedelta(days=29), "recent@example.com", realm)
    assert cli("audit", "prune") == (
        0,
        "pruned 1 login attempts older than 30 days\n",
        "",
    )
    assert list(LoginAttempt.objects.values_list("username", flat=True)) == ["recent@example.com"]


def test_prune_with_zero_retention_keeps_everything(
    cli: Cli, realm: Realm, settings: Settings
) -> None:
    settings.AUDIT_RETENTION_DAYS = 0
    attempt(timedelta(days=3650), "ancient@example.com", realm)
    code, out, _ = cli("audit", "prune")
    assert code == 0 and "nothing pruned" in out
    assert LoginAttempt.objects.count() == 1
