"""How many password hashes one process computes at once: HASHING_SLOTS, or its share.

Below every app, because both the users app's hasher (through the hashing threads,
keyhouse/hashing_threads.py) and the auth app's gate (auth/hashing_gate.py) size
themselves by it. ``HASHING_SLOTS = 0`` means: a lone process (tests, runserver)
gets one slot per core; under ``keyhouse serve`` each worker gets its share of the
cores, which the server tells it after the fork (ops/serve.py). The share is this
module's state, not a setting: settings are never changed at run time.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

from django.conf import settings

# Set in each `keyhouse serve` worker (ops/serve.py); None in any other process.
_worker_share: int | None = None


def hashing_slots_per_worker(workers: int, cores: int) -> int:
    """Enough slots that the workers together verify on every core at once, and no more.

    More, e.g. every core in every worker, would let a worker that holds most of
    the keep-alive connections still use every core, but in the usual, even case
    it runs workers × cores Argon2 computations on ``cores`` cores, and those take
    longer per computation (caches, switching): measured on 2 cores with 2
    workers, 74–75 logins/s with 2 slots per worker against 81 with 1
    (docs/decisions.md, "Hot paths").
    """
    return max(1, math.ceil(cores / max(1, workers)))


def share_cores_among(workers: int | None) -> None:
    """This process is one of ``workers`` server workers (None: it is on its own)."""
    global _worker_share
    _worker_share = None if workers is None else hashing_slots_per_worker(workers, cores())


@lru_cache(maxsize=1)
def cores() -> int:
    """The machine's cores, asked once: every login sizes its hashing gate by them."""
    return os.cpu_count() or 1


def hashing_slots() -> int:
    """HASHING_SLOTS if the operator set it, else this worker's share, else every core."""
    return settings.HASHING_SLOTS or _worker_share or cores()
