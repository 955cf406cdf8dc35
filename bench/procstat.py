"""What the server and the machine spend, read from /proc (Linux only)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (gunicorn: the master and its workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process (one that exits takes its time along)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return out


def wait_until_idle(
    root: int, quiet_cores: float = 0.1, window: float = 0.25, timeout: float = 5.0
) -> float:
    """Wait until ``root``'s tree uses under ``quiet_cores``; return the seconds waited.

    When a closed-loop client stops, the requests it had in flight still run in
    the server (up to a second's worth at high concurrency), as do background
    threads (mail). The next run, often against the other server, must not pay
    for them.
    """
    started = time.monotonic()
    pids = process_tree(root)
    while time.monotonic() - started < timeout:
        before = sum(cpu_by_pid(pids).values())
        time.sleep(window)
        if sum(cpu_by_pid(pids).values()) - before < quiet_cores * window:
            break
    return round(time.monotonic() - started, 2)


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent not idle, over all cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB. PSS splits pages shared after fork, so it adds up honestly."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


@dataclass
class MemorySampler:
    """Samples the summed RSS and PSS of a process tree every ``interval`` seconds."""

    root: int
    interval: float = 0.1
    peak_rss_kib: int = 0
    peak_pss_kib: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> tuple[int, int]:
        rss = pss = 0
        for pid in process_tree(self.root):
            r, p = memory_kib(pid)
            rss, pss = rss + r, pss + p
        return rss, pss

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = self.sample()
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class CpuMeter:
    """CPU use over a stretch of time, in cores: the server tree, this process and
    its waited-for children (the load generators), and everything else on the machine."""

    def __init__(self, server_root: int, *more_roots: int) -> None:
        # Several roots (the fleet stage's servers) count as one server, in that order.
        self.roots = (server_root, *more_roots)

    def _self_and_children(self) -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def __enter__(self) -> CpuMeter:
        # Master first, then the workers oldest first (placement.py's order).
        self._pids = []
        for root in self.roots:
            tree = process_tree(root)
            self._pids += [tree[0], *sorted(tree[1:])]
        self._server0 = cpu_by_pid(self._pids)
        self._client0 = self._self_and_children()
        self._machine0 = machine_busy_seconds()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(1e-9, time.monotonic() - self._t0)
        per_pid = {
            pid: t - self._server0.get(pid, 0.0) for pid, t in cpu_by_pid(self._pids).items()
        }
        server = sum(per_pid.values())
        client = self._self_and_children() - self._client0
        machine = machine_busy_seconds() - self._machine0
        self.result = {
            "server_cores": round(server / wall, 2),
            "loadgen_cores": round(client / wall, 2),
            "other_cores": round(max(0.0, machine - server - client) / wall, 2),
            # Master first, then the workers: shows whether the load was balanced.
            "per_process_cores": [round(per_pid[p] / wall, 2) for p in self._pids if p in per_pid],
        }
