"""`keyhouse ldap sync` and `keyhouse ldap test` against a real slapd (reference §4.3).

The commands are run in-process through ``keyhouse.cli.main``, as an operator (or
cron) would run them, so these tests check what the operator sees as well as what
changes in the database.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.auth import ldap_sync
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import User
from tests.conftest import Cli
from tests.ldap_fixtures import configure_ldap, import_ldap
from tests.ldap_server import ADMIN_DN, HAMLET_PASSWORD, Slapd, user_dn

ldap = import_ldap()


def summary(renamed: int, deactivated: int, reactivated: int, missing: int, unchanged: int) -> str:
    """The last line `keyhouse ldap sync` prints: cron mails it, so its counts matter."""
    return (
        f"{renamed} renamed, {deactivated} deactivated, {reactivated} reactivated, "
        f"{missing} not found, {unchanged} unchanged"
    )


def ldap_login(client: Client, username: str, password: str) -> User:
    """A first LDAP login creates the user, as it does for a real client."""
    response = client.post("/api/v1/fetch_api_key", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return User.objects.get(pk=response.json()["user_id"])


def reloaded(user: User) -> User:
    user.refresh_from_db()
    return user


# --- ldap sync: names ---------------------------------------------------------------------


def test_sync_renames_from_cn(
    cli: Cli, client: Client, ldap_realm: Realm, append_domain: Slapd
) -> None:
    """Logins never re-sync (AUTH_LDAP_ALWAYS_UPDATE_USER=False); the sync does."""
    hamlet = ldap_login(client, "hamlet", HAMLET_PASSWORD)
    ophelia = create_user(ldap_realm, "ophelia@example.com", "Ophelia")
    assert hamlet.full_name == "King Hamlet"
    append_domain.modify("hamlet", cn="Prince Hamlet")

    code, out, err = cli("ldap", "sync")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["renamed: hamlet@example.com", summary(1, 0, 0, 0, 1)]
    assert reloaded(hamlet).full_name == "Prince Hamlet"
    assert reloaded(ophelia).full_name == "Ophelia"

    # Nothing left to do the second time.
    assert cli("ldap", "sync")[1].splitlines() == [summary(0, 0, 0, 0, 2)]


def test_sync_split_name_mapping(
    cli: Cli, settings: Settings, ldap_realm: Realm, append_domain: Slapd
) -> None:
    """Zulip's first_name + last_name mapping, when there is no full_name one."""
    settings.AUTH_LDAP_USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn"}
    ophelia = create_user(ldap_realm, "ophelia@example.com", "Ophelia")
    code, out, _ = cli("ldap", "sync")
    assert code == 0 and out.splitlines()[-1] == summary(1, 0, 0, 0, 0)
    assert reloaded(ophelia).full_name == "Ophelia Polonius-daughter"


# --- ldap sync: active status --------------------------------------------------------------


UAC = {"userAccountControl": "userAccountControl"}
DEACTIVATED = {"deactivated": "keyhouseDeactivated"}


@pytest.mark.parametrize(
    ("attr_map", "disabled", "enabled"),
    [
        (UAC, {"user_account_control": 514}, {"user_account_control": 512}),
        (DEACTIVATED, {"deactivated": "TRUE"}, {"deactivated": "FALSE"}),
        (DEACTIVATED, {"deactivated": "yes"}, {"deactivated": "no"}),
    ],
    ids=["userAccountControl", "deactivated-true-false", "deactivated-yes-no"],
)
def test_sync_follows_disabled_in_directory(
    cli: Cli, settings: Settings, ldap_realm: Realm, append_domain: Slapd,
    caplog: pytest.LogCaptureFixture,
    attr_map: dict[str, str], disabled: dict[str, Any], enabled: dict[str, Any],
) -> None:  # fmt: skip
    """Disabled in the directory → deactivated; re-enabled → reactivated (and renamed)."""
    settings.AUTH_LDAP_USER_ATTR_MAP = {"full_name": "cn", **attr_map}
    hamlet = create_user(ldap_realm, "hamlet@example.com", "King Hamlet")

    # A disabled entry is not synced further: its new name waits for re-enabling.
    append_domain.modify("hamlet", cn="Ghost of Hamlet", **disabled)
    with caplog.at_level(logging.INFO, logger="keyhouse.auth.ldap"):
        code, out, _ = cli("ldap", "sync")
    assert code == 0
    assert out.splitlines() == ["deactivated: hamlet@example.com", summary(0, 1, 0, 0, 0)]
    assert not reloaded(hamlet).is_active and hamlet.full_name == "King Hamlet"
    assert f"Deactivating user {hamlet.id} because they are disabled in LDAP." in caplog.messages

    # Still disabled, already inactive: nothing to do, and counted as such.
    assert cli("ldap", "sync")[1].splitlines() == [summary(0, 0, 0, 0, 1)]

    append_domain.modify("hamlet", **enabled)
    code, out, _ = cli("ldap", "sync")
    assert code == 0
    assert out.splitlines() == [
        "renamed: hamlet@example.com",
        "reactivated: hamlet@example.com",
        summary(1, 0, 1, 0, 0),
    ]
    assert reloaded(hamlet).is_active and hamlet.full_name == "Ghost of Hamlet"


def test_sync_ignores_disabled_flag_without_mapping(
    cli: Cli, ldap_realm: Realm, append_domain: Slapd
) -> None:
    """Zulip only reads userAccountControl when AUTH_LDAP_USER_ATTR_MAP names it."""
    hamlet = create_user(ldap_realm, "hamlet@example.com", "King Hamlet")
    append_domain.modify("hamlet", user_account_control=514)
    code, out, _ = cli("ldap", "sync")
    assert (code, out.splitlines()) == (0, [summary(0, 0, 0, 0, 1)])
    assert reloaded(hamlet).is_active


def test_sync_reports_invalid_deactivated_value(
    cli: Cli, settings: Settings, ldap_realm: Realm, append_domain: Slapd
) -> None:
    """One bad entry is reported and does not stop the others being synced."""
    settings.AUTH_LDAP_USER_ATTR_MAP = {"full_name": "cn", "deactivated": "keyhouseDeactivated"}
    hamlet = create_user(ldap_realm, "hamlet@example.com", "King Hamlet")
    ophelia = create_user(ldap_realm, "ophelia@example.com", "Old Name")
    append_domain.modify("hamlet", deactivated="maybe")
    code, out, _ = cli("ldap", "sync")
    assert code == 0
    assert out.splitlines() == [
        "renamed: ophelia@example.com",
        "error: hamlet@example.com: Invalid value 'maybe' in the LDAP attribute mapped to"
        " deactivated",
        summary(1, 0, 0, 0, 0),
    ]
    assert reloaded(hamlet).is_active
    assert reloaded(ophelia).full_name == "Ophelia"


# --- ldap sync: users missing from the directory ------------------------------------------


@pytest.mark.parametrize(
    ("methods", "policy", "deactivated"),
    [
        (["ldap"], None, True),  # Zulip's default: deactivate where LDAP is the only way in
        (["email", "ldap"], None, False),  # they may still log in with a local password
        (["email", "ldap"], True, True),
        (["ldap"], False, False),
    ],
    ids=["ldap-only-default", "email-and-ldap-default", "policy-true", "policy-false"],
)
def test_sync_user_deleted_from_directory(
    cli: Cli, settings: Settings, ldap_realm: Realm, append_domain: Slapd,
    caplog: pytest.LogCaptureFixture,
    methods: list[str], policy: bool | None, deactivated: bool,
) -> None:  # fmt: skip
    """LDAP_DEACTIVATE_NON_MATCHING_USERS, and its None default."""
    settings.LDAP_DEACTIVATE_NON_MATCHING_USERS = policy
    ldap_realm.authentication_methods = methods
    ldap_realm.save()
    hamlet = create_user(ldap_realm, "hamlet@example.com", "King Hamlet")
    create_user(ldap_realm, "ophelia@example.com", "Ophelia")
    append_domain.delete_user("hamlet")

    with caplog.at_level(logging.INFO, logger="keyhouse.auth.ldap"):
        code, out, _ = cli("ldap", "sync")
    assert code == 0
    if deactivated:
        expected = ["deactivated: hamlet@example.com", summary(0, 1, 0, 0, 1)]
        assert f"Deactivated user {hamlet.id}: not found in LDAP." in caplog.messages
    else:
        expected = ["not found in LDAP: hamlet@example.com", summary(0, 0, 0, 1, 1)]
        assert "Did not find hamlet@example.com in LDAP." in caplog.messages
    assert out.splitlines() == expected
    assert reloaded(hamlet).is_active is not deactivated


def test_sync_user_outside_append_domain_is_not_found(
    cli: Cli, ldap_realm: Realm, append_domain: Slapd
) -> None:
    """An email outside LDAP_APPEND_DOMAIN can't be in the directory: same as deleted."""
    ldap_realm.authentication_methods = ["email", "ldap"]
    ldap_realm.save()
    local = create_user(ldap_realm, "hamlet@elsewhere.example", "Local Hamlet")
    code, out, _ = cli("ldap", "sync")
    assert code == 0
    assert out.splitlines() == [
        "not found in LDAP: hamlet@elsewhere.example",
        summary(0, 0, 0, 1, 0),
    ]
    assert reloaded(local).is_active and local.full_name == "Local Hamlet"


# --- ldap sync: which realms ----------------------------------------------------------------


def test_sync_realm_option(cli: Cli, ldap_realm: Realm, append_domain: Slapd) -> None:
    """--realm limits the sync; realms without the ldap method are never touched."""
    other = Realm.objects.create(subdomain="other", name="Other", authentication_methods=["ldap"])
    email_only = Realm.objects.create(
        subdomain="mail", name="Mail", authentication_methods=["email"]
    )
    root_hamlet = create_user(ldap_realm, "hamlet@example.com", "Old Name")
    other_hamlet = create_user(other, "hamlet@example.com", "Old Name")
    mail_hamlet = create_user(email_only, "hamlet@example.com", "Old Name")

    code, out, _ = cli("ldap", "sync", "--realm", "other")
    assert (code, out.splitlines()) == (0, ["renamed: hamlet@example.com", summary(1, 0, 0, 0, 0)])
    assert reloaded(other_hamlet).full_name == "King Hamlet"
    assert reloaded(root_hamlet).full_name == "Old Name"

    code, out, _ = cli("ldap", "sync")
    assert (code, out.splitlines()) == (0, ["renamed: hamlet@example.com", summary(1, 0, 0, 0, 1)])
    assert reloaded(root_hamlet).full_name == "King Hamlet"
    assert reloaded(mail_hamlet).full_name == "Old Name"

    assert cli("ldap", "sync", "--realm", "mail") == (
        1, "", "keyhouse: error: no realm with the ldap authentication method enabled\n"
    )  # fmt: skip
    assert cli("ldap", "sync", "--realm", "nosuch") == (
        1, "", "keyhouse: error: no realm with subdomain 'nosuch'\n"
    )  # fmt: skip


# --- ldap sync: failures -----------------------------------------------------------------


def db_state() -> list[tuple[str, str, bool]]:
    return list(User.objects.order_by("id").values_list("delivery_email", "full_name", "is_active"))


OUTAGE_LINE = "keyhouse: error: LDAP directory unavailable (SERVER_DOWN); nothing was changed"


def test_sync_with_directory_down_changes_nothing(
    cli: Cli, settings: Settings, ldap_realm: Realm, append_domain: Slapd
) -> None:
    """A directory that does not answer is not a directory where everyone was deleted."""
    settings.LDAP_DEACTIVATE_NON_MATCHING_USERS = True
    create_user(ldap_realm, "hamlet@example.com", "Old Name")
    create_user(ldap_realm, "ophelia@example.com", "Ophelia")
    before = db_state()
    append_domain.stop()

    code, out, err = cli("ldap", "sync")
    assert (code, out) == (1, "")
    assert err.splitlines() == [OUTAGE_LINE]
    assert db_state() == before

    append_domain.start()
    assert cli("ldap", "sync")[1].splitlines()[-1] == summary(1, 0, 0, 0, 1)


def test_sync_with_directory_lost_midway_changes_nothing(
    cli: Cli, ldap_realm: Realm, append_domain: Slapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error says "nothing was changed": true even when the first users were read."""
    create_user(ldap_realm, "hamlet@example.com", "Old Hamlet")
    create_user(ldap_realm, "ophelia@example.com", "Old Ophelia")
    before = db_state()
    lookup = ldap_sync.ldap_user_for
    looked_up: list[str] = []

    def lose_directory_after_first(backend: Any, username: str) -> Any:
        found = lookup(backend, username)
        looked_up.append(username)
        if len(looked_up) == 1:
            append_domain.stop()
        return found

    monkeypatch.setattr(ldap_sync, "ldap_user_for", lose_directory_after_first)
    code, out, err = cli("ldap", "sync")
    assert looked_up == ["hamlet@example.com"]  # hamlet was read before the directory went
    assert (code, out, err.splitlines()) == (1, "", [OUTAGE_LINE])
    assert db_state() == before


def test_without_ldap_configured(cli: Cli, settings: Settings, ldap_realm: Realm) -> None:
    settings.AUTH_LDAP_SERVER_URI = ""
    error = (
        "keyhouse: error: LDAP is not configured (set AUTH_LDAP_SERVER_URI in the config file)\n"
    )
    assert cli("ldap", "sync") == (1, "", error)
    assert cli("ldap", "test", "hamlet") == (1, "", error)


# --- ldap test ----------------------------------------------------------------------------


def test_ldap_test_shows_the_mapping(
    cli: Cli, client: Client, ldap_realm: Realm, append_domain: Slapd
) -> None:
    """What a login as `hamlet` would see, before and after the account exists."""
    code, out, err = cli("ldap", "test", "hamlet")
    assert (code, err) == (0, "")
    shown = json.loads(out)
    attributes = shown.pop("attributes")
    assert shown == {
        "input": "hamlet",
        "realm": "",
        "ldap_username": "hamlet",
        "dn": user_dn("hamlet"),
        "email": "hamlet@example.com",
        "full_name": "King Hamlet",
        "disabled_in_ldap": False,
        "realm_access": True,
        "keyhouse_user": None,
    }
    assert attributes["cn"] == ["King Hamlet"]
    assert attributes["mail"] == ["hamlet@example.com"]
    assert attributes["uid"] == ["hamlet"]
    assert "userPassword" not in attributes

    hamlet = ldap_login(client, "hamlet", HAMLET_PASSWORD)
    shown = json.loads(cli("ldap", "test", "hamlet@example.com")[1])
    assert (shown["input"], shown["ldap_username"]) == ("hamlet@example.com", "hamlet")
    assert shown["keyhouse_user"] == {"user_id": hamlet.id, "is_active": True}


def test_ldap_test_never_shows_password_hashes(
    cli: Cli, settings: Settings, ldap_realm: Realm, slapd: Slapd
) -> None:
    """Even bound as an account that may read userPassword (here the rootdn)."""
    configure_ldap(
        settings, slapd, "append_domain",
        AUTH_LDAP_BIND_DN=ADMIN_DN, AUTH_LDAP_BIND_PASSWORD=slapd.admin_password,
    )  # fmt: skip
    admin = slapd.connect(ADMIN_DN, slapd.admin_password)
    [(_, entry)] = admin.search_s(user_dn("hamlet"), ldap.SCOPE_BASE)
    assert entry["userPassword"][0].startswith(b"{SSHA}")  # the directory does hand it out

    code, out, _ = cli("ldap", "test", "hamlet")
    assert code == 0
    assert json.loads(out)["attributes"]["cn"] == ["King Hamlet"]
    assert "userPassword" not in json.loads(out)["attributes"]
    assert "{SSHA}" not in out and HAMLET_PASSWORD not in out


def test_ldap_test_reports_the_directory_flags(
    cli: Cli, settings: Settings, ldap_realm: Realm, append_domain: Slapd
) -> None:
    """The reasons a correct password would still get the generic 401."""
    settings.AUTH_LDAP_USER_ATTR_MAP = {"full_name": "cn", "org_membership": "keyhouseOrg", **UAC}
    settings.ROOT_SUBDOMAIN_ALIASES = ["www"]
    append_domain.modify("hamlet", user_account_control=514, orgs=["elsewhere"])
    shown = json.loads(cli("ldap", "test", "hamlet")[1])
    assert (shown["disabled_in_ldap"], shown["realm_access"]) == (True, False)
    append_domain.modify("hamlet", user_account_control=512, orgs=["www"])
    shown = json.loads(cli("ldap", "test", "hamlet")[1])
    assert (shown["disabled_in_ldap"], shown["realm_access"]) == (False, True)


@pytest.mark.parametrize(
    ("username", "error"),
    [
        (
            "nosuchuser",
            "No LDAP user matching django_to_ldap_username result: nosuchuser."
            " Input username: nosuchuser",
        ),
        (
            "hamlet@other.example",
            "Email hamlet@other.example does not match LDAP domain example.com.",
        ),
    ],
    ids=["no-entry", "other-domain"],
)
def test_ldap_test_unknown_username(
    cli: Cli, ldap_realm: Realm, append_domain: Slapd, username: str, error: str
) -> None:
    code, out, _ = cli("ldap", "test", username)
    assert code == 0
    assert json.loads(out) == {"input": username, "realm": "", "error": error}


def test_ldap_test_email_attr_mode(cli: Cli, settings: Settings, slapd: Slapd, db: None) -> None:
    """With LDAP_EMAIL_ATTR an email is found by the reverse search; --realm picks the realm."""
    configure_ldap(settings, slapd, "email_attr")
    Realm.objects.create(subdomain="team", name="Team", authentication_methods=["ldap"])
    shown = json.loads(cli("ldap", "test", "ophelia@example.com", "--realm", "team")[1])
    assert (shown["realm"], shown["ldap_username"], shown["dn"]) == (
        "team", "ophelia", user_dn("ophelia")
    )  # fmt: skip
    assert (shown["email"], shown["full_name"]) == ("ophelia@example.com", "Ophelia")


def test_ldap_test_with_directory_down(cli: Cli, ldap_realm: Realm, append_domain: Slapd) -> None:
    append_domain.stop()
    code, out, err = cli("ldap", "test", "hamlet")
    assert (code, out) == (1, "")
    assert err.splitlines() == ["keyhouse: error: LDAP directory unavailable (SERVER_DOWN)"]
