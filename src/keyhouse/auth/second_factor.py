"""Two-factor sign-in (Zulip's ``TWO_FACTOR_AUTHENTICATION_ENABLED``): who gives a code; its check.

django-otp keeps the devices and checks tokens: a TOTP device per enrolled account
(``TOTPDevice``, which refuses a code whose time step is not after the last one it
accepted, ``last_t``) and a static device of single-use backup codes. This module is
keyhouse's policy around them, for the sign-in pipeline (auth/pipeline.py) and the
pages: a password sign-in of an account with a confirmed TOTP device continues with
a code while the setting is on and the realm has password sign-in; the code step is
an ``Attempt`` of its own (limits, audit) whose verifier is here.

Everything that touches django-otp imports it inside the function: without the
``twofactor`` extra nothing here is ever asked for a code, and keyhouse still runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from keyhouse.backend_choice import two_factor_installed
from keyhouse.realms.methods import password_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.users.models import User

if TYPE_CHECKING:
    from django_otp.models import Device
    from django_otp.plugins.otp_totp.models import TOTPDevice

# Longest code we look at: TOTP codes are 6 or 8 digits, backup codes 8 characters.
MAX_CODE_CHARS = 64


def active() -> bool:
    """The setting is on and the libraries are there (on without them stops the start-up)."""
    return bool(settings.TWO_FACTOR_AUTHENTICATION_ENABLED) and two_factor_installed()


def has_totp_device(user: User) -> bool:
    if not two_factor_installed():
        return False
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def required(user: User) -> bool:
    """Does a password sign-in of ``user`` continue with a code?"""
    return active() and password_auth_enabled(user.realm) and has_totp_device(user)


def refuses_password_only(realm: Realm, user: User) -> bool:
    """fetch_api_key's realm setting (beyond Zulip): no API key for the password alone."""
    return realm.require_2fa_for_api_keys and required(user)


def session_verified(request: HttpRequest, user: User) -> bool:
    """Zulip's ``zulip_otp_required_if_logged_in`` test: does this session count for ``user``?

    A session of an account that must give a code counts only if a device verified
    it (django-otp's OTPMiddleware reads that from the session).
    """
    if not required(user):
        return True
    session_user = getattr(request, "user", None)
    is_verified = getattr(session_user, "is_verified", None)
    return bool(
        session_user is not None
        and session_user.pk == user.pk
        and callable(is_verified)
        and is_verified()
    )


def normalized_code(code: str) -> str:
    """What people type: spaces and dashes between groups of digits are not part of it."""
    return "".join(code.split()).replace("-", "").lower()


def _account_flags(user: User, flags: dict[str, Any]) -> bool:
    """The account may have changed since its password step: set a flag and say False if so."""
    if user.realm.deactivated:
        flags["inactive_realm"] = True
        return False
    if not user.is_active:
        flags["inactive_user"] = True
        return False
    return True


def _fresh(user: User) -> User:
    return User.objects.select_related("realm").get(pk=user.pk)


def _matches_an_earlier_step(device: TOTPDevice, token: int) -> bool:
    """Right inside the tolerance window, but refused: so its step was already used."""
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return bool(totp.verify(token, device.tolerance))


def verify_totp(user: User, code: str, flags: dict[str, Any]) -> User | None:
    """``user`` (its ``otp_device`` set) if ``code`` is a fresh code of one of its TOTP devices.

    Otherwise None and exactly one flag: ``code_reused`` (a right code whose time
    step was already accepted once) or ``code_wrong``. The devices are locked while
    checking, so of two requests with one code only one gets in.
    """
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = _fresh(user)
    if not _account_flags(user, flags):
        return None
    text = normalized_code(code)
    token = int(text) if text.isascii() and text.isdigit() else None
    with transaction.atomic():
        devices = list(
            TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk")
        )
        if token is not None:
            for device in devices:
                if len(text) == device.digits and device.verify_token(token):
                    user.otp_device = device  # type: ignore[attr-defined]
                    return user
    reused = token is not None and any(
        len(text) == d.digits and _matches_an_earlier_step(d, token) for d in devices
    )
    flags["code_reused" if reused else "code_wrong"] = True
    return None


def verify_backup_code(user: User, code: str, flags: dict[str, Any]) -> User | None:
    """``user`` if ``code`` is one of its unused backup codes, which is then used up."""
    from django_otp.plugins.otp_static.models import StaticDevice

    user = _fresh(user)
    if not _account_flags(user, flags):
        return None
    text = normalized_code(code)
    with transaction.atomic():
        for device in StaticDevice.objects.select_for_update().filter(user=user, confirmed=True):
            if text and device.verify_token(text):  # deletes the code it matched
                user.otp_device = device  # type: ignore[attr-defined]
                return user
    flags["backup_code_wrong"] = True
    return None


def device_by_persistent_id(user: User, persistent_id: str) -> Device | None:
    """The confirmed device ``persistent_id`` names, if it is ``user``'s."""
    if not persistent_id or not two_factor_installed():
        return None
    from django_otp.models import Device

    device = Device.from_persistent_id(persistent_id)
    if device is None or device.user_id != user.pk or not device.confirmed:
        return None
    return device


def backup_codes_left(user: User) -> int:
    if not two_factor_installed():
        return 0
    from django_otp.plugins.otp_static.models import StaticToken

    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def remove_devices(user: User) -> int:
    """Delete every device of ``user`` (TOTP and backup codes); how many there were."""
    if not two_factor_installed():
        return 0
    from django_otp import devices_for_user

    removed = 0
    with transaction.atomic():
        for device in list(devices_for_user(user, confirmed=None)):
            device.delete()
            removed += 1
    return removed


def mark_session_verified(request: HttpRequest, device: Device) -> None:
    """The signed-in session counts as verified by ``device`` (django-otp's session key)."""
    from django_otp import login as otp_login

    otp_login(request, device)
