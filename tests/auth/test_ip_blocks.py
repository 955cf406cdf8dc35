"""The unit of the per-IP limits: an IPv4 address or an IPv6 block (issue 12, D13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from keyhouse.auth.client_ip import is_exempt_from_ip_limits, is_trusted_proxy
from keyhouse.auth.ip_blocks import ip_limit_entity


@pytest.mark.parametrize(
    ("addr", "entity"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_entity(addr: str, entity: str) -> None:
    assert ip_limit_entity(addr) == entity


def test_prefix_setting(settings: Settings) -> None:
    settings.RATE_LIMIT_IPV6_PREFIX = 48
    assert ip_limit_entity("2001:db8:1:2::1") == "2001:db8:1::/48"
    assert ip_limit_entity("192.0.2.1") == "192.0.2.1"


@pytest.mark.parametrize("bad", [129, -1, "64", True, 64.0])
def test_a_bad_prefix_is_named(settings: Settings, bad: object) -> None:
    settings.RATE_LIMIT_IPV6_PREFIX = bad
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMIT_IPV6_PREFIX"):
        ip_limit_entity("2001:db8::1")


def test_mapped_addresses_match_ipv4_lists(settings: Settings) -> None:
    settings.RATE_LIMIT_IP_EXEMPT = ["127.0.0.0/8", "2001:db8:ffff::/48"]
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert is_exempt_from_ip_limits("::ffff:127.0.0.1")
    assert is_exempt_from_ip_limits("2001:db8:ffff:12::1")
    assert not is_exempt_from_ip_limits("2001:db8:fffe::1")
    assert is_trusted_proxy("::ffff:10.1.2.3")
    assert not is_trusted_proxy("::ffff:192.0.2.1")


def test_a_bad_prefix_stops_the_start(tmp_path: Path) -> None:
    """Refused once at start-up, not with a 500 on every IPv6 login."""
    config = tmp_path / "keyhouse.toml"
    config.write_text("RATE_LIMIT_IPV6_PREFIX = 129\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")}
    env.update(KEYHOUSE_DATA_DIR=str(tmp_path / "data"), KEYHOUSE_CONFIG=str(config),
               DJANGO_SETTINGS_MODULE="keyhouse.settings")  # fmt: skip
    probe = "import django; django.setup(); print('started')"
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "started" not in run.stdout
    assert "RATE_LIMIT_IPV6_PREFIX must be a whole number from 0 to 128, not 129" in run.stderr
