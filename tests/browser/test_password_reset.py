"""Password reset in a browser, through a real mail: how an account with no password gets one.

``keyhouse user create`` without a password makes an account that can only sign
in once its owner sets one by email (Zulip lets SSO/LDAP users do the same).
The link comes from the mail the server sent over SMTP, not from keyhouse's code.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    REALM_NAME,
    Shot,
    WebServer,
    fetch_api_key,
    new_password,
    wait_for_mail,
)

pytestmark = pytest.mark.e2e

EMAIL = "robin@example.com"


def test_set_a_first_password_through_the_reset_mail(
    web_server: WebServer, page: Page, shot: Shot
) -> None:
    web_server.create_user(EMAIL, "Robin Example", password=None)
    base = web_server.base_url
    password = new_password()
    refused = fetch_api_key(base, EMAIL, password)
    assert refused.status_code == 401 and refused.json()["code"] == "AUTHENTICATION_FAILED"

    page.goto(f"{base}/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(f"{base}/accounts/password/reset/")
    page.get_by_label("Email").fill(EMAIL)
    shot("reset-request")
    page.get_by_role("button", name="Send reset link").click()
    expect(page).to_have_url(f"{base}/accounts/password/reset/done/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    shot("reset-requested")

    mail = wait_for_mail(web_server.mail, EMAIL)
    assert mail.rcpt_tos == [EMAIL]
    assert mail.mail_from == "noreply@keyhouse.test"  # DEFAULT_FROM_EMAIL from the TOML file
    assert mail.message["Subject"] == f"Reset your password for {REALM_NAME}"
    assert "Your account has no password yet" in mail.text
    links = mail.links()
    assert len(links) == 1 and links[0].startswith(f"{base}/accounts/password/reset/"), links
    link = links[0]

    page.goto(link)
    # Django moves the token into the session and off the URL before the form shows.
    expect(page).to_have_url(f"{link.rsplit('/', 2)[0]}/set-password/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Set a new password")
    expect(page.get_by_text(f"For {EMAIL}")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password confirmation").fill(password)
    shot("new-password-form")
    page.get_by_role("button", name="Set password").click()
    expect(page).to_have_url(f"{base}/accounts/password/done/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your password has been set")
    shot("password-set")

    api = fetch_api_key(base, EMAIL, password)
    assert api.status_code == 200, api.text
    assert api.json()["email"] == EMAIL and len(api.json()["api_key"]) == 32

    # The link worked once.
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
    shot("link-used")
