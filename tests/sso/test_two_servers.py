"""SSO across two servers: the flow started on server A, the IdP's answer taken by server B.

Two real ``keyhouse serve`` processes share one PostgreSQL database (a throwaway
one on the machine's cluster, dropped at the end), one Redis (a ``redis-server``
of this module's own, tests/faults.py) and one secret key, as a fleet behind a
load balancer must; nothing else (each has its own data dir). The load balancer
is played by the test: every request to either server carries the public
``Host`` both answer to, so both build the same callback URL, the one the IdP
knows. The IdPs are real: the npm ``oidc-provider`` (tests/oidc_provider.py)
and the pysaml2 IdP (tests/saml_idp.py). The browser is an httpx client whose
cookies (host-only, for 127.0.0.1) reach both servers.

Without a reachable PostgreSQL (or redis-server) the module skips, saying so;
under CI it fails (tests/ci.py), since `make test` provides both.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.ci import missing
from tests.e2e.harness import ARTIFACTS, keyhouse_cli, start_server, stop
from tests.faults import ThrowawayRedis
from tests.ldap_fixtures import toml_text
from tests.oidc_provider import OIDCProvider, oidc_idp_config, running_provider, sign_in_at_provider
from tests.ports import free_port
from tests.saml_idp import SAMLIdP, form_fields, make_key_and_cert

pytestmark = [pytest.mark.e2e, pytest.mark.services]

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PUBLIC_HOST = "keyhouse.test"  # the load balancer's name; dotted, as python3-saml wants
PUBLIC = f"http://{PUBLIC_HOST}"
HOST = {"Host": PUBLIC_HOST}
EMAIL = "alice@example.com"  # what both IdPs assert for their user


@dataclass(frozen=True)
class Fleet:
    a: str  # each server's own address
    b: str
    provider: OIDCProvider
    saml_idp: SAMLIdP
    data_dir: Path  # server A's, where the CLI runs too
    env: dict[str, str] = field(repr=False)  # holds the secret key: kept out of failure output


def _admin_connection() -> Any:
    try:
        import psycopg
    except ImportError:
        missing("psycopg is missing: `make test` installs the postgres extra")
    try:
        return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        missing(
            f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable ({exc}): two servers need"
            " one shared database; run `make services`"
        )


@pytest.fixture(scope="module")
def shared_database() -> Iterator[str]:
    name = f"keyhouse_test_e2e_sso_{secrets.token_hex(4)}"
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with _admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed; run `make services`")
    server = ThrowawayRedis(dir=tmp_path_factory.mktemp("fleet-redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def saml_idp() -> Iterator[SAMLIdP]:
    idp = SAMLIdP("fleet")
    try:
        yield idp
    finally:
        idp.stop()


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    shared_database: str,
    shared_redis: str,
    saml_idp: SAMLIdP,
) -> Iterator[Fleet]:
    provider_port = free_port()
    sp_key, sp_cert = make_key_and_cert("keyhouse fleet SP")
    config = tmp_path_factory.mktemp("fleet-config") / "keyhouse.toml"
    config.write_text(
        toml_text(
            {
                "SOCIAL_AUTH_OIDC_ENABLED_IDPS": {
                    "testidp": oidc_idp_config(f"http://127.0.0.1:{provider_port}")
                },
                "SOCIAL_AUTH_SAML_SP_ENTITY_ID": f"{PUBLIC}/saml/metadata.xml",
                "SOCIAL_AUTH_SAML_SP_PUBLIC_CERT": sp_cert,
                "SOCIAL_AUTH_SAML_SP_PRIVATE_KEY": sp_key,
                "SOCIAL_AUTH_SAML_ENABLED_IDPS": {"one": saml_idp.sp_config()},
            }
        )
    )
    env = {
        "KEYHOUSE_CONFIG": str(config),
        "KEYHOUSE_DATABASE_URL": shared_database,
        "KEYHOUSE_REDIS_URL": shared_redis,
        "KEYHOUSE_SECRET_KEY": secrets.token_urlsafe(50),  # a fleet shares its secret key
    }
    data_a = tmp_path_factory.mktemp("sso-server-a")
    data_b = tmp_path_factory.mktemp("sso-server-b")
    realm = f"SSO Fleet {secrets.token_hex(3)}"
    keyhouse_cli(data_a, "realm", "create", "--subdomain", "", "--name", realm,
                 "--auth-methods", "email,oidc,saml", env=env)  # fmt: skip
    keyhouse_cli(data_a, "user", "create", "--realm", "", "--email", EMAIL,
                 "--full-name", "Alice Liddell", env=env)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The provider first, on the port the config names: the servers then take others.
    with running_provider([f"{PUBLIC}/complete/oidc/"], port=provider_port) as provider:
        proc_a, url_a = start_server(data_a, realm, ARTIFACTS / "sso-fleet-a.log", env=env)
        try:
            proc_b, url_b = start_server(data_b, realm, ARTIFACTS / "sso-fleet-b.log", env=env)
            try:
                with httpx.Client(trust_env=False, timeout=30) as client:
                    metadata = client.get(f"{url_a}/saml/metadata.xml", headers=HOST)
                assert metadata.status_code == 200, metadata.text
                saml_idp.load_sp_metadata(metadata.text)
                yield Fleet(url_a, url_b, provider, saml_idp, data_a, env)
            finally:
                stop(proc_b)
        finally:
            stop(proc_a)


def browser() -> httpx.Client:
    """One browser: one cookie jar for 127.0.0.1, whichever server or IdP it talks to."""
    return httpx.Client(trust_env=False, timeout=30)


def on(server: str, public_url: str) -> str:
    """The load balancer's choice: ``public_url`` (on PUBLIC_HOST) sent to ``server``."""
    parts = urlsplit(public_url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC, public_url
    return server + parts.path + (f"?{parts.query}" if parts.query else "")


def signed_in_as(client: httpx.Client, server: str) -> str | None:
    page = client.get(f"{server}/account/api-key/", headers=HOST)
    if page.status_code != 200 or "Signed in as " not in page.text:
        return None
    return page.text.split("Signed in as ", 1)[1].split("<", 1)[0].strip()


def newest_attempt(fleet: Fleet) -> dict[str, Any]:
    out = keyhouse_cli(fleet.data_dir, "audit", "list", "--limit", "1", "--json", env=fleet.env)
    rows: list[dict[str, Any]] = json.loads(out)
    return rows[0]


def test_oidc_state_made_on_a_is_taken_by_b(fleet: Fleet) -> None:
    with browser() as client:
        start = client.get(f"{fleet.a}/accounts/login/social/oidc", headers=HOST)
        assert start.status_code == 302, start.text
        assert start.headers["location"].startswith(f"{fleet.provider.issuer}/auth?")
        callback = sign_in_at_provider(
            start.headers["location"], "alice", f"{PUBLIC}/complete/oidc/", browser=client
        )

        done = client.get(on(fleet.b, callback), headers=HOST)
        assert done.status_code == 302, done.text
        assert done.headers["location"] == "/account/api-key/"
        assert signed_in_as(client, fleet.a) == EMAIL  # B's session, seen by A
        assert signed_in_as(client, fleet.b) == EMAIL
        attempt = newest_attempt(fleet)
        assert (attempt["method"], attempt["outcome"], attempt["username"]) == (
            "oidc", "success", EMAIL,
        )  # fmt: skip

        # B used the state up: the same callback replayed on A is refused.
        again = client.get(on(fleet.a, callback), headers=HOST)
        assert again.status_code == 200
        assert "expired or was already used" in again.text


def test_saml_request_made_on_a_is_answered_at_b(fleet: Fleet) -> None:
    with browser() as client:
        start = client.get(f"{fleet.a}/accounts/login/social/saml/one", headers=HOST)
        assert start.status_code == 302, start.text
        assert start.headers["location"].startswith(f"{fleet.saml_idp.sso_url}?SAMLRequest=")
        form = form_fields(client.get(start.headers["location"]).text)  # the IdP's POST form
        assert form.pop("__action__") == f"{PUBLIC}/complete/saml/"

        done = client.post(on(fleet.b, f"{PUBLIC}/complete/saml/"), data=form, headers=HOST)
        assert done.status_code == 302, done.text
        assert done.headers["location"] == "/account/api-key/"
        assert signed_in_as(client, fleet.a) == EMAIL
        attempt = newest_attempt(fleet)
        assert (attempt["method"], attempt["outcome"], attempt["username"]) == (
            "saml:one", "success", EMAIL,
        )  # fmt: skip

        # The request A made was consumed by B's answer: posting it again to A is refused.
        again = client.post(on(fleet.a, f"{PUBLIC}/complete/saml/"), data=form, headers=HOST)
        assert again.status_code == 400
        assert "already used" in again.text
