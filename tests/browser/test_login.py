"""Signing in on /login/ in a real browser: the labels, the button, the error, the landing."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import REALM_NAME, Shot, WebServer, new_password

pytestmark = pytest.mark.e2e


def test_sign_in_with_email_and_password(web_server: WebServer, page: Page, shot: Shot) -> None:
    """A wrong password shows the error and keeps the typed email; the right one signs in."""
    email, password = "lark@example.com", new_password()
    web_server.create_user(email, "Lark Example", password)
    base = web_server.base_url

    page.goto(f"{base}/login/")
    expect(page).to_have_title(f"Sign in · {REALM_NAME}")
    expect(page.get_by_role("heading", level=1)).to_have_text(REALM_NAME)
    expect(page.get_by_label("Email")).to_be_focused()  # autofocus: type at once
    shot("login-form", docs="login.png")

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password + "-wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect email or password.")
    expect(page).to_have_url(f"{base}/login/")
    expect(page.get_by_label("Email")).to_have_value(email)
    expect(page.get_by_label("Password")).to_have_value("")  # never echoed back
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    shot("wrong-password")

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/account/api-key/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your API key")
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    shot("signed-in")

    # The session is real: the login page now sends the signed-in browser on.
    page.goto(f"{base}/login/")
    expect(page).to_have_url(f"{base}/account/api-key/")


def test_stylesheet_is_served_and_applied(web_server: WebServer, page: Page) -> None:
    """Screenshots of unstyled pages would pass every text check: check the CSS took effect."""
    response = page.goto(f"{web_server.base_url}/login/")
    assert response is not None and response.status == 200
    css = page.request.get(f"{web_server.base_url}/static/keyhouse/keyhouse.css")
    assert css.status == 200 and "text/css" in css.headers["content-type"]
    button = page.get_by_role("button", name="Sign in")
    default_grey = "rgb(239, 239, 239)"  # Chromium's unstyled button
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") != default_grey
    card = page.locator(".card")
    assert card.evaluate("c => getComputedStyle(c).borderRadius") != "0px"
