"""Rate limits over HTTP, once per store (reference §1.10, §5.4)."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from keyhouse.users.actions import change_password, create_user
from keyhouse.users.models import User
from tests.api.helpers import json_body
from tests.conftest import PASSWORD, basic_auth

URL = "/api/v1/fetch_api_key"
SPRAYER = "203.0.113.9"


def login(client: Client, username: str, password: str, ip: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    return client.post(URL, {"username": username, "password": password}, REMOTE_ADDR=ip)


def assert_rate_limited(response, max_wait: float) -> None:  # type: ignore[no-untyped-def]
    body = json_body(response, 429)
    assert list(body) == ["result", "msg", "code", "retry-after"]
    assert body["msg"] == "API usage exceeded rate limit"
    assert body["code"] == "RATE_LIMIT_HIT"
    assert isinstance(body["retry-after"], float)
    assert 0 < body["retry-after"] <= max_wait
    assert float(response["Retry-After"]) == body["retry-after"]
    assert response["X-RateLimit-Remaining"] == "0"


def test_zulip_default_is_five_per_half_hour(settings: Settings) -> None:
    assert settings.RATE_LIMITING_RULES["authenticate_by_username"] == [(1800, 5)]
    assert settings.RATE_LIMITING_RULES["api_by_user"] == [(60, 200)]


def test_sixth_attempt_refused_even_with_right_password(
    client: Client, user: User, ratelimit_store: str
) -> None:
    for attempt in range(5):
        response = login(client, "hamlet@example.com", "wrong")
        assert json_body(response, 401)["code"] == "AUTHENTICATION_FAILED"
        assert response["X-RateLimit-Limit"] == "5"
        assert response["X-RateLimit-Remaining"] == str(4 - attempt)
        assert int(response["X-RateLimit-Reset"]) >= int(time.time())
    assert_rate_limited(login(client, "hamlet@example.com", PASSWORD), 1800)
    # Changing case does not buy new attempts.
    assert_rate_limited(login(client, "HAMLET@Example.com", PASSWORD), 1800)


def test_success_clears_the_history(client: Client, user: User, ratelimit_store: str) -> None:
    for _ in range(4):
        login(client, "hamlet@example.com", "wrong")
    assert json_body(login(client, "hamlet@example.com", PASSWORD), 200)["result"] == "success"
    for _ in range(5):
        assert login(client, "hamlet@example.com", "wrong").status_code == 401
    assert login(client, "hamlet@example.com", "wrong").status_code == 429


def test_password_change_clears_the_history(
    client: Client, user: User, ratelimit_store: str
) -> None:
    for _ in range(6):
        login(client, "hamlet@example.com", "wrong")
    assert login(client, "hamlet@example.com", PASSWORD).status_code == 429
    change_password(user, "Brand-New-Secret-8")
    assert login(client, "hamlet@example.com", "Brand-New-Secret-8").status_code == 200


def test_window_slides(
    client: Client, user: User, settings: Settings, ratelimit_store: str
) -> None:
    """Zulip's test shape with a short rule: blocked, then free once the window passes."""
    settings.RATE_LIMITING_RULES = {**settings.RATE_LIMITING_RULES,
                                    "authenticate_by_username": [(1, 2)]}  # fmt: skip
    login(client, "hamlet@example.com", "wrong")
    login(client, "hamlet@example.com", "wrong")
    assert_rate_limited(login(client, "hamlet@example.com", PASSWORD), 1)
    time.sleep(1.05)
    assert login(client, "hamlet@example.com", "wrong").status_code == 401
    assert login(client, "hamlet@example.com", PASSWORD).status_code == 200


def test_limit_is_per_username(
    client: Client, realm: Realm, user: User, ratelimit_store: str
) -> None:
    other = create_user(realm, "ophelia@example.com", "Ophelia", password=PASSWORD)
    for _ in range(6):
        login(client, "hamlet@example.com", "wrong")
    assert json_body(login(client, "ophelia@example.com", PASSWORD), 200)["user_id"] == other.id


def test_rejected_requests_are_not_counted(
    client: Client, user: User, ratelimit_store: str
) -> None:
    """A bad email or missing parameter is not a login attempt."""
    for _ in range(10):
        assert client.post(URL, {"username": "hamlet@example.com"}).status_code == 400
    assert login(client, "hamlet@example.com", PASSWORD).status_code == 200


def test_per_ip_limit_stops_password_spraying(
    client: Client, realm: Realm, user: User, settings: Settings, ratelimit_store: str
) -> None:
    settings.RATE_LIMITING_RULES = {**settings.RATE_LIMITING_RULES,
                                    "authenticate_by_ip": [(60, 3)]}  # fmt: skip
    for i in range(3):
        assert login(client, f"victim{i}@example.com", "Spring2026!", ip=SPRAYER).status_code == 401
    assert_rate_limited(login(client, "hamlet@example.com", PASSWORD, ip=SPRAYER), 60)
    # Another address is not affected; loopback is exempt by default.
    assert login(client, "hamlet@example.com", PASSWORD, ip="198.51.100.7").status_code == 200
    assert login(client, "victim9@example.com", "x", ip="127.0.0.1").status_code == 401


def test_success_does_not_clear_the_ip_history(
    client: Client, user: User, settings: Settings, ratelimit_store: str
) -> None:
    settings.RATE_LIMITING_RULES = {**settings.RATE_LIMITING_RULES,
                                    "authenticate_by_ip": [(60, 3)]}  # fmt: skip
    login(client, "victim@example.com", "x", ip=SPRAYER)
    login(client, "hamlet@example.com", PASSWORD, ip=SPRAYER)
    login(client, "victim@example.com", "x", ip=SPRAYER)
    assert login(client, "victim2@example.com", "x", ip=SPRAYER).status_code == 429


def test_forwarded_for_is_trusted_only_from_configured_proxies(
    client: Client, user: User, settings: Settings, ratelimit_store: str
) -> None:
    settings.RATE_LIMITING_RULES = {**settings.RATE_LIMITING_RULES,
                                    "authenticate_by_ip": [(60, 2)]}  # fmt: skip
    settings.RATE_LIMIT_IP_EXEMPT = []
    # Untrusted peer: its forged header is ignored, so rotating it does not help.
    for n in range(2):
        client.post(URL, {"username": f"v{n}@example.com", "password": "x"},
                    REMOTE_ADDR=SPRAYER, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")  # fmt: skip
    response = client.post(URL, {"username": "v9@example.com", "password": "x"},
                           REMOTE_ADDR=SPRAYER, HTTP_X_FORWARDED_FOR="192.0.2.99")  # fmt: skip
    assert response.status_code == 429
    # Behind a trusted proxy, each client has its own budget.
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    for client_addr in ("192.0.2.10", "192.0.2.11", "192.0.2.12"):
        response = client.post(URL, {"username": "hamlet@example.com", "password": PASSWORD},
                               REMOTE_ADDR="10.1.2.3",
                               HTTP_X_FORWARDED_FOR=f"{client_addr}, 10.9.9.9")  # fmt: skip
        assert response.status_code == 200, client_addr


def test_limits_can_be_switched_off(client: Client, user: User, settings: Settings) -> None:
    settings.RATE_LIMITING_AUTHENTICATE = False
    for _ in range(8):
        assert login(client, "hamlet@example.com", "wrong").status_code == 401
    response = login(client, "hamlet@example.com", PASSWORD)
    assert response.status_code == 200 and "X-RateLimit-Limit" not in response


def test_api_by_user_limit(
    client: Client, user: User, settings: Settings, ratelimit_store: str
) -> None:
    settings.RATE_LIMITING_RULES = {**settings.RATE_LIMITING_RULES, "api_by_user": [(60, 3)]}
    auth = basic_auth(user.delivery_email, user.api_key)
    for remaining in (2, 1, 0):
        response = client.get("/api/v1/users/me", **auth)
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "3"
        assert response["X-RateLimit-Remaining"] == str(remaining)
    assert_rate_limited(client.get("/api/v1/users/me", **auth), 60)
    # Failed credentials are not charged to the user.
    bad = basic_auth(user.delivery_email, "x" * 32)
    assert client.get("/api/v1/users/me", **bad).status_code == 401


@pytest.mark.parametrize("rules", [[], None])
def test_empty_rule_list_means_no_limit(
    client: Client, user: User, settings: Settings, rules: list | None
) -> None:
    """Zulip's get_rules: an empty list behaves as (1 s, 9999)."""
    settings.RATE_LIMITING_RULES = {**settings.RATE_LIMITING_RULES,
                                    "authenticate_by_username": rules}  # fmt: skip
    for _ in range(8):
        assert login(client, "hamlet@example.com", "wrong").status_code == 401


# --- one budget per account, however the name is spelled (issue 12, D8) ---------------

# Spellings the database's case-insensitive lookup may resolve to alice: PostgreSQL's
# lower() turns "İ" (U+0130) into "i", where Python's str.lower() gives "i̇".
ALICE_SPELLINGS = ["alice@example.com", "ALICE@EXAMPLE.COM", "al\u0130ce@example.com",
                   "AL\u0130CE@Example.com"]  # fmt: skip


def test_every_spelling_of_an_account_spends_one_budget(
    client: Client, realm: Realm, ratelimit_store: str
) -> None:
    alice = create_user(realm, "alice@example.com", "Alice", password=PASSWORD)
    for name in ALICE_SPELLINGS + ALICE_SPELLINGS[:1]:
        assert login(client, name, "wrong").status_code == 401, name
    for name in ALICE_SPELLINGS:
        assert_rate_limited(login(client, name, PASSWORD), 1800)
    # The budget is alice's, not the server's: another account is untouched.
    bob = create_user(realm, "bob@example.com", "Bob", password=PASSWORD)
    assert json_body(login(client, "bob@example.com", PASSWORD), 200)["user_id"] == bob.id
    # A success under any spelling clears the one budget.
    change_password(alice, PASSWORD)  # (a password change clears it too)
    for name in ALICE_SPELLINGS[:4]:
        assert login(client, name, "wrong").status_code == 401
    assert json_body(login(client, "alice@example.com", PASSWORD), 200)["user_id"] == alice.id
    for _ in range(5):
        assert login(client, ALICE_SPELLINGS[2], "wrong").status_code == 401
    assert_rate_limited(login(client, "alice@example.com", PASSWORD), 1800)


def test_every_spelling_of_an_unknown_name_spends_one_budget(
    client: Client, realm: Realm, ratelimit_store: str
) -> None:
    spellings = ["ghost.ivanov@example.com", "GHOST.IVANOV@EXAMPLE.COM",
                 "ghost.\u0130vanov@example.com", "Ghost.Ivanov@Example.Com"]  # fmt: skip
    for name in spellings + spellings[:1]:
        assert login(client, name, "guess").status_code == 401, name
    for name in spellings:
        assert_rate_limited(login(client, name, "guess"), 1800)


def test_the_right_password_under_a_new_spelling_is_still_limited(
    client: Client, realm: Realm, ratelimit_store: str
) -> None:
    """The issue's case: on PostgreSQL "alİce@…" signs in as alice, on a fresh budget."""
    create_user(realm, "alice@example.com", "Alice", password=PASSWORD)
    for _ in range(5):
        assert login(client, "alice@example.com", "wrong").status_code == 401
    assert_rate_limited(login(client, "al\u0130ce@example.com", PASSWORD), 1800)


def test_a_long_username_is_an_ordinary_failure(
    client: Client, user: User, ratelimit_store: str
) -> None:
    """Longer than the database store's 300-character key column: still a 401."""
    long_name = "a" * 290 + "@example.com"
    assert json_body(login(client, long_name, "x"), 401)["code"] == "AUTHENTICATION_FAILED"


# --- an IPv6 client is its /64 (issue 12, D13) ------------------------------------------


def _ip_rule(settings: Settings, attempts: int) -> None:
    settings.RATE_LIMITING_RULES = {**settings.RATE_LIMITING_RULES,
                                    "authenticate_by_ip": [(60, attempts)]}  # fmt: skip


def test_every_address_of_an_ipv6_64_shares_one_budget(
    client: Client, user: User, settings: Settings, ratelimit_store: str
) -> None:
    _ip_rule(settings, 3)
    for n in range(3):  # a new address for every guess, as privacy addresses allow
        response = login(client, f"victim{n}@example.com", "Spring2026!", ip=f"2001:db8:1:2::{n:x}")
        assert response.status_code == 401
    last = "2001:db8:1:2:ffff:ffff:ffff:ffff"
    assert_rate_limited(login(client, "hamlet@example.com", PASSWORD, ip=last), 60)
    # The next /64 is another client, with its own budget.
    assert login(client, "hamlet@example.com", PASSWORD, ip="2001:db8:1:3::1").status_code == 200


def test_ipv6_block_behind_a_trusted_proxy(
    client: Client, user: User, settings: Settings, ratelimit_store: str
) -> None:
    _ip_rule(settings, 2)
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::/8"]

    def via(proxy: str, hop: str, username: str, password: str) -> int:
        data = {"username": username, "password": password}
        return client.post(URL, data, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=hop).status_code

    assert via("10.1.2.3", "2001:db8:9:9::a", "v@example.com", "x") == 401
    assert via("fd00::1", "2001:db8:9:9:1:2:3:4", "v@example.com", "x") == 401
    assert via("10.1.2.3", "2001:db8:9:9::b", "hamlet@example.com", PASSWORD) == 429
    assert via("10.1.2.3", "2001:db8:9:a::b", "hamlet@example.com", PASSWORD) == 200


def test_ipv4_mapped_ipv6_is_the_ipv4_client(
    client: Client, user: User, settings: Settings, ratelimit_store: str
) -> None:
    """What a dual-stack socket reports for an IPv4 client is that client."""
    _ip_rule(settings, 2)
    assert login(client, "v@example.com", "x", ip=SPRAYER).status_code == 401
    assert login(client, "v@example.com", "x", ip=f"::ffff:{SPRAYER}").status_code == 401
    assert_rate_limited(login(client, "hamlet@example.com", PASSWORD, ip=SPRAYER), 60)
    # Loopback stays exempt in either form.
    for _ in range(3):
        assert login(client, "v@example.com", "x", ip="::ffff:127.0.0.1").status_code == 401


@pytest.mark.parametrize(
    ("prefix", "first", "same", "other"),
    [
        (56, "2001:db8:1:200::1", "2001:db8:1:2ff::1", "2001:db8:1:300::1"),
        (128, "2001:db8:1:2::1", "2001:db8:1:2::1", "2001:db8:1:2::2"),
    ],
)
def test_ipv6_prefix_is_configurable(
    client: Client, user: User, settings: Settings, ratelimit_store: str,
    prefix: int, first: str, same: str, other: str,
) -> None:  # fmt: skip
    _ip_rule(settings, 1)
    settings.RATE_LIMIT_IPV6_PREFIX = prefix
    assert login(client, "v@example.com", "x", ip=first).status_code == 401
    assert_rate_limited(login(client, "hamlet@example.com", PASSWORD, ip=same), 60)
    assert login(client, "hamlet@example.com", PASSWORD, ip=other).status_code == 200


def test_ipv6_ranges_can_be_exempt(
    client: Client, user: User, settings: Settings, ratelimit_store: str
) -> None:
    _ip_rule(settings, 1)
    settings.RATE_LIMIT_IP_EXEMPT = ["::1", "2001:db8:ffff::/48"]
    for n in range(3):
        assert (
            login(client, "v@example.com", "x", ip=f"2001:db8:ffff:1::{n + 1}").status_code == 401
        )
    login(client, "v@example.com", "x", ip="2001:db8:fffe::1")
    assert_rate_limited(login(client, "hamlet@example.com", PASSWORD, ip="2001:db8:fffe::2"), 60)
