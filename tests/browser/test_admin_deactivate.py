"""Deactivating a user from the Django admin in a browser; the API then refuses the user.

The admin is the operator's only web tool: its login must work with a staff
account made by ``keyhouse admin create``, and its "deactivate" action must take
effect on the API at once (every worker, no cache in the way).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Shot, WebServer, fetch_api_key, new_password, users_me

pytestmark = pytest.mark.e2e

STAFF_EMAIL = "ops@example.com"
VICTIM_EMAIL = "magpie@example.com"
BYSTANDER_EMAIL = "jay@example.com"
ACTION = "Deactivate selected users (API keys stop working)"


def test_staff_deactivate_a_user_in_the_admin(
    web_server: WebServer, page: Page, shot: Shot
) -> None:
    base = web_server.base_url
    staff_password, password = new_password(), new_password()
    web_server.cli("admin", "create", "--email", STAFF_EMAIL, "--full-name", "Operator",
                   "--password-stdin", stdin=staff_password)  # fmt: skip
    web_server.create_user(VICTIM_EMAIL, "Magpie Example", password)
    web_server.create_user(BYSTANDER_EMAIL, "Jay Example", password)
    before = fetch_api_key(base, VICTIM_EMAIL, password)
    assert before.status_code == 200, before.text
    victim_key = before.json()["api_key"]

    page.goto(f"{base}/admin/")
    expect(page).to_have_url(f"{base}/admin/login/?next=/admin/")
    page.get_by_label("Delivery email").fill(STAFF_EMAIL)
    page.get_by_label("Password").fill(staff_password)
    shot("admin-login")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    page.get_by_role("link", name="Users", exact=True).and_(
        page.locator('[href="/admin/users/user/"]')
    ).click()
    expect(page).to_have_url(f"{base}/admin/users/user/")
    victim_row = page.get_by_role("row").filter(has_text=VICTIM_EMAIL)
    expect(victim_row).to_have_count(1)
    page.get_by_role("checkbox", name=f"Select this object for an action - {VICTIM_EMAIL}").check()
    page.get_by_role("combobox", name="Action").select_option(label=ACTION)
    shot("admin-action-chosen")
    page.get_by_role("button", name="Go").click()

    expect(page.locator("ul.messagelist")).to_have_text("Deactivated: 1 user(s).")
    active = victim_row.locator("td.field-is_active img")
    expect(active).to_have_attribute("alt", "False")
    expect(
        page.get_by_role("row").filter(has_text=BYSTANDER_EMAIL).locator("td.field-is_active img")
    ).to_have_attribute("alt", "True")
    shot("admin-deactivated")

    after = fetch_api_key(base, VICTIM_EMAIL, password)
    assert after.status_code == 401
    assert after.json() == {
        "result": "error",
        "msg": "Account is deactivated",
        "code": "USER_DEACTIVATED",
    }
    key_use = users_me(base, VICTIM_EMAIL, victim_key)
    assert key_use.status_code == 401 and key_use.json()["msg"] == "Account is deactivated"
    assert fetch_api_key(base, BYSTANDER_EMAIL, password).status_code == 200  # only the one
