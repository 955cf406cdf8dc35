"""Argon2 runs on a few long-lived threads per process, never on request threads.

Argon2 mallocs its whole memory block (19 MiB at the defaults) on every call.
glibc serves that block from the calling thread's arena and keeps it there after
the free, so if any of a worker's request threads (24 by default) could hash, a
worker could keep 24 blocks resident although the hashing gate lets only
``HASHING_SLOTS`` run at once. Forcing such blocks onto mmap would bound memory
but costs every login some 5 000 page faults (about 11 ms of CPU, a third of a
login). Run on as many dedicated threads as there are slots, each thread reuses
its own block, already mapped: memory stays at slots × block and no login pays
for faults. (No library does this: it is a property of glibc's allocator.)

Below every app (users/hashers.py runs the hashes here; auth/hashing_gate.py
bounds who may queue for them): nothing imports upward (docs/decisions.md, "Layers").

The hashing threads run at a lower priority (nice + 10, per thread on Linux): when
a flood of logins keeps every core busy, the request threads that refuse the
surplus with a fast 503, or serve API-key requests, still get the CPU first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from keyhouse.hashing_slots import hashing_slots

T = TypeVar("T")

_PREFIX = "keyhouse-argon2"
# Added to the hashing threads' nice value (Linux sets it per thread).
HASHING_NICENESS = 10
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
# (process id, threads): a forked child or new settings (tests tune slots) get a new pool.
_pool_key: tuple[int, int] | None = None


def _lower_priority() -> None:
    """Let request threads (refusals, API-key requests) run before Argon2 when CPU is short."""
    try:
        me = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, me) + HASHING_NICENESS
        os.setpriority(os.PRIO_PROCESS, me, min(19, niceness))
    except (AttributeError, OSError):  # not Linux: priorities are per process there
        pass


def _get_pool() -> ThreadPoolExecutor:
    global _pool, _pool_key
    key = (os.getpid(), hashing_slots())
    with _lock:
        if _pool is None or _pool_key != key:
            old, same_process = _pool, _pool_key is not None and _pool_key[0] == key[0]
            _pool = ThreadPoolExecutor(
                max_workers=key[1], thread_name_prefix=_PREFIX, initializer=_lower_priority
            )
            _pool_key = key
            if old is not None and same_process:
                old.shutdown(wait=False)
        return _pool


def run_on_hashing_thread(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on one of this process's hashing threads; its result or exception."""
    if threading.current_thread().name.startswith(_PREFIX):
        return fn(*args)
    try:
        future = _get_pool().submit(fn, *args)
    except RuntimeError:  # the pool was replaced (new settings) and shut down meanwhile
        future = _get_pool().submit(fn, *args)
    return future.result()
