"""``keyhouse admin create``: how an operator gets into /admin/ in the first place.

The password comes from standard input only; a refusal is one line on stderr and
changes nothing (no half-made staff account without the password asked for).
"""

from __future__ import annotations

import pytest
from django.test import Client

from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import User

STAFF_PASSWORD = "Admin-Lantern-Quartz-64"


@pytest.fixture
def root(db: None) -> Realm:
    return Realm.objects.create(subdomain="", name="Root", authentication_methods=["email"])


def create_args(email: str = "ops@example.com", *extra: str) -> list[str]:
    return [
        "admin",
        "create",
        "--email",
        email,
        "--full-name",
        "Operator",
        "--password-stdin",
        *extra,
    ]


def assert_one_line_error(code: int, err: str, message: str) -> None:
    assert code == 1
    assert err.startswith("keyhouse: error: ") and err.count("\n") == 1
    assert message in err
    assert "Traceback" not in err


def test_creates_a_staff_user_in_the_root_realm(cli, root: Realm) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(*create_args(), stdin=STAFF_PASSWORD + "\n")
    assert (code, err) == (0, "")
    user = User.objects.get(delivery_email="ops@example.com")
    assert out.startswith(f"created staff user ops@example.com (id {user.id}) in realm ''")
    assert user.realm == root and user.full_name == "Operator"
    assert user.is_staff and user.is_superuser and user.is_active
    assert user.check_password(STAFF_PASSWORD)  # the trailing newline is not part of it
    assert STAFF_PASSWORD not in out


def test_the_new_staff_user_can_log_in_to_the_admin(cli, root: Realm) -> None:  # type: ignore[no-untyped-def]
    cli(*create_args(), stdin=STAFF_PASSWORD)
    client = Client()
    response = client.post(
        "/admin/login/", {"username": "ops@example.com", "password": STAFF_PASSWORD}
    )
    assert response.status_code == 302
    assert "Site administration" in client.get("/admin/").content.decode()


def test_promotes_an_existing_user_and_sets_the_password(cli, root: Realm) -> None:  # type: ignore[no-untyped-def]
    existing = create_user(root, "Ops@Example.com", "Original Name")  # no password yet
    code, out, _ = cli(*create_args(), stdin=STAFF_PASSWORD)
    assert code == 0 and out.startswith("promoted staff user Ops@Example.com")
    existing.refresh_from_db()
    assert existing.is_staff and existing.is_superuser
    assert existing.check_password(STAFF_PASSWORD)
    assert existing.full_name == "Original Name"
    assert User.objects.count() == 1


def test_other_realm(cli, root: Realm) -> None:  # type: ignore[no-untyped-def]
    chat = Realm.objects.create(subdomain="chat", name="Chat", authentication_methods=["email"])
    code, out, _ = cli(*create_args("ops@example.com", "--realm", "chat"), stdin=STAFF_PASSWORD)
    assert code == 0 and "in realm 'chat'" in out
    assert User.objects.get(delivery_email="ops@example.com").realm == chat


def test_weak_password_creates_nothing(cli, root: Realm) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(*create_args(), stdin="password")
    assert_one_line_error(code, err, "too weak")
    assert not User.objects.exists()


def test_weak_password_promotes_nothing(cli, root: Realm) -> None:  # type: ignore[no-untyped-def]
    existing = create_user(root, "ops@example.com", "Operator", password="Member-Pass-Word-19")
    code, _, err = cli(*create_args(), stdin="password")
    assert_one_line_error(code, err, "too weak")
    existing.refresh_from_db()
    assert not existing.is_staff and existing.check_password("Member-Pass-Word-19")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (create_args("ops@example.com", "--realm", "missing"), STAFF_PASSWORD, "no realm"),
        (create_args("not-an-email"), STAFF_PASSWORD, "invalid email address"),
        (create_args(), "", "no password on standard input"),
    ],
    ids=["unknown-realm", "bad-email", "empty-stdin"],
)
def test_refusals_are_one_line(cli, root: Realm, args: list[str], stdin: str, message: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(*args, stdin=stdin)
    assert_one_line_error(code, err, message)
    assert not User.objects.exists()


def test_deactivated_user_is_not_promoted(cli, root: Realm) -> None:  # type: ignore[no-untyped-def]
    existing = create_user(root, "ops@example.com", "Operator")
    existing.is_active = False
    existing.save()
    code, _, err = cli(*create_args(), stdin=STAFF_PASSWORD)
    assert_one_line_error(code, err, "deactivated")
    existing.refresh_from_db()
    assert not existing.is_staff and not existing.has_usable_password()


def test_password_only_from_stdin(cli, root: Realm) -> None:  # type: ignore[no-untyped-def]
    """Without --password-stdin it is a usage error: no password ever on the command line."""
    with pytest.raises(SystemExit) as exc:
        cli("admin", "create", "--email", "ops@example.com", "--full-name", "Operator")
    assert exc.value.code == 2
    assert not User.objects.exists()
