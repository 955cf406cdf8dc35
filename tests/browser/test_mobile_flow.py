"""The mobile app's sign-in (Zulip's mobile_flow_otp) through the login page in a browser.

The app opens /login/?mobile_flow_otp=… in a browser and waits for the zulip://
redirect that carries its API key XOR-ed with the one-time pad. Chromium cannot
follow a zulip:// URL, so the test reads it from the 302's Location header, and
decrypts it with its own few lines rather than keyhouse's code (Zulip's
``otp_decrypt_api_key`` works nibble by nibble; bytes give the same result).
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Response, expect

from tests.browser.helpers import Shot, WebServer, fetch_api_key, new_password

pytestmark = pytest.mark.e2e


def xor_decrypt(encrypted_hex: str, otp_hex: str) -> str:
    """The app's side of the pad: the key's ASCII bytes XOR the OTP's bytes."""
    encrypted, otp = bytes.fromhex(encrypted_hex), bytes.fromhex(otp_hex)
    assert len(encrypted) == len(otp) == 32
    return bytes(a ^ b for a, b in zip(encrypted, otp, strict=True)).decode("ascii")


def test_mobile_flow_redirects_to_the_app_with_the_encrypted_key(
    web_server: WebServer, page: Page, shot: Shot
) -> None:
    email, password = "swift@example.com", new_password()
    web_server.create_user(email, "Swift Example", password)
    base = web_server.base_url
    otp = secrets.token_hex(32)
    redirects: list[Response] = []
    page.on("response", lambda r: redirects.append(r) if 300 <= r.status < 400 else None)

    page.goto(f"{base}/login/?mobile_flow_otp={otp}")
    expect(page.get_by_text("Sign in to continue in the Zulip mobile app")).to_be_visible()
    shot("mobile-login-form")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Sign in").click()
    response = posted.value
    shot("redirect-sent-to-app")  # Chromium stays: it cannot open zulip://

    assert response.url == f"{base}/login/"
    assert response.status == 302
    assert [r.url for r in redirects] == [f"{base}/login/"]  # nothing else redirected
    location = response.headers["location"]
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("zulip", "login", "")
    params = parse_qs(parts.query, strict_parsing=True)
    assert list(params) == ["otp_encrypted_api_key", "email", "user_id", "realm"]  # Zulip's order
    assert all(len(values) == 1 for values in params.values())

    encrypted = params["otp_encrypted_api_key"][0]
    assert len(encrypted) == 64 and encrypted == encrypted.lower()
    api = fetch_api_key(base, email, password)
    assert api.status_code == 200, api.text
    assert xor_decrypt(encrypted, otp) == api.json()["api_key"]
    assert params["email"] == [email]
    assert params["user_id"] == [str(api.json()["user_id"])]
    assert params["realm"] == [base]  # the URL the app reached

    # Zulip's finish_mobile_flow creates no session: the browser is not signed in.
    page.goto(f"{base}/account/api-key/")
    expect(page).to_have_url(f"{base}/login/?next=%2Faccount%2Fapi-key%2F")


def test_an_invalid_otp_is_refused_before_the_form(web_server: WebServer, page: Page) -> None:
    """Zulip answers a malformed OTP with its JSON error, even on this HTML page."""
    response = page.goto(f"{web_server.base_url}/login/?mobile_flow_otp={'ab' * 31}")
    assert response is not None and response.status == 400
    assert response.json() == {"result": "error", "msg": "Invalid OTP", "code": "BAD_REQUEST"}
