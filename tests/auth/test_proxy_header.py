"""auth/proxy_header.py: a proxy-set header counts only from TRUSTED_PROXIES."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from pytest_django.fixtures import Settings

from keyhouse.auth.proxy_header import meta_key, proxy_header


@pytest.fixture(autouse=True)
def trusted(settings: Settings) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]


def header(peer: str, value: str | None, name: str = "X-Remote-User") -> tuple[object, ...]:
    meta = {"REMOTE_ADDR": peer}
    if value is not None:
        meta[meta_key(name)] = value
    found = proxy_header(RequestFactory().get("/", **meta), name)
    return found.value, found.forged, found.sent, found.trusted


def test_meta_key() -> None:
    assert meta_key("X-Remote-User") == "HTTP_X_REMOTE_USER"
    assert meta_key("remote-user") == "HTTP_REMOTE_USER"


@pytest.mark.parametrize("peer", ["127.0.0.1", "10.9.8.7", "::ffff:10.0.0.1", "fd00::1"])
def test_believed_from_a_trusted_peer(peer: str) -> None:
    assert header(peer, "alice") == ("alice", False, "alice", True)


@pytest.mark.parametrize("peer", ["203.0.113.9", "127.0.0.2", "::1", "", "not-an-ip"])
def test_from_anyone_else_it_is_forged(peer: str) -> None:
    assert header(peer, "alice") == (None, True, "alice", False)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_absent_or_empty_is_nothing_sent(value: str | None) -> None:
    assert header("127.0.0.1", value) == (None, False, None, True)
    assert header("203.0.113.9", value) == (None, False, None, False)  # not forged: no claim


def test_utf8_bytes_read_as_utf8() -> None:
    latin1 = "zoë".encode().decode("latin-1")  # what WSGI hands over for the proxy's bytes
    assert header("127.0.0.1", latin1)[0] == "zoë"
    assert header("127.0.0.1", "caf\xe9")[0] == "caf\xe9"  # not UTF-8: kept as it came


def test_nothing_trusted_believes_no_one(settings: Settings) -> None:
    settings.TRUSTED_PROXIES = []
    assert header("127.0.0.1", "alice") == (None, True, "alice", False)
