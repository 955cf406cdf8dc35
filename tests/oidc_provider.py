"""A real OpenID Connect provider process (npm ``oidc-provider``, tests/oidc/provider.mjs).

``running_provider(redirect_uris)`` starts one on 127.0.0.1 for as long as a test
or fixture needs it: the session-wide one of tests/sso/conftest.py, or one of a
test's own, registered for that test's keyhouse (a live server has its own
callback URL) and free to be paused (SIGSTOP) as a hung IdP would be.
``sign_in_at_provider`` is the browser at the provider, driven with httpx: its
own login form (devInteractions: any login, the accounts in provider.mjs decide
the claims) and its consent form, up to the redirect back to keyhouse.

``npm ci`` runs if tests/oidc/node_modules is missing. Without node and npm the
tests skip, or fail under CI (tests/ci.py).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

import httpx

from tests.ci import missing
from tests.ports import free_port
from tests.process_state import wait_stopped

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "keyhouse"
CLIENT_SECRET = "keyhouse-test-secret"
STARTUP_TIMEOUT = 20.0


def node_and_npm() -> tuple[str, str]:
    """node and npm, with the pinned oidc-provider installed; skip (fail on CI) without them."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("node and npm are needed for the real OpenID provider (tests/oidc)")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True, timeout=300
        )
    return node, npm


@dataclass
class OIDCProvider:
    """One running provider.mjs; ``pause`` makes it a hung IdP (connections queue, no answer)."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    paused: bool = field(default=False)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)
        wait_stopped([self.proc.pid])  # every thread stopped: nothing can still answer
        self.paused = True

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if self.proc.poll() is None:
            if self.paused:
                self.resume()  # a stopped process cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.log.parent, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path) -> bool:
    """True once provider.mjs printed ``ready``; False if it exited first (port taken)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if any(line.startswith("ready ") for line in log.read_text().splitlines()):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=10)
    raise AssertionError(
        f"oidc-provider did not start in {STARTUP_TIMEOUT:.0f} s:\n{log.read_text()}"
    )


def start_provider(redirect_uris: Sequence[str], port: int | None = None) -> OIDCProvider:
    """A provider whose one client (CLIENT_ID) may be sent back to any of ``redirect_uris``.

    ``port`` fixes where it listens, for a keyhouse configured before it starts;
    otherwise a free port is picked (and picked again if taken meanwhile).
    """
    node, _npm = node_and_npm()
    for _attempt in range(1 if port else 3):
        chosen = port or free_port()
        log = Path(tempfile.mkdtemp(prefix="oidc-provider-")) / "provider.log"
        with log.open("wb") as out:  # a file, not a pipe: a full pipe would block node
            proc = subprocess.Popen(
                [node, "provider.mjs", str(chosen), ",".join(redirect_uris)],
                cwd=OIDC_DIR,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if _wait_ready(proc, log):
            return OIDCProvider(chosen, proc, log)
        output = log.read_text()
        shutil.rmtree(log.parent, ignore_errors=True)
    raise AssertionError(f"oidc-provider exited at start:\n{output}")


@contextmanager
def running_provider(
    redirect_uris: Sequence[str], port: int | None = None
) -> Iterator[OIDCProvider]:
    provider = start_provider(redirect_uris, port)
    try:
        yield provider
    finally:
        provider.stop()


def _form(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the provider's one form (login or consent)."""
    action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
    assert action, f"no form at {response.url}:\n{response.text[:2000]}"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', response.text))
    return str(response.url.join(unescape(action.group(1)))), fields


def sign_in_at_provider(
    location: str, login: str, back_to: str, browser: httpx.Client | None = None
) -> str:
    """From keyhouse's redirect to the provider, sign in as ``login`` and consent.

    Returns the URL the provider sends the browser to next, which must start with
    ``back_to`` (keyhouse's callback); redirects are followed by hand so that the
    hop back to keyhouse is the caller's to make (to whichever server it likes).
    ``browser`` carries the cookies, if the caller wants them kept.
    """
    own = browser is None
    client = browser or httpx.Client(trust_env=False, timeout=10)
    try:
        url = location
        for _ in range(10):
            response = client.get(url)
            if response.status_code not in (302, 303):
                action, fields = _form(response)
                if 'name="login"' in response.text:
                    fields.update({"login": login, "password": "any password will do"})
                response = client.post(action, data=fields)
            assert response.status_code in (302, 303), response.text[:2000]
            url = response.headers["location"]
            url = str(response.url.join(url))
            if url.startswith(back_to):
                return url
        raise AssertionError("the provider never sent the browser back")
    finally:
        if own:
            client.close()


def oidc_idp_config(issuer: str, display_name: str = "Test IdP", **extra: Any) -> dict[str, Any]:
    """One entry of SOCIAL_AUTH_OIDC_ENABLED_IDPS for a provider of this module."""
    return {
        "oidc_url": issuer,
        "client_id": CLIENT_ID,
        "secret": CLIENT_SECRET,
        "display_name": display_name,
        **extra,
    }
