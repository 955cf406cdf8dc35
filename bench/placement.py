"""Where a closed-loop load's connections land: on chosen gunicorn workers, not by chance.

gunicorn's workers race to accept connections on one shared socket, and a
keep-alive connection stays with the worker that accepted it, so left alone
the same wrk run lands 8 + 8 one time and 16 + 0 the next. Both happen in
production (the second is what a reverse proxy with a small upstream keep-alive
pool produces), so the benchmark measures both on purpose:

- **balanced**: the connections split evenly, one wrk process per worker;
- **pinned**: every connection on one worker, the others idle.

The way to choose, with no change to the server: a worker that is stopped
(SIGSTOP) cannot accept. So before each wrk process starts, every worker but
its target is stopped; once the target holds that wrk's connections (counted
in /proc: the worker's socket inodes against /proc/net/tcp's established
connections on the server's port), the next one goes, and at the end every
worker continues. A worker is stopped only while another wrk connects (a few
milliseconds); a pinned run's idle workers are stopped only until its
connections are placed. Linux only, like procstat.py.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from procstat import process_tree

# How long to wait for a worker to accept its share before giving up (and saying so).
PLACE_TIMEOUT = 10.0
_ESTABLISHED = "01"


def workers_of(master: int) -> list[int]:
    """The gunicorn master's workers, oldest pid first."""
    return sorted(p for p in process_tree(master) if p != master)


def plan(mode: str, connections: int, workers: int) -> list[int]:
    """How many connections each worker gets: an even split, or all on the first."""
    if mode == "pinned":
        return [connections] + [0] * (workers - 1)
    base, extra = divmod(connections, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


def _server_socket_inodes(port: int) -> set[str]:
    """Inodes of the established TCP connections whose local end is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _ESTABLISHED and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def connections_held(pids: list[int], port: int) -> list[int]:
    """How many client connections to ``port`` each process holds open now."""
    inodes = _server_socket_inodes(port)
    held = []
    for pid in pids:
        count = 0
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(fd.path)
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    count += 1
        except OSError:
            pass
        held.append(count)
    return held


def _stopped(pid: int) -> bool:
    """Every thread of ``pid`` stopped (a SIGSTOP takes effect asynchronously)."""
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            if stat.read_text().rpartition(")")[2].split()[0] not in "Tt":
                return False
        except OSError:
            continue
    return True


def _only_running(workers: list[int], target: int) -> None:
    """Stop every worker but ``target``, continue ``target``; return once it is so."""
    for pid in workers:
        os.kill(pid, signal.SIGCONT if pid == target else signal.SIGSTOP)
    deadline = time.monotonic() + PLACE_TIMEOUT
    while not all(_stopped(p) for p in workers if p != target):
        if time.monotonic() > deadline:
            raise RuntimeError("a worker did not stop")
        time.sleep(0.002)


@contextmanager
def placed(
    master: int, port: int, shares: list[int], start: Callable[[int, int], object]
) -> Iterator[dict[str, object]]:
    """Start ``start(part, connections)`` for each worker's share, each landing on its worker.

    Yields what was asked and what each worker held once placed ("placement" in
    results.json); every worker runs again when the block is entered.
    """
    workers = workers_of(master)
    if len(workers) != len(shares):
        raise RuntimeError(f"{len(workers)} workers for shares {shares}")
    baseline = connections_held(workers, port)
    placed_ok = True
    try:
        for part, (worker, share) in enumerate(
            (w, s) for w, s in zip(workers, shares, strict=True) if s
        ):
            _only_running(workers, worker)
            start(part, share)
            index = workers.index(worker)
            deadline = time.monotonic() + PLACE_TIMEOUT
            while connections_held([worker], port)[0] - baseline[index] < share:
                if time.monotonic() > deadline:
                    placed_ok = False
                    break
                time.sleep(0.002)
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    held = [n - b for n, b in zip(connections_held(workers, port), baseline, strict=True)]
    yield {"wanted": shares, "held": held, "placed": placed_ok and held == shares}
