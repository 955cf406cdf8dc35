"""A real OpenID Connect provider (npm ``oidc-provider``, pinned by tests/oidc/package-lock.json).

Started once per session on a free 127.0.0.1 port; ``npm ci`` runs if
tests/oidc/node_modules is missing. Skipped, saying why, without node or npm.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
REDIRECT_URI = "http://testserver/complete/oidc/"
CLIENT_ID = "keyhouse"
CLIENT_SECRET = "keyhouse-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def oidc_issuer() -> Iterator[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the real OpenID provider (tests/oidc)")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True, timeout=300
        )
    port = free_port()
    proc = subprocess.Popen(
        [node, "provider.mjs", str(port), REDIRECT_URI],
        cwd=OIDC_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("ready "):
                break
            if proc.poll() is not None:
                pytest.fail(f"oidc-provider exited: {line}")
        else:
            pytest.fail("oidc-provider did not start in 20 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
