"""The real Zulip clients through nginx: sign in at keyhouse, then reach the upstream's API.

zulip-terminal 0.7.0 is typed at on a pty (tests/e2e/zt_pty_login.py) with
nginx's URL: it signs in (fetch_api_key, served by keyhouse behind nginx),
writes its zuliprc, and goes on to /api/v1/register and /api/v1/messages,
which nginx sends to the upstream once /auth/verify says yes. The upstream
answers those with an error naming the user it was told about, which
zulip-terminal prints and exits on: the proof that its own requests reached the
upstream as that user. The `zulip` Python bindings then use that zuliprc for
the upstream's /api/v1/… and keyhouse's own users/me, and stop working at once
when the key is regenerated or the account deactivated.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ci import missing
from tests.e2e.harness import CLIENTS_VENV, clean_env
from tests.e2e.test_real_clients import SAVED, run_zulip_term
from tests.gateway.conftest import ARTIFACTS, Keyhouse
from tests.gateway.proxies import Nginx
from tests.gateway.test_nginx import api_key
from tests.gateway.upstream import SEEN_AS, EchoServer, header

pytestmark = [pytest.mark.services, pytest.mark.e2e]

# Runs in the clients' venv: one call of a client built from a zuliprc.
CALL_SCRIPT = """
import json, sys, zulip
client = zulip.Client(config_file=sys.argv[1])
if sys.argv[2] == "profile":
    print(json.dumps(client.get_profile()))
else:
    print(json.dumps(client.call_endpoint(url=sys.argv[2], method=sys.argv[3])))
"""


@pytest.fixture(scope="module")
def clients_venv() -> Path:
    if not (CLIENTS_VENV / "bin" / "zulip-term").exists():
        missing(f"{CLIENTS_VENV}/bin/zulip-term is missing: run `make clients`")
    return CLIENTS_VENV


def call(clients_venv: Path, zuliprc: Path, endpoint: str, method: str = "GET") -> dict[str, Any]:
    """The real `zulip` library, reading the zuliprc zulip-terminal wrote."""
    result = subprocess.run(
        [str(clients_venv / "bin" / "python"), "-c", CALL_SCRIPT, str(zuliprc), endpoint, method],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_env(HOME=str(zuliprc.parent)),
        timeout=60,
    )
    assert result.returncode == 0, f"zulip client failed:\n{result.stdout}{result.stderr}"
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


@pytest.fixture(scope="module")
def signed_in(
    clients_venv: Path,
    gateway_keyhouse: Keyhouse,
    nginx: Nginx,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Path, str]:
    """zulip-term's login through nginx: (email, its zuliprc, its transcript)."""
    email = gateway_keyhouse.add_user("Terminal.User@Example.com", "Terminal User")
    workdir = tmp_path_factory.mktemp("zt-gateway")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    run = run_zulip_term(
        clients_venv,
        nginx.url,
        workdir,
        [(email.lower(), gateway_keyhouse.password)],
        ARTIFACTS / "zulip-term-through-nginx.txt",
    )
    assert run.returncode == 0, run.transcript
    return email, run.zuliprc, run.transcript


def test_zulip_term_signs_in_and_reaches_the_upstream_as_its_user(
    gateway_keyhouse: Keyhouse, nginx: Nginx, signed_in: tuple[str, Path, str]
) -> None:
    email, zuliprc, transcript = signed_in
    assert SAVED in transcript
    key = api_key(gateway_keyhouse, nginx.url, email)["api_key"]
    assert zuliprc.read_text() == f"[api]\nemail={email.lower()}\nkey={key}\nsite={nginx.url}"
    user_id = api_key(gateway_keyhouse, nginx.url, email)["user_id"]
    # Its first API calls (register, messages) went to the upstream, told who is asking.
    seen_as = SEEN_AS.format(user=email, user_id=user_id)
    assert f"Error connecting to Zulip server: {seen_as} (" in transcript, transcript


def test_the_zulip_library_uses_that_zuliprc_on_keyhouse_and_the_upstream(
    clients_venv: Path, upstream: EchoServer, signed_in: tuple[str, Path, str]
) -> None:
    email, zuliprc, _ = signed_in
    profile = call(clients_venv, zuliprc, "profile")  # users/me: keyhouse itself
    assert profile["result"] == "success" and profile["email"] == email
    before = len(upstream.requests)
    answer = call(clients_venv, zuliprc, "bots/reports", "GET")  # the upstream
    assert answer["result"] == "success", answer
    seen = answer["seen"]
    assert seen["uri"].startswith("/api/v1/bots/reports")
    assert header(seen, "Remote-User") == [email]
    assert header(seen, "X-Keyhouse-User-Id") == [str(profile["user_id"])]
    assert header(seen, "Authorization") == []
    assert "zulip" in header(seen, "User-Agent")[0].lower()
    assert len(upstream.requests) == before + 1


def test_a_regenerated_key_stops_the_client_at_once(
    clients_venv: Path, gateway_keyhouse: Keyhouse, nginx: Nginx, tmp_path: Path
) -> None:
    email = gateway_keyhouse.add_user("Rotating.Client@Example.com", "Rotating Client")
    key = api_key(gateway_keyhouse, nginx.url, email)["api_key"]
    zuliprc = tmp_path / "zuliprc"
    zuliprc.write_text(f"[api]\nemail={email}\nkey={key}\nsite={nginx.url}")
    assert call(clients_venv, zuliprc, "things")["result"] == "success"
    assert call(clients_venv, zuliprc, "things")["result"] == "success"  # cached now
    regenerated = call(clients_venv, zuliprc, "users/me/api_key/regenerate", "POST")
    assert regenerated["result"] == "success"
    stale = call(clients_venv, zuliprc, "things")
    assert stale == {"result": "error", "msg": "Invalid API key", "code": "UNAUTHORIZED"}
    zuliprc.write_text(f"[api]\nemail={email}\nkey={regenerated['api_key']}\nsite={nginx.url}")
    assert call(clients_venv, zuliprc, "things")["result"] == "success"


def test_a_deactivated_user_is_refused(
    clients_venv: Path, gateway_keyhouse: Keyhouse, nginx: Nginx, tmp_path: Path
) -> None:
    email = gateway_keyhouse.add_user("Gone.Client@Example.com", "Gone Client")
    key = api_key(gateway_keyhouse, nginx.url, email)["api_key"]
    zuliprc = tmp_path / "zuliprc"
    zuliprc.write_text(f"[api]\nemail={email}\nkey={key}\nsite={nginx.url}")
    assert call(clients_venv, zuliprc, "things")["result"] == "success"
    gateway_keyhouse.cli("user", "deactivate", "--realm", "", "--email", email)
    refused = call(clients_venv, zuliprc, "things")
    assert refused == {"result": "error", "msg": "Account is deactivated", "code": "UNAUTHORIZED"}
