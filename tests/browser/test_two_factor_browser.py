"""Two-factor sign-in in Chromium: enrol from the page's secret, then sign in with a code.

The test is the person with the phone: it reads the secret the setup page shows,
computes the codes an authenticator app would (django-otp's RFC 6238 ``TOTP``,
never a stub), and types them into the labelled fields. Its own ``keyhouse serve``
has TWO_FACTOR_AUTHENTICATION_ENABLED on, so the package's shared server (and its
screenshots) stay as they are.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import Page, expect

from tests.browser.conftest import MailServer, serving
from tests.browser.helpers import (
    Shot,
    WebServer,
    new_password,
    sign_in,
    users_me,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def two_factor_server(
    tmp_path_factory: pytest.TempPathFactory, mail_server: MailServer
) -> Iterator[WebServer]:
    with serving(
        tmp_path_factory, mail_server, "two-factor", "TWO_FACTOR_AUTHENTICATION_ENABLED = true\n"
    ) as server:
        yield server


def next_code(secret: str) -> str:
    """The code the app shows for the next 30-second step.

    Enrolment used up the current step's code (keyhouse refuses it for sign-in), and
    the server accepts one step of clock drift, so the next step's is always fresh.
    """
    totp = TOTP(base64.b32decode(secret))
    totp.time = time.time() + 30
    return f"{totp.token():06d}"


def wrong_code(secret: str) -> str:
    """Six digits no step near now shows."""
    totp = TOTP(base64.b32decode(secret))
    near = set()
    for k in range(-2, 3):
        totp.time = time.time() + 30 * k
        near.add(f"{totp.token():06d}")
    return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in near)


def enrol(page: Page, base: str, shot: Shot | None = None) -> str:
    """From the API-key page to a confirmed device; the secret the page showed."""
    page.get_by_role("link", name="Two-factor settings").click()
    expect(page).to_have_url(f"{base}/account/two_factor/")
    page.get_by_role("link", name="Set up two-factor authentication").click()
    expect(page).to_have_url(f"{base}/account/two_factor/setup/")
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    # The SVG loaded (the browser fetched it with this session) and has a size.
    qr.element_handle().wait_for_element_state("visible")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr.element_handle())
    secret = page.get_by_label("Secret").input_value()
    assert len(secret) == 32 and set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    if shot:
        shot("setup-qr-and-secret", docs="two-factor-setup.png", full_page=True)

    app = TOTP(base64.b32decode(secret))  # the phone, from the typed secret
    page.get_by_label("Code from your app").fill(f"{app.token():06d}")
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page).to_have_url(f"{base}/account/two_factor/setup/complete/")
    expect(page.get_by_role("heading", name="Two-factor authentication is on")).to_be_visible()
    return secret


def sign_out(page: Page, base: str) -> None:
    page.goto(f"{base}/account/api-key/")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/login/")


def test_enrol_then_sign_in_with_the_code(
    two_factor_server: WebServer, page: Page, shot: Shot
) -> None:
    email, password = "kestrel@example.com", new_password()
    two_factor_server.create_user(email, "Kestrel Example", password)
    base = two_factor_server.base_url
    sign_in(page, base, email, password)  # no device yet: the password alone
    secret = enrol(page, base, shot)
    sign_out(page, base)

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    code_field = page.get_by_label("Authentication code")
    expect(code_field).to_be_visible()
    expect(page).to_have_url(f"{base}/login/")
    shot("code-step", docs="two-factor-code.png")
    # Not signed in yet: the API-key page sends the browser back to the login form.
    page.goto(f"{base}/account/api-key/")
    expect(page).to_have_url(f"{base}/login/?next=%2Faccount%2Fapi-key%2F")

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authentication code").fill(wrong_code(secret))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Invalid token. Please make sure you have entered it correctly."
    )
    page.get_by_label("Authentication code").fill(next_code(secret))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{base}/account/api-key/")
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()


def test_backup_codes_are_made_and_sign_in_once(
    two_factor_server: WebServer, page: Page, shot: Shot
) -> None:
    email, password = "plover@example.com", new_password()
    two_factor_server.create_user(email, "Plover Example", password)
    base = two_factor_server.base_url
    sign_in(page, base, email, password)
    enrol(page, base)
    page.get_by_role("link", name="Make backup codes").click()
    page.get_by_role("button", name="Make backup codes").click()
    codes = page.get_by_role("list", name="Backup codes").get_by_role("listitem")
    expect(codes).to_have_count(10)
    shot("backup-codes", docs="two-factor-backup-codes.png", full_page=True)
    code = codes.first.inner_text().strip()
    page.goto(f"{base}/account/two_factor/")
    expect(page.get_by_text("You have 10 backup codes left.")).to_be_visible()
    shot("two-factor-settings")
    sign_out(page, base)

    for attempt in ("first", "again"):
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Use a backup code instead").click()
        page.get_by_label("Backup code").fill(code)
        page.get_by_role("button", name="Verify").click()
        if attempt == "first":
            expect(page).to_have_url(f"{base}/account/api-key/")
            sign_out(page, base)
        else:  # each backup code works once
            expect(page.get_by_role("alert")).to_have_text(
                "That backup code is not valid, or it was already used."
            )


def xor_decrypt(encrypted_hex: str, otp_hex: str) -> str:
    encrypted, otp = bytes.fromhex(encrypted_hex), bytes.fromhex(otp_hex)
    return bytes(a ^ b for a, b in zip(encrypted, otp, strict=True)).decode("ascii")


def test_mobile_flow_asks_for_the_code_too(two_factor_server: WebServer, page: Page) -> None:
    email, password = "merlin@example.com", new_password()
    two_factor_server.create_user(email, "Merlin Example", password)
    base = two_factor_server.base_url
    sign_in(page, base, email, password)
    secret = enrol(page, base)
    sign_out(page, base)

    otp = secrets.token_hex(32)
    page.goto(f"{base}/login/?mobile_flow_otp={otp}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("to continue in the Zulip mobile app")).to_be_visible()
    page.get_by_label("Authentication code").fill(next_code(secret))
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Verify").click()
    response = posted.value
    assert response.status == 302
    parts = urlsplit(response.headers["location"])
    assert (parts.scheme, parts.netloc) == ("zulip", "login")
    params = parse_qs(parts.query, strict_parsing=True)
    api_key = xor_decrypt(params["otp_encrypted_api_key"][0], otp)
    me = users_me(base, email, api_key)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email
