"""``keyhouse user reset-2fa`` and ``keyhouse realm set``; keyhouse without the twofactor extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django.fixtures import Settings

from keyhouse.auth.models import LoginAttempt
from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from tests.conftest import PASSWORD, Cli

KEYHOUSE = Path(sys.executable).with_name("keyhouse")


@pytest.fixture(autouse=True)
def two_factor_on(settings: Settings, no_pruning: None) -> None:
    settings.TWO_FACTOR_AUTHENTICATION_ENABLED = True


def test_reset_2fa_removes_every_device_and_is_audited(cli: Cli, user: User) -> None:
    TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    backup = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    backup.token_set.create(token="abcd2345")
    before = Client().post("/login/", {"username": user.delivery_email, "password": PASSWORD})
    assert before.status_code == 200  # asks for the code

    code, out, err = cli("user", "reset-2fa", "--realm", "", "--email", "hamlet@example.com")
    assert (code, err) == (0, "")
    assert out == (
        "reset two-factor sign-in for Hamlet@Example.com: removed 2 devices;"
        " the password alone signs in until they enrol again\n"
    )
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not StaticDevice.objects.filter(user=user).exists()
    entry = LoginAttempt.objects.get(reason="TWO_FACTOR_RESET")
    assert (entry.user, entry.method, entry.outcome, entry.reason, entry.client_ip) == (
        user,
        "cli",
        "success",
        "TWO_FACTOR_RESET",
        None,
    )
    after = Client().post("/login/", {"username": user.delivery_email, "password": PASSWORD})
    assert after.status_code == 302  # the password alone again

    listed = cli("audit", "list", "--user", "hamlet@example.com", "--json")[1]
    assert [r["reason"] for r in json.loads(listed)] == ["", "TWO_FACTOR_RESET", ""]


def test_reset_2fa_without_devices_says_so(cli: Cli, user: User) -> None:
    code, out, _ = cli("user", "reset-2fa", "--realm", "", "--email", "hamlet@example.com")
    assert code == 0
    assert out == "Hamlet@Example.com has no two-factor devices; nothing to reset\n"
    assert not LoginAttempt.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--realm", "", "--email", "ghost@example.com"), "no user 'ghost@example.com'"),
        (("--realm", "nowhere", "--email", "hamlet@example.com"), "no realm with subdomain"),
    ],
)
def test_reset_2fa_errors_are_one_line(
    cli: Cli, user: User, args: tuple[str, ...], message: str
) -> None:
    code, _, err = cli("user", "reset-2fa", *args)
    assert code == 1 and message in err
    assert err.count("\n") == 1 and err.startswith("keyhouse: error: ")


def test_realm_set_require_2fa_for_api_keys(cli: Cli, realm: Realm) -> None:
    code, out, _ = cli("realm", "set", "--subdomain", "", "--require-2fa-for-api-keys", "on")
    assert code == 0 and out == "realm '': require-2fa-for-api-keys on\n"
    realm.refresh_from_db()
    assert realm.require_2fa_for_api_keys
    cli("realm", "set", "--subdomain", "", "--require-2fa-for-api-keys", "off")
    realm.refresh_from_db()
    assert not realm.require_2fa_for_api_keys
    code, _, err = cli("realm", "set", "--subdomain", "")
    assert code == 1 and "nothing to set" in err


# --- without the twofactor extra ----------------------------------------------------------


def _without_the_extra(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import two_factor`` fails, as without the extra installed."""
    shadow = tmp_path / "shadow" / "two_factor"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("not installed (test shadow)")\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYHOUSE_", "PYTEST_"))}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "shadow"), src])
    env["KEYHOUSE_DATA_DIR"] = str(tmp_path / "data")
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_keyhouse_runs_without_the_extra(tmp_path: Path) -> None:
    env = _without_the_extra(tmp_path)
    listed = _run(env, "-m", "keyhouse.cli", "realm", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    probe = _run(
        env,
        "-c",
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'keyhouse.settings';"
        " django.setup(); from django.conf import settings; from django.urls import reverse;"
        " from django.test import Client;"
        " print('two_factor' in settings.INSTALLED_APPS, reverse('login'),"
        " Client().get('/account/two_factor/setup/').status_code)",
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["False", "/login/", "404"]


def test_turning_it_on_without_the_extra_stops_the_start(tmp_path: Path) -> None:
    env = _without_the_extra(tmp_path)
    env["KEYHOUSE_TWO_FACTOR_AUTHENTICATION_ENABLED"] = "true"
    result = _run(env, "-m", "keyhouse.cli", "realm", "list")
    assert result.returncode == 1
    assert result.stderr == (
        "keyhouse: error: TWO_FACTOR_AUTHENTICATION_ENABLED is on, but django-two-factor-auth"
        " and django-otp are not installed: pip install 'keyhouse[twofactor]'\n"
    )
