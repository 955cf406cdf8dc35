"""An IdP that stops answering: keyhouse waits SOCIAL_AUTH_TIMEOUT, then says so on the login page.

Each IdP here is an npm ``oidc-provider`` process of this module's own
(tests/oidc_provider.py), really paused with SIGSTOP: its port still accepts
connections (the kernel queues them), it just never answers, as a hung IdP.
"early" is paused before anyone discovered it, so the start's discovery hangs;
"late" is paused after the browser signed in there, so the callback's token
exchange hangs. keyhouse (``keyhouse serve``, one worker, so that the worker
taking the callback is the one that made the discovery, cached in-process by
social-core) waits SOCIAL_AUTH_TIMEOUT (1 s here) for each call.

The client's own timeout is generous and only guards against a hang: no test
measures how long anything took (speed is for bench/). Each test resumes its
provider afterwards and shows that the same step then works.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import ARTIFACTS, keyhouse_cli, start_server, stop
from tests.ldap_fixtures import toml_text
from tests.oidc_provider import OIDCProvider, oidc_idp_config, running_provider, sign_in_at_provider
from tests.ports import distinct_free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.services]

REALM_NAME = "Patient Org"
EMAIL = "alice@example.com"  # provider.mjs's "alice", verified
CLIENT_TIMEOUT = 60.0  # a hang guard far above SOCIAL_AUTH_TIMEOUT, not a speed check
UNREACHABLE = "cannot be reached right now. Please try again in a few minutes."


@dataclass(frozen=True)
class Site:
    base_url: str
    data_dir: Path
    env: dict[str, str]
    early: OIDCProvider
    late: OIDCProvider


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    early_port, late_port, server_port = distinct_free_ports(3)
    config = tmp_path_factory.mktemp("slow-idp-config") / "keyhouse.toml"
    config.write_text(
        toml_text(
            {
                "SOCIAL_AUTH_TIMEOUT": 1.0,
                "SOCIAL_AUTH_OIDC_ENABLED_IDPS": {
                    "early": oidc_idp_config(f"http://127.0.0.1:{early_port}", "Early IdP"),
                    "late": oidc_idp_config(f"http://127.0.0.1:{late_port}", "Late IdP"),
                },
            }
        )
    )
    env = {"KEYHOUSE_CONFIG": str(config)}
    data_dir = tmp_path_factory.mktemp("slow-idp-data")
    keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", REALM_NAME,
                 "--auth-methods", "oidc", env=env)  # fmt: skip
    keyhouse_cli(data_dir, "user", "create", "--realm", "", "--email", EMAIL,
                 "--full-name", "Alice Liddell", env=env)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "slow-idp-server.log"
    log.unlink(missing_ok=True)
    proc, base_url = start_server(data_dir, REALM_NAME, log, env=env, port=server_port, workers=1)
    callback = [f"{base_url}/complete/oidc/"]
    try:
        with (
            running_provider(callback, port=early_port) as early,
            running_provider(callback, port=late_port) as late,
        ):
            yield Site(base_url, data_dir, env, early, late)
    finally:
        stop(proc)


def browser() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=CLIENT_TIMEOUT)


def newest_attempt(site: Site) -> tuple[str, str, str]:
    out = keyhouse_cli(site.data_dir, "audit", "list", "--limit", "1", "--json", env=site.env)
    row: dict[str, Any] = json.loads(out)[0]
    return row["method"], row["outcome"], row["reason"]


def assert_unreachable_page(response: httpx.Response, display_name: str) -> None:
    assert response.status_code == 200, response.text[:2000]
    assert f"{display_name} {UNREACHABLE}" in response.text
    assert 'href="/accounts/login/social/oidc/' in response.text  # the login page, to retry


def test_start_against_a_paused_idp_ends_on_the_login_page(site: Site) -> None:
    start_url = f"{site.base_url}/accounts/login/social/oidc/early"
    with browser() as client:
        site.early.pause()
        try:
            response = client.get(start_url)  # discovery: the IdP's port is open, silent
        finally:
            site.early.resume()
        assert_unreachable_page(response, "Early IdP")
        assert newest_attempt(site) == ("oidc:early", "failure", "IDP_UNAVAILABLE")

        again = client.get(start_url)  # answering again, the IdP is discovered at once
        assert again.status_code == 302
        assert again.headers["location"].startswith(f"{site.early.issuer}/auth?")


def test_token_exchange_with_a_paused_idp_ends_on_the_login_page(site: Site) -> None:
    start_url = f"{site.base_url}/accounts/login/social/oidc/late"
    back = f"{site.base_url}/complete/oidc/"
    with browser() as client:
        start = client.get(start_url)  # discovery succeeds: the IdP still answers
        assert start.status_code == 302, start.text
        callback = sign_in_at_provider(start.headers["location"], "alice", back)
        site.late.pause()
        try:
            response = client.get(callback)  # the code exchange: the IdP is silent
        finally:
            site.late.resume()
        assert_unreachable_page(response, "Late IdP")
        assert "sessionid" not in client.cookies
        assert newest_attempt(site) == ("oidc:late", "failure", "IDP_UNAVAILABLE")

        # Answering again, a fresh sign-in goes through (the failed flow's state is spent).
        start = client.get(start_url)
        callback = sign_in_at_provider(start.headers["location"], "alice", back)
        done = client.get(callback)
        assert done.status_code == 302, done.text
        assert done.headers["location"] == "/account/api-key/"
        assert newest_attempt(site) == ("oidc:late", "success", "")
