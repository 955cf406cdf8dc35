"""SIGTERM under traffic: every connection the server accepted gets a whole answer.

gunicorn's graceful stop finishes the requests its workers hold, but a gthread
worker kept its listening socket open while it did, so connections made in
that time queued in the kernel and were reset when it closed (17 and 39 per
run of this test with gunicorn's own gthread worker). keyhouse's worker
(ops/draining_worker.py) serves what is queued and closes the socket at once:
a later client is refused, which it can retry, instead of reset after sending
its request. Under granian (KEYHOUSE_SERVER=granian) a few connections can still
be lost in the instant the workers stop: that is recorded as an expected failure.
"""

from __future__ import annotations

import collections
import os
import secrets
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import (
    ARTIFACTS,
    SERVED_BY,
    create_realm,
    create_user,
    start_server,
    stop,
)

PASSWORD = "Sigterm-Proof-Pass-7"


@pytest.mark.e2e
def test_sigterm_resets_no_accepted_connection(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    realm = f"Sigterm {secrets.token_hex(3)}"
    create_realm(data_dir, realm)
    create_user(data_dir, "sig@example.com", "Sig Term", PASSWORD)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # Real Argon2 cost, so that logins are in flight when the signal comes.
    env = {
        "KEYHOUSE_ARGON2_MEMORY_COST": "19456",
        "KEYHOUSE_ARGON2_TIME_COST": "2",
        "KEYHOUSE_RATE_LIMITING": "0",  # one user logging in 30 times at once
    }
    proc, url = start_server(data_dir, realm, ARTIFACTS / "sigterm.log", env=env)
    outcomes: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    stopped = threading.Event()

    def client(kind: str) -> None:
        while not stopped.is_set():
            try:
                with httpx.Client(trust_env=False, timeout=30) as http:
                    if kind == "login":
                        response = http.post(
                            f"{url}/api/v1/fetch_api_key",
                            data={"username": "sig@example.com", "password": PASSWORD},
                        )
                    else:
                        response = http.get(f"{url}/api/v1/server_settings")
                outcome = str(response.status_code)
            except httpx.ConnectError:
                outcome = "refused"  # never connected: nothing was sent, safe to retry
                time.sleep(0.05)
            except httpx.TransportError as exc:  # connected, then reset or cut short
                outcome = f"lost ({type(exc).__name__})"
            with lock:
                outcomes[outcome] += 1

    threads = [
        threading.Thread(target=client, args=(kind,), daemon=True)
        for kind in ["login"] * 30 + ["get"] * 10
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(3)
        signalled = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        exited = time.monotonic() - signalled
        time.sleep(1)  # clients keep trying against the stopped server
    finally:
        stopped.set()
        for thread in threads:
            thread.join(30)
        stop(proc)
    print(f"sigterm: master exited {exited:.2f} s after the signal; outcomes {dict(outcomes)}")
    lost = {k: v for k, v in outcomes.items() if k.startswith("lost")}
    assert outcomes["200"] > 0
    assert set(outcomes) - set(lost) <= {"200", "503", "refused"}  # 503: the hashing pool was full
    if lost and SERVED_BY == "granian":
        # granian's Rust workers stop accepting and close what they have not read
        # yet; nothing like ops/draining_worker.py can be added to them.
        pytest.xfail(f"granian lost {lost} at SIGTERM (decisions.md, Serving stack)")
    assert lost == {}
