"""The Django admin at /admin/: staff login, the actions, and what it must never show.

Staff log in through the admin's own form, which calls ``authenticate()`` without
a realm; StaffAuthBackend takes the realm from the host and applies the same
limits, equal-cost hashing and audit trail as API logins.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.auth.models import LoginAttempt
from keyhouse.realms.models import AUTH_METHODS, Realm
from keyhouse.users.actions import create_user, make_staff
from keyhouse.users.models import User
from tests.conftest import PASSWORD, basic_auth

STAFF_PASSWORD = "Admin-Lantern-Quartz-64"
LOGIN = "/admin/login/"
GENERIC_ERROR = "Please enter the correct delivery email and password for a staff account."


@pytest.fixture
def staff(realm: Realm) -> User:
    user = create_user(realm, "ops@example.com", "Operator")
    make_staff(user, STAFF_PASSWORD)
    return user


def admin_login(client: Client, email: str, password: str) -> int:
    response = client.post(LOGIN, {"username": email, "password": password, "next": "/admin/"})
    return response.status_code


@pytest.fixture
def admin(client: Client, staff: User) -> Client:
    assert admin_login(client, staff.delivery_email, STAFF_PASSWORD) == 302
    return client


def audit(method: str = "admin") -> list[tuple[str, str, str]]:
    return [
        (a.username, a.outcome, a.reason)
        for a in LoginAttempt.objects.filter(method=method).order_by("id")
    ]


# --- logging in ---------------------------------------------------------------------------


def test_staff_log_in_through_the_admin_form(client: Client, staff: User) -> None:
    assert client.get(LOGIN).status_code == 200
    response = client.post(
        LOGIN, {"username": "OPS@example.com", "password": STAFF_PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    page = client.get("/admin/").content.decode()
    assert "Site administration" in page
    assert client.session["_auth_user_backend"] == "keyhouse.auth.backends.StaffAuthBackend"
    assert audit() == [("OPS@example.com", "success", "")]


def test_non_staff_are_refused_even_with_the_right_password(client: Client, user: User) -> None:
    response = client.post(LOGIN, {"username": user.delivery_email, "password": PASSWORD})
    assert response.status_code == 200
    assert GENERIC_ERROR in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # back to the login page
    assert audit() == [(user.delivery_email, "failure", "NOT_STAFF")]


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        ("ops@example.com", "wrong-password", "AUTHENTICATION_FAILED"),
        ("nobody@example.com", STAFF_PASSWORD, "AUTHENTICATION_FAILED"),
    ],
)
def test_wrong_credentials_get_one_generic_error(
    client: Client, staff: User, email: str, password: str, reason: str
) -> None:
    response = client.post(LOGIN, {"username": email, "password": password})
    assert response.status_code == 200 and GENERIC_ERROR in response.content.decode()
    assert audit() == [(email, "failure", reason)]


def test_deactivated_staff_are_refused(client: Client, staff: User) -> None:
    staff.is_active = False
    staff.save()
    assert admin_login(client, staff.delivery_email, STAFF_PASSWORD) == 200
    assert audit() == [(staff.delivery_email, "failure", "USER_DEACTIVATED")]


def test_staff_of_a_deactivated_realm_are_refused(client: Client, staff: User) -> None:
    """Recovery is `keyhouse realm reactivate` (operations.md, "Admin")."""
    staff.realm.deactivated = True
    staff.realm.save()
    assert admin_login(client, staff.delivery_email, STAFF_PASSWORD) == 200
    assert audit() == [(staff.delivery_email, "failure", "REALM_DEACTIVATED")]


def test_staff_log_in_whatever_the_realms_login_methods(client: Client, staff: User) -> None:
    """Staff passwords are set for the admin by the operator, not by the realm's policy."""
    staff.realm.authentication_methods = ["ldap"]
    staff.realm.save()
    assert admin_login(client, staff.delivery_email, STAFF_PASSWORD) == 302


def test_staff_log_in_on_their_own_realms_host_only(
    client: Client, staff: User, settings: Settings
) -> None:
    settings.EXTERNAL_HOST = "example.org"
    Realm.objects.create(subdomain="other", name="Other", authentication_methods=["email"])
    other = Client(HTTP_HOST="other.example.org")
    assert admin_login(other, staff.delivery_email, STAFF_PASSWORD) == 200
    assert admin_login(Client(HTTP_HOST="example.org"), staff.delivery_email, STAFF_PASSWORD) == 302


def test_staff_login_is_rate_limited_with_api_logins(
    client: Client, staff: User, settings: Settings
) -> None:
    """The per-username budget is shared: the admin form is no way around the API's limit."""
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "authenticate_by_username": [(1800, 2)],
    }
    api = client.post(
        "/api/v1/fetch_api_key", {"username": staff.delivery_email, "password": "wrong"}
    )
    assert api.status_code == 401
    assert admin_login(client, staff.delivery_email, "wrong") == 200
    response = client.post(LOGIN, {"username": staff.delivery_email, "password": STAFF_PASSWORD})
    assert response.status_code == 200 and GENERIC_ERROR in response.content.decode()
    assert audit()[-1] == (staff.delivery_email, "rate_limited", "RATE_LIMIT_HIT")


def test_staff_backend_is_configured() -> None:
    from django.conf import settings

    assert "keyhouse.auth.backends.StaffAuthBackend" in settings.AUTHENTICATION_BACKENDS


def test_staff_backend_takes_no_part_in_api_logins(client: Client, staff: User) -> None:
    """fetch_api_key passes realm=…, which StaffAuthBackend does not accept: no 'admin' entry."""
    response = client.post(
        "/api/v1/fetch_api_key", {"username": staff.delivery_email, "password": STAFF_PASSWORD}
    )
    assert response.status_code == 200
    assert audit() == []


# --- users -----------------------------------------------------------------------------------


def change_url(user: User) -> str:
    return f"/admin/users/user/{user.id}/change/"


def run_action(admin: Client, model: str, action: str, ids: list[int]) -> str:
    response = admin.post(
        f"/admin/{model}/",
        {"action": action, "_selected_action": [str(i) for i in ids]},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def test_api_key_and_password_hash_never_shown_in_full(admin: Client, user: User) -> None:
    for url in (change_url(user), "/admin/users/user/", f"/admin/users/user/?q={user.full_name}"):
        page = admin.get(url).content.decode()
        assert user.api_key not in page
        assert user.api_key[:-4] not in page
        assert user.password not in page
        assert user.password.split("$")[-1] not in page  # not even the hash's last part
    page = admin.get(change_url(user)).content.decode()
    assert f"…{user.api_key[-4:]}" in page
    assert 'name="api_key"' not in page and 'name="password"' not in page


def test_posting_api_key_or_password_changes_nothing(admin: Client, user: User) -> None:
    """They are not form fields: a crafted POST cannot set them."""
    key, password_hash = user.api_key, user.password
    response = admin.post(
        change_url(user),
        {
            "delivery_email": user.delivery_email,
            "full_name": "Renamed",
            "role": str(user.role),
            "timezone": "",
            "enable_login_emails": "on",
            "api_key": "A" * 32,
            "password": "pbkdf2_sha256$1$x$y",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert user.full_name == "Renamed"
    assert (user.api_key, user.password) == (key, password_hash)


def test_deactivate_and_reactivate_actions(admin: Client, user: User, client: Client) -> None:
    page = run_action(admin, "users/user", "deactivate", [user.id])
    assert "Deactivated: 1 user(s)." in page
    user.refresh_from_db()
    assert not user.is_active
    api = Client().get("/api/v1/users/me", **basic_auth(user.delivery_email, user.api_key))
    assert api.status_code == 401
    run_action(admin, "users/user", "reactivate", [user.id])
    user.refresh_from_db()
    assert user.is_active


def test_regenerate_action_changes_the_key_without_showing_it(admin: Client, user: User) -> None:
    old = user.api_key
    page = run_action(admin, "users/user", "regenerate_api_keys", [user.id])
    user.refresh_from_db()
    assert user.api_key != old
    assert user.api_key not in page and "Regenerated API keys: 1 user(s)." in page
    api = Client().get("/api/v1/users/me", **basic_auth(user.delivery_email, old))
    assert api.status_code == 401


def test_users_search_and_filter(admin: Client, user: User, staff: User) -> None:
    other = Realm.objects.create(subdomain="other", name="Other", authentication_methods=[])
    create_user(other, "elsewhere@example.com", "Somebody Else")
    page = admin.get("/admin/users/user/", {"q": "hamlet"}).content.decode()
    assert user.delivery_email in page and "elsewhere@example.com" not in page
    page = admin.get("/admin/users/user/", {"realm__id__exact": other.id}).content.decode()
    assert "elsewhere@example.com" in page and user.delivery_email not in page
    page = admin.get("/admin/users/user/", {"is_staff__exact": "1"}).content.decode()
    assert staff.delivery_email in page and user.delivery_email not in page


def test_users_are_not_added_or_deleted_here(admin: Client, user: User) -> None:
    assert admin.get("/admin/users/user/add/").status_code == 403
    assert admin.get(f"/admin/users/user/{user.id}/delete/").status_code == 403


# --- realms -----------------------------------------------------------------------------------


def test_realm_methods_are_checkboxes_stored_in_canonical_order(
    admin: Client, realm: Realm
) -> None:
    url = f"/admin/realms/realm/{realm.id}/change/"
    page = admin.get(url).content.decode()
    boxes = re.findall(r'<input type="checkbox" name="authentication_methods" value="(\w+)"', page)
    assert tuple(boxes) == AUTH_METHODS
    response = admin.post(
        url,
        {"name": realm.name, "description": "", "authentication_methods": ["dev", "email"]},
    )
    assert response.status_code == 302
    realm.refresh_from_db()
    assert realm.authentication_methods == ["email", "dev"]


def test_realm_deactivate_and_reactivate_actions(admin: Client, realm: Realm) -> None:
    other = Realm.objects.create(subdomain="other", name="Other", authentication_methods=["email"])
    page = run_action(admin, "realms/realm", "deactivate", [other.id])
    assert "Deactivated 1 realm(s)." in page
    other.refresh_from_db()
    assert other.deactivated
    run_action(admin, "realms/realm", "reactivate", [other.id])
    other.refresh_from_db()
    assert not other.deactivated


def test_realms_list_and_search(admin: Client, realm: Realm) -> None:
    Realm.objects.create(subdomain="birds", name="Avian Forum", authentication_methods=["email"])
    page = admin.get("/admin/realms/realm/", {"q": "avian"}).content.decode()
    assert "Avian Forum" in page and "Test Org" not in page


# --- the audit trail ---------------------------------------------------------------------------


def test_audit_trail_is_read_only(admin: Client, user: User) -> None:
    entry = LoginAttempt.objects.get(method="admin")
    listing = admin.get("/admin/keyhouse_auth/loginattempt/")
    assert listing.status_code == 200
    assert "ops@example.com" in listing.content.decode()
    assert "delete_selected" not in listing.content.decode()
    url = f"/admin/keyhouse_auth/loginattempt/{entry.id}/change/"
    view = admin.get(url)
    assert view.status_code == 200 and 'name="_save"' not in view.content.decode()
    assert admin.post(url, {"username": "forged"}).status_code == 403
    assert admin.get("/admin/keyhouse_auth/loginattempt/add/").status_code == 403
    assert admin.get(f"/admin/keyhouse_auth/loginattempt/{entry.id}/delete/").status_code == 403
    entry.refresh_from_db()
    assert entry.username == "ops@example.com"


def listed_usernames(page: str) -> list[str]:
    return re.findall(r'class="field-username">([^<]*)</td>', page)


def test_audit_trail_filters_and_search(admin: Client, user: User) -> None:
    Client().post("/api/v1/fetch_api_key", {"username": user.delivery_email, "password": "bad"})
    base = "/admin/keyhouse_auth/loginattempt/"
    assert sorted(listed_usernames(admin.get(base).content.decode())) == [
        user.delivery_email,
        "ops@example.com",
    ]
    page = admin.get(base, {"outcome": "failure"}).content.decode()
    assert listed_usernames(page) == [user.delivery_email]
    page = admin.get(base, {"q": "ops@"}).content.decode()
    assert listed_usernames(page) == ["ops@example.com"]
    page = admin.get(base, {"method": "password"}).content.decode()
    assert listed_usernames(page) == [user.delivery_email]
    other = Realm.objects.create(subdomain="other", name="Other", authentication_methods=[])
    page = admin.get(base, {"realm__id__exact": other.id}).content.decode()
    assert listed_usernames(page) == []
