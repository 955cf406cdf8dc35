"""Two-factor sign-in (Zulip's TWO_FACTOR_AUTHENTICATION_ENABLED) through the pages and the API.

Every code is a real TOTP code computed here from the device's secret with
django-otp's own ``TOTP`` (RFC 6238), never a stub: enrolment reads the secret
the page shows, sign-ins type the code an authenticator app would show. The
mobile flow is decoded with this file's own XOR, as the app does.
"""

from __future__ import annotations

import base64
import json
import re
import time
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django.fixtures import Settings

from keyhouse.auth.models import LoginAttempt
from keyhouse.realms.models import Realm
from keyhouse.users.actions import set_active
from keyhouse.users.models import User
from keyhouse.web.two_factor_login import PENDING_KEY
from tests.conftest import PASSWORD, basic_auth

OTP = "1234abcd" * 8
STEP = "two_factor_login_view-current_step"
INVALID_TOKEN = "Invalid token. Please make sure you have entered it correctly."
REUSED = "That code was already used."


@pytest.fixture(autouse=True)
def two_factor_on(settings: Settings) -> None:
    settings.TWO_FACTOR_AUTHENTICATION_ENABLED = True


def code_at(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for ``device`` now (or ``steps_ahead`` steps later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def fresh_code(device: TOTPDevice) -> str:
    """A code the device has not used: the next step's if the current one was taken."""
    device.refresh_from_db()
    current = TOTP(device.bin_key, device.step, device.t0, device.digits, 0).t()
    return code_at(device, 1 if device.last_t >= current else 0)


def wrong_code(device: TOTPDevice) -> str:
    """Six digits that no step inside the tolerance window shows."""
    valid = {code_at(device, k) for k in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(1000, 2000)) if c not in valid)


def enrol(user: User) -> TOTPDevice:
    """A confirmed device, as enrolment leaves it (the pages' own enrolment is tested below)."""
    return TOTPDevice.objects.create(user=user, name="default", confirmed=True)


def password_step(client: Client, user: User, **fields: str) -> HttpResponse:
    data = {"username": user.delivery_email, "password": PASSWORD, **fields}
    return client.post("/login/", data)


def code_step(client: Client, code: str, step: str = "token", **extra: str) -> HttpResponse:
    return client.post("/login/", {STEP: step, f"{step}-otp_token": code}, **extra)


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def attempts(user: User) -> list[tuple[str, str, str]]:
    return [
        (a.method, a.outcome, a.reason)
        for a in LoginAttempt.objects.filter(username__iexact=user.delivery_email).order_by("id")
    ]


def shows_code_form(response: HttpResponse, field: str = "token-otp_token") -> bool:
    return response.status_code == 200 and f'name="{field}"' in response.content.decode()


def page_error(response: HttpResponse) -> str:
    match = re.search(r'role="alert" id="[\w-]+">([^<]*)<', response.content.decode())
    return unescape(match.group(1)) if match else ""


# --- enrolment: the QR code and the secret, confirmed with a code ---------------------


def test_enrolment_shows_qr_and_secret_and_confirms_with_a_code(client: Client, user: User) -> None:
    client.force_login(user)
    page = client.get("/account/two_factor/setup/")
    assert page.status_code == 200
    html = page.content.decode()
    secret = re.search(r'id="totp-secret" type="text" value="([A-Z2-7]+)"', html)
    assert secret, html
    assert 'src="/account/two_factor/qrcode/"' in html
    qr = client.get("/account/two_factor/qrcode/")
    assert qr.status_code == 200 and qr["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in qr.content

    key = base64.b32decode(secret.group(1))
    app = TOTP(key)  # the phone's authenticator app, from the typed secret
    wrong = (app.token() + 1) % 1_000_000
    refused = client.post(
        "/account/two_factor/setup/",
        {"setup_view-current_step": "generator", "generator-token": f"{wrong:06d}"},
    )
    assert refused.status_code == 200 and not TOTPDevice.objects.filter(user=user).exists()

    done = client.post(
        "/account/two_factor/setup/",
        {"setup_view-current_step": "generator", "generator-token": f"{app.token():06d}"},
    )
    assert done.status_code == 302 and done["Location"] == "/account/two_factor/setup/complete/"
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed and device.bin_key == key
    assert client.get(done["Location"]).status_code == 200  # this session is verified
    assert attempts(user)[-1] == ("two_factor", "success", "TOTP_ENROLLED")

    # The code typed to confirm was on screen: it does not also sign in.
    client.post("/accounts/logout/")
    assert shows_code_form(password_step(client, user))
    reused = code_step(client, f"{app.token():06d}")
    assert REUSED in page_error(reused) and signed_in_user_id(client) is None
    assert code_step(client, fresh_code(device)).status_code == 302


def test_enrolment_needs_a_session(client: Client, user: User) -> None:
    response = client.get("/account/two_factor/setup/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Faccount%2Ftwo_factor%2Fsetup%2F"


def test_pages_are_a_404_while_the_setting_is_off(
    client: Client, user: User, settings: Settings
) -> None:
    settings.TWO_FACTOR_AUTHENTICATION_ENABLED = False
    client.force_login(user)
    for url in ("/account/two_factor/", "/account/two_factor/setup/"):
        response = client.get(url)
        assert response.status_code == 404
        assert "not enabled" in response.content.decode()


# --- the code step after the password -------------------------------------------------


def test_enrolled_user_signs_in_with_password_then_code(client: Client, old_user: User) -> None:
    device = enrol(old_user)
    first = password_step(client, old_user)
    assert shows_code_form(first)
    assert signed_in_user_id(client) is None  # the password alone signs nobody in
    assert mail.outbox == []  # the new-login email waits for the code

    response = code_step(client, code_at(device))
    assert response.status_code == 302 and response["Location"] == "/account/api-key/"
    assert signed_in_user_id(client) == str(old_user.id)
    assert client.session["otp_device_id"] == device.persistent_id
    assert client.get("/account/api-key/").status_code == 200
    assert attempts(old_user) == [("web", "success", ""), ("totp", "success", "")]
    assert len(mail.outbox) == 1  # one sign-in, one email
    assert PENDING_KEY not in client.session


def test_user_without_a_device_signs_in_with_the_password(client: Client, user: User) -> None:
    response = password_step(client, user)
    assert response.status_code == 302 and signed_in_user_id(client) == str(user.id)


def test_setting_off_asks_nobody_for_a_code(client: Client, user: User, settings: Settings) -> None:
    """As Zulip: without TWO_FACTOR_AUTHENTICATION_ENABLED the devices are not used."""
    settings.TWO_FACTOR_AUTHENTICATION_ENABLED = False
    enrol(user)
    assert password_step(client, user).status_code == 302


def test_wrong_code_is_refused_and_audited(client: Client, user: User) -> None:
    device = enrol(user)
    password_step(client, user)
    response = code_step(client, wrong_code(device))
    assert shows_code_form(response)
    assert page_error(response) == INVALID_TOKEN
    assert signed_in_user_id(client) is None
    assert attempts(user)[-1] == ("totp", "failure", "TOTP_INCORRECT")
    # No back-off from django-otp: the right code works straight after a typo.
    assert code_step(client, code_at(device)).status_code == 302


@pytest.mark.parametrize("junk", ["12345", "1234567", "abcdef", "１２３４５６"])
def test_malformed_codes_are_wrong_codes(client: Client, user: User, junk: str) -> None:
    enrol(user)
    password_step(client, user)
    assert page_error(code_step(client, junk)) == INVALID_TOKEN
    assert attempts(user)[-1] == ("totp", "failure", "TOTP_INCORRECT")


def test_empty_code_is_not_an_attempt(client: Client, user: User) -> None:
    enrol(user)
    password_step(client, user)
    assert page_error(code_step(client, "  ")) == "Enter the code."
    assert [a[0] for a in attempts(user)] == ["web"]


def test_code_may_be_typed_with_spaces(client: Client, user: User) -> None:
    device = enrol(user)
    password_step(client, user)
    code = code_at(device)
    assert code_step(client, f"{code[:3]} {code[3:]}").status_code == 302


def test_reused_code_is_refused_within_its_window(client: Client, user: User) -> None:
    """django-otp's last_t: a code's time step must come after the last one accepted."""
    device = enrol(user)
    password_step(client, user)
    code = code_at(device)
    assert code_step(client, code).status_code == 302
    device.refresh_from_db()
    assert device.last_t >= 0

    other = Client()
    password_step(other, user)
    response = code_step(other, code)
    assert REUSED in page_error(response)
    assert signed_in_user_id(other) is None
    assert attempts(user)[-1] == ("totp", "failure", "TOTP_REUSED")
    # The next step's code (an app shows it within 30 seconds) is fresh.
    assert code_step(other, code_at(device, 1)).status_code == 302


def test_code_attempts_have_their_own_limit(client: Client, user: User, settings: Settings) -> None:
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "authenticate_second_factor_by_user": [(1800, 3)],
    }
    device = enrol(user)
    password_step(client, user)
    for _ in range(3):
        assert page_error(code_step(client, wrong_code(device))) == INVALID_TOKEN
    limited = code_step(client, code_at(device))  # even the right code, once over the limit
    assert limited.status_code == 429
    assert "Too many sign-in attempts" in page_error(limited)
    assert signed_in_user_id(client) is None
    assert attempts(user)[-1] == ("totp", "rate_limited", "RATE_LIMIT_HIT")
    # A new password step (the password limit is another budget) does not buy codes.
    assert shows_code_form(password_step(client, user))
    assert code_step(client, code_at(device)).status_code == 429


def test_a_right_code_clears_the_code_budget(
    client: Client, user: User, settings: Settings
) -> None:
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "authenticate_second_factor_by_user": [(1800, 2)],
    }
    device = enrol(user)
    password_step(client, user)
    code_step(client, wrong_code(device))
    assert code_step(client, code_at(device)).status_code == 302
    other = Client()
    password_step(other, user)
    code_step(other, wrong_code(device))
    assert page_error(code_step(other, wrong_code(device))) == INVALID_TOKEN  # not yet 429


def test_without_a_password_step_the_code_signs_nobody_in(client: Client, user: User) -> None:
    device = enrol(user)
    response = code_step(client, code_at(device))
    assert response.status_code == 200
    assert "timed out" in page_error(response)
    assert signed_in_user_id(client) is None
    assert attempts(user) == []


def test_the_password_step_expires(client: Client, user: User, settings: Settings) -> None:
    device = enrol(user)
    password_step(client, user)
    session = client.session
    session[PENDING_KEY]["started"] -= settings.TWO_FACTOR_LOGIN_TIMEOUT + 1
    session.save()
    response = code_step(client, code_at(device))
    assert "timed out" in page_error(response) and signed_in_user_id(client) is None


def test_showing_the_form_again_starts_over(client: Client, user: User) -> None:
    device = enrol(user)
    password_step(client, user)
    assert client.get("/login/").status_code == 200
    assert "timed out" in page_error(code_step(client, code_at(device)))


def test_deactivated_between_the_steps(client: Client, user: User) -> None:
    device = enrol(user)
    password_step(client, user)
    set_active(user, False)
    response = code_step(client, code_at(device))
    assert "deactivated" in page_error(response)
    assert 'name="password"' in response.content.decode()  # back to the start
    assert attempts(user)[-1] == ("totp", "failure", "USER_DEACTIVATED")


# --- backup codes ---------------------------------------------------------------------


def backup_codes(client: Client) -> list[str]:
    response = client.post("/account/two_factor/backup/tokens/")
    assert response.status_code == 302, response.content
    html = client.get("/account/two_factor/backup/tokens/").content.decode()
    return re.findall(r"<li><code>([a-z2-7]+)</code></li>", html)


def signed_in_with_code(client: Client, user: User, device: TOTPDevice) -> None:
    password_step(client, user)
    assert code_step(client, fresh_code(device)).status_code == 302


def test_backup_codes_are_generated_and_each_works_once(client: Client, user: User) -> None:
    device = enrol(user)
    signed_in_with_code(client, user, device)
    codes = backup_codes(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert attempts(user)[-1] == ("two_factor", "success", "BACKUP_CODES_GENERATED")

    browser = Client()
    shown = password_step(browser, user)
    assert "Use a backup code instead" in shown.content.decode()
    switched = browser.post("/login/", {STEP: "token", "wizard_goto_step": "backup"})
    assert shows_code_form(switched, "backup-otp_token")
    assert code_step(browser, codes[0].upper(), step="backup").status_code == 302
    assert attempts(user)[-1] == ("backup_code", "success", "")
    assert browser.session["otp_device_id"] == StaticDevice.objects.get(user=user).persistent_id

    again = Client()
    password_step(again, user)
    response = code_step(again, codes[0], step="backup")
    assert "not valid, or it was already used" in page_error(response)
    assert attempts(user)[-1] == ("backup_code", "failure", "BACKUP_CODE_INCORRECT")
    assert code_step(again, codes[1], step="backup").status_code == 302


def test_backup_codes_need_a_verified_session(client: Client, user: User) -> None:
    enrol(user)
    client.force_login(user)  # a session no device verified (e.g. from before enrolment)
    response = client.get("/account/two_factor/backup/tokens/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_unverified_session_of_an_enrolled_user_does_not_count(client: Client, user: User) -> None:
    """Zulip's zulip_otp_required_if_logged_in: its owner signs in again, with the code."""
    enrol(user)
    client.force_login(user)
    response = client.get("/account/api-key/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get("/login/").status_code == 200  # the form, not a redirect


def test_disabling_removes_the_devices(client: Client, user: User) -> None:
    device = enrol(user)
    signed_in_with_code(client, user, device)
    backup_codes(client)
    response = client.post("/account/two_factor/disable/", {"understand": "on"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not StaticDevice.objects.filter(user=user).exists()
    assert attempts(user)[-1] == ("two_factor", "success", "TWO_FACTOR_DISABLED")
    assert password_step(Client(), user).status_code == 302


# --- the apps' flows through the second step ------------------------------------------


def decrypt(encrypted_hex: str, otp: str) -> str:
    pad, data = bytes.fromhex(otp), bytes.fromhex(encrypted_hex)
    return bytes(a ^ b for a, b in zip(data, pad, strict=True)).decode("ascii")


def test_mobile_flow_through_the_code_step_end_to_end(client: Client, old_user: User) -> None:
    device = enrol(old_user)
    first = password_step(client, old_user, mobile_flow_otp=OTP)
    assert shows_code_form(first)
    assert "Zulip mobile app" in first.content.decode()
    assert mail.outbox == []

    response = code_step(client, code_at(device), HTTP_USER_AGENT="ZulipAndroid")
    assert response.status_code == 302
    parts = urlsplit(response["Location"])
    assert (parts.scheme, parts.netloc) == ("zulip", "login")
    params = dict(parse_qsl(parts.query, strict_parsing=True))
    assert list(params) == ["otp_encrypted_api_key", "email", "user_id", "realm"]
    api_key = decrypt(params["otp_encrypted_api_key"], OTP)
    assert signed_in_user_id(client) is None  # the mobile flow makes no session

    me = Client().get("/api/v1/users/me", **basic_auth(params["email"], api_key))
    assert me.status_code == 200, me.content
    assert me.json()["user_id"] == old_user.id == int(params["user_id"])
    assert len(mail.outbox) == 1
    assert attempts(old_user) == [("web", "success", ""), ("totp", "success", "")]


def test_the_otp_survives_the_code_step_and_cannot_be_swapped(client: Client, user: User) -> None:
    device = enrol(user)
    password_step(client, user, mobile_flow_otp=OTP)
    other_otp = "feedface" * 8
    response = client.post(
        "/login/",
        {STEP: "token", "token-otp_token": code_at(device), "mobile_flow_otp": other_otp},
    )
    params = dict(parse_qsl(urlsplit(response["Location"]).query))
    assert decrypt(params["otp_encrypted_api_key"], OTP) == user.api_key


def test_desktop_flow_through_the_code_step(client: Client, user: User) -> None:
    device = enrol(user)
    password_step(client, user, desktop_flow_otp=OTP)
    page = code_step(client, code_at(device))
    assert page.status_code == 200
    data = re.search(r'id="desktop-data" type="text" value="([0-9a-f]+)"', page.content.decode())
    assert data, page.content
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = bytes.fromhex(data.group(1))
    token = AESGCM(bytes.fromhex(OTP)).decrypt(raw[:12], raw[12:], b"").decode()
    app = Client()
    redeemed = app.get(f"/accounts/login/subdomain/{token}")
    assert redeemed.status_code == 302
    # The app's session counts as verified: the code was given in the browser.
    assert app.session["otp_device_id"] == device.persistent_id
    assert app.get("/account/api-key/").status_code == 200


# --- fetch_api_key: Zulip's password API, and the realm setting beyond Zulip -----------


def fetch_api_key(user: User, password: str = PASSWORD) -> HttpResponse:
    return Client().post(
        "/api/v1/fetch_api_key", {"username": user.delivery_email, "password": password}
    )


def test_fetch_api_key_does_not_ask_for_a_code_by_default(user: User) -> None:
    """As Zulip: the password API has no second factor."""
    enrol(user)
    response = fetch_api_key(user)
    assert response.status_code == 200 and response.json()["api_key"] == user.api_key


def test_realm_setting_refuses_the_password_alone(user: User, realm: Realm) -> None:
    realm.require_2fa_for_api_keys = True
    realm.save()
    enrol(user)
    response = fetch_api_key(user)
    assert response.status_code == 401
    assert json.loads(response.content) == {
        "result": "error",
        "msg": "This account uses two-factor authentication: log in with a web browser,"
        " which asks for your code",
        "code": "TWO_FACTOR_REQUIRED",
    }
    assert attempts(user)[-1] == ("password", "failure", "TWO_FACTOR_REQUIRED")


def test_realm_setting_tells_nothing_before_the_password_is_right(user: User, realm: Realm) -> None:
    realm.require_2fa_for_api_keys = True
    realm.save()
    enrol(user)
    response = fetch_api_key(user, "wrong-password")
    assert response.status_code == 401 and response.json()["code"] == "AUTHENTICATION_FAILED"


def test_realm_setting_leaves_accounts_without_a_device_alone(
    user: User, realm: Realm, settings: Settings
) -> None:
    realm.require_2fa_for_api_keys = True
    realm.save()
    assert fetch_api_key(user).status_code == 200
    enrol(user)
    settings.TWO_FACTOR_AUTHENTICATION_ENABLED = False  # the setting off: no one enrolled
    assert fetch_api_key(user).status_code == 200


def test_realm_setting_sends_the_app_to_the_browser_flow(
    client: Client, user: User, realm: Realm
) -> None:
    """The mobile_flow_otp sign-in, with its code, still hands the app its key."""
    realm.require_2fa_for_api_keys = True
    realm.save()
    device = enrol(user)
    password_step(client, user, mobile_flow_otp=OTP)
    response = code_step(client, code_at(device))
    params = dict(parse_qsl(urlsplit(response["Location"]).query))
    assert decrypt(params["otp_encrypted_api_key"], OTP) == user.api_key


# --- never a 500 on the two-factor routes with the setting on --------------------------

ROUTES = [
    "/account/login/",
    "/account/two_factor/",
    "/account/two_factor/setup/",
    "/account/two_factor/qrcode/",
    "/account/two_factor/setup/complete/",
    "/account/two_factor/backup/tokens/",
    "/account/two_factor/disable/",
]


@pytest.mark.parametrize("url", ROUTES)
def test_no_method_or_session_is_a_server_error(url: str, user: User) -> None:
    verified = Client()
    device = enrol(user)
    signed_in_with_code(verified, user, device)
    unverified = Client()
    unverified.force_login(user)
    for client in (Client(), unverified, verified):
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"):
            response = client.generic(method, url, HTTP_ACCEPT="text/html")
            assert response.status_code < 500, (method, url, response.status_code)


def test_json_fetch_api_key_needs_a_session_that_gave_the_code(user: User) -> None:
    """Beyond Zulip: an unverified session cannot trade the password alone for the key."""
    device = enrol(user)
    unverified = Client()
    unverified.force_login(user)
    refused = unverified.post("/json/fetch_api_key", {"password": PASSWORD})
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED"

    verified = Client()
    signed_in_with_code(verified, user, device)
    answered = verified.post("/json/fetch_api_key", {"password": PASSWORD})
    assert answered.status_code == 200 and answered.json()["api_key"] == user.api_key


def test_the_admin_shows_no_device_secrets(client: Client, user: User) -> None:
    """django-otp's admin would show staff every TOTP secret and backup code."""
    enrol(user)
    user.is_staff = user.is_superuser = True
    user.save()
    client.force_login(user)
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "otp_totp" not in index.content.decode() and "TOTP" not in index.content.decode()
    for url in ("/admin/otp_totp/totpdevice/", "/admin/otp_static/staticdevice/"):
        assert client.get(url).status_code == 404


def test_the_gateway_takes_only_a_session_that_gave_the_code(user: User, realm: Realm) -> None:
    """/auth/verify with realm sessions on (docs/gateway.md): the code guards it too."""
    realm.gateway_sessions = True
    realm.save()
    device = enrol(user)
    unverified = Client()
    unverified.force_login(user)
    assert unverified.get("/auth/verify").status_code == 401

    verified = Client()
    signed_in_with_code(verified, user, device)
    granted = verified.get("/auth/verify")
    assert granted.status_code == 200 and granted["X-Keyhouse-User-Id"] == str(user.id)
