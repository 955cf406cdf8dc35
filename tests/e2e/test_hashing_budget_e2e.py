"""The hashing budget on a real ``keyhouse serve --workers 2`` (keyhouse/hashing_slots.py).

One worker is stopped (SIGSTOP) so that every connection lands on the other, as
when a proxy's small keep-alive pool or gunicorn's accept race puts them there:
that worker alone must hold every slot. Then it is killed with kill -9 in the
middle of its hashes, and the server must get every slot back. The slots are
read from /metrics (``keyhouse_hashing_slots_free``), never inferred from timing.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import ARTIFACTS, SERVED_BY, keyhouse_cli, start_server, stop
from tests.process_state import wait_stopped

PASSWORD = "Budget-Across-Workers-5"
EMAIL = "target@example.com"
CORES = os.cpu_count() or 1
WAIT = 60.0
# Slow verifications (about a second each here), so a hash is easy to catch in flight.
SLOW_ARGON2 = {"KEYHOUSE_ARGON2_TIME_COST": "60", "KEYHOUSE_RATE_LIMITING_AUTHENTICATE": "false"}


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (gunicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened within {WAIT} s: {what}")
        time.sleep(0.02)


def gauge(base_url: str, name: str) -> float | None:
    try:
        text = httpx.get(f"{base_url}/metrics", timeout=5, trust_env=False).text
    except httpx.TransportError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


def login(base_url: str) -> int:
    try:
        with httpx.Client(trust_env=False, timeout=WAIT) as client:
            return client.post(
                f"{base_url}/api/v1/fetch_api_key", data={"username": EMAIL, "password": PASSWORD}
            ).status_code
    except httpx.TransportError:
        return 0  # its worker was killed


def logins(base_url: str, count: int) -> tuple[list[threading.Thread], list[int]]:
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(login(base_url)), daemon=True)
        for _ in range(count)
    ]
    for t in threads:
        t.start()
    return threads, statuses


@pytest.mark.e2e
@pytest.mark.skipif(
    SERVED_BY == "granian",
    reason="steers every connection to one worker by SIGSTOP, which needs gunicorn's one "
    "shared socket (granian's workers each listen on their own, SO_REUSEPORT); "
    "tests/ops/test_serve_slots.py checks that a granian worker uses the inherited budget",
)
def test_one_worker_holds_every_slot_and_a_killed_one_leaks_none(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    realm = f"budget {secrets.token_hex(3)}"
    keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", realm, env=SLOW_ARGON2)
    keyhouse_cli(data_dir, "user", "create", "--realm", "", "--email", EMAIL, "--full-name",
                 "Target", "--password-stdin", stdin=PASSWORD, env=SLOW_ARGON2)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proc, base_url = start_server(data_dir, realm, ARTIFACTS / "budget.log", env=SLOW_ARGON2)
    stopped: int | None = None
    try:
        eventually(lambda: len(children(proc.pid)) == 2, "two workers")
        busy, stopped = children(proc.pid)
        os.kill(stopped, signal.SIGSTOP)
        wait_stopped([stopped])
        assert gauge(base_url, "keyhouse_hashing_slots") == CORES  # answered by `busy`

        # More logins than slots, all on the one running worker: it hashes on every core.
        logins(base_url, CORES + 2)
        eventually(
            lambda: gauge(base_url, "keyhouse_hashing_slots_free") == 0,
            "the running worker alone holding every slot",
        )
        os.kill(busy, signal.SIGKILL)  # in the middle of its hashes
        os.kill(stopped, signal.SIGCONT)
        stopped = None
        eventually(
            lambda: gauge(base_url, "keyhouse_hashing_slots_free") == CORES,
            "every slot back after the kill",
        )
        threads, statuses = logins(base_url, CORES)
        for t in threads:
            t.join(WAIT)
        assert statuses == [200] * CORES
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        stop(proc)


def semaphore_sets() -> set[str]:
    """The System V semaphore sets on this machine, by id."""
    lines = Path("/proc/sysvipc/sem").read_text().splitlines()[1:]
    return {line.split()[1] for line in lines}


@pytest.mark.e2e
def test_a_master_killed_with_sigkill_leaves_no_semaphore(tmp_path: Path) -> None:
    """The master cannot clean up after SIGKILL; its workers, exiting after it, do.

    gunicorn's through its worker_exit hook; granian's through their master watch
    (ops/granian_server.py), since granian's workers would otherwise serve on.
    """
    data_dir = tmp_path / "data"
    realm = f"budget {secrets.token_hex(3)}"
    keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", realm)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    before = semaphore_sets()
    proc, _ = start_server(data_dir, realm, ARTIFACTS / "budget-master-kill.log")
    try:
        eventually(lambda: len(children(proc.pid)) == 2, "two workers")
        workers = children(proc.pid)
        ours = semaphore_sets() - before
        assert len(ours) == 1  # the server's budget (no other test makes one meanwhile)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT)
        eventually(
            lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
            "the orphaned workers exiting",
        )
        assert not ours & semaphore_sets()
    finally:
        stop(proc)
