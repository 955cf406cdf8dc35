"""How many password hashes may run at once, and the budget they are counted against.

Below every app, because both the users app's hasher (through the hashing threads,
keyhouse/hashing_threads.py) and the auth app's gate (auth/hashing_gate.py) size
themselves by it.

``HASHING_SLOTS`` (``0``: one per core) is the number of Argon2 computations a
whole ``keyhouse serve`` may run at once. Its master creates one budget of that
size before it forks (``share_budget_among_workers``) and every worker inherits
it: any one worker may use all of it, all together never more
(keyhouse/hashing_budget.py says why a System V semaphore). Where that primitive
is missing, each worker gets its share of the cores instead, ceil(cores /
workers), told after the fork (``worker_started``). A lone process (tests,
runserver) has the whole budget to itself. This is module state, not a setting:
settings are never changed at run time.
"""

from __future__ import annotations

import logging
import math
import os
from functools import lru_cache

from django.conf import settings

from keyhouse.hashing_budget import BudgetUnavailable, SharedBudget

logger = logging.getLogger(__name__)

# Created by `keyhouse serve`'s master before the fork, inherited by its workers.
_shared: SharedBudget | None = None
# Set in each worker when there is no shared budget; None in any other process.
_worker_share: int | None = None


def hashing_slots_per_worker(workers: int, cores: int) -> int:
    """The fallback without a shared budget: enough that the workers fill every core, no more.

    More, e.g. every core in every worker, would run workers × cores Argon2
    computations on ``cores`` cores in the even case, and each would take longer
    (docs/decisions.md, "Hot paths"). The price is that a worker holding every
    connection hashes on its share only, which the shared budget removes.
    """
    return max(1, math.ceil(cores / max(1, workers)))


@lru_cache(maxsize=1)
def cores() -> int:
    """The machine's cores, asked once: every login sizes its hashing gate by them."""
    return os.cpu_count() or 1


def budget_size() -> int:
    """HASHING_SLOTS if the operator set it, else one slot per core."""
    return settings.HASHING_SLOTS or cores()


def share_budget_among_workers() -> SharedBudget | None:
    """In the server's master, before it forks: one budget for all its workers.

    None, with a warning, where the platform has no System V semaphores; the
    workers then take their share of the cores each (``worker_started``).
    """
    global _shared
    release_shared_budget()
    try:
        _shared = SharedBudget.create(budget_size())
    except BudgetUnavailable as exc:
        logger.warning(
            "No hashing budget shared by the workers (%s): each worker gets its share "
            "of the hashing slots, so one holding every connection hashes on fewer cores",
            exc,
        )
    return _shared


def release_shared_budget() -> None:
    """The master's cleanup at exit (a no-op in workers and lone processes)."""
    global _shared
    if _shared is not None:
        _shared.remove()
        _shared = None


def orphaned_worker_exiting() -> None:
    """A worker whose master was killed (SIGKILL: no cleanup) deletes the budget itself.

    Its sibling workers are stopping too (a gunicorn worker exits once its master
    is gone); one that is still hashing then finds no slot (a 503) rather than
    leaving the semaphore in the kernel for good.
    """
    if _shared is not None:
        _shared.remove(orphaned=True)


def shared_budget() -> SharedBudget | None:
    """The budget this process shares with the server's other workers, if any."""
    return _shared


def worker_started(workers: int | None) -> None:
    """This process is one of ``workers`` server workers (None: it is on its own again)."""
    global _worker_share
    if workers is None or _shared is not None:
        _worker_share = None
    else:
        _worker_share = hashing_slots_per_worker(workers, cores())


def hashing_slots() -> int:
    """How many computations this process may run at once, so its hashing threads.

    The whole budget (shared or its own), except in a worker that has no shared
    budget and no HASHING_SLOTS: its share of the cores.
    """
    return settings.HASHING_SLOTS or _worker_share or cores()
