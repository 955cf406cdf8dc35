"""Wait for a SIGSTOP to take effect, so that a "paused" server really answers nothing.

``kill(pid, SIGSTOP)`` returns before every thread of the target has stopped; on a
busy machine a request sent straight after can still be served (seen in CI: a
search answered by a just-"paused" slapd). Reading each thread's state from
/proc closes that window. Hand-written: psutil would be a dependency for 15 lines.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path


def _thread_states(pid: int) -> list[str]:
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the thread ended meanwhile
            continue
        states.append(text.rpartition(")")[2].split()[0])
    return states


def wait_stopped(pids: Iterable[int], timeout: float = 5.0) -> None:
    """Return once every thread of every pid is stopped (state T/t) or gone."""
    pending = list(pids)
    deadline = time.monotonic() + timeout
    while pending:
        pending = [pid for pid in pending if any(s not in "Tt" for s in _thread_states(pid))]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {pending} did not stop within {timeout} s")
        time.sleep(0.005)
