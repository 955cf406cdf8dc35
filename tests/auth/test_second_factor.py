"""auth/second_factor.py: who must give a code, and the code check itself (real TOTP codes)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django.fixtures import Settings

from keyhouse.auth import second_factor
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import User
from tests.conftest import PASSWORD


def code_now(device: TOTPDevice) -> int:
    return int(TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token())


def test_required_only_with_the_setting_a_device_and_passwords(
    user: User, realm: Realm, settings: Settings
) -> None:
    settings.TWO_FACTOR_AUTHENTICATION_ENABLED = True
    assert not second_factor.required(user)  # no device
    device = TOTPDevice.objects.create(user=user, name="default", confirmed=False)
    assert not second_factor.required(user)  # not confirmed: enrolment unfinished
    device.confirmed = True
    device.save()
    assert second_factor.required(user)
    settings.TWO_FACTOR_AUTHENTICATION_ENABLED = False
    assert not second_factor.required(user)
    settings.TWO_FACTOR_AUTHENTICATION_ENABLED = True
    realm.authentication_methods = []
    realm.save()
    user.refresh_from_db()
    assert not second_factor.required(user)  # no password step to follow


def test_refuses_password_only_needs_the_realm_setting(
    user: User, realm: Realm, settings: Settings
) -> None:
    settings.TWO_FACTOR_AUTHENTICATION_ENABLED = True
    TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    assert not second_factor.refuses_password_only(realm, user)
    realm.require_2fa_for_api_keys = True
    assert second_factor.refuses_password_only(realm, user)


def test_verify_sets_one_flag_and_the_device(user: User) -> None:
    device = TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    flags: dict[str, Any] = {}
    code = f"{code_now(device):06d}"
    verified = second_factor.verify_totp(user, code, flags)
    assert verified is not None and verified.otp_device.pk == device.pk  # type: ignore[attr-defined]
    assert flags == {}
    assert second_factor.verify_totp(user, code, flags) is None
    assert flags == {"code_reused": True}
    flags.clear()
    assert second_factor.verify_totp(user, "not a code", flags) is None
    assert flags == {"code_wrong": True}


# PostgreSQL only: SQLite's in-memory test database serializes threads on its own.
needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent transactions need PostgreSQL"
)


def _simultaneous_uses(user: User, code: str, requests: int) -> list[bool]:
    """``requests`` threads check ``code`` at once, each on its own connection."""
    start = threading.Barrier(requests)
    results: list[bool] = []
    errors: list[BaseException] = []

    def use_code() -> None:
        try:
            start.wait(timeout=30)
            results.append(second_factor.verify_totp(user, code, {}) is not None)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=use_code) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_one_code_sent_at_once_by_many_signs_in_once() -> None:
    """The device row is locked while checking: of simultaneous uses of a code, one wins."""
    realm = Realm.objects.create(subdomain="", name="Race", authentication_methods=["email"])
    for round_ in range(4):
        user = create_user(realm, f"racer{round_}@example.com", "Racer", password=PASSWORD)
        device = TOTPDevice.objects.create(user=user, name="default", confirmed=True)
        results = _simultaneous_uses(user, f"{code_now(device):06d}", 6)
        assert sorted(results) == [False] * 5 + [True], (round_, results)
