"""``keyhouse serve``'s hashing slots: one budget for all its workers (hashing_slots.py).

The master makes the budget before it forks (ops/serve.py calls
share_budget_among_workers); each worker's post_fork hook (gunicorn's, or
granian's worker loader) then hashes against it with as many hashing threads as
it has slots. Without a shared budget (a platform without System V semaphores)
each worker takes its share of the cores. The settings are never changed at run time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

from keyhouse.auth.hashing_gate import get_gate
from keyhouse.hashing_slots import (
    budget_size,
    hashing_slots,
    hashing_slots_per_worker,
    release_shared_budget,
    share_budget_among_workers,
    shared_budget,
    worker_started,
)
from keyhouse.ops.gunicorn_server import _post_fork

CORES = os.cpu_count() or 1


@pytest.fixture(autouse=True)
def lone_process() -> Iterator[None]:
    yield
    release_shared_budget()
    worker_started(None)


def test_a_worker_may_use_the_whole_shared_budget(settings: Settings) -> None:
    settings.HASHING_SLOTS = 0
    budget = share_budget_among_workers()  # what the master does before forking
    assert budget is not None and budget.size == CORES
    _post_fork(2)(None, None)  # what gunicorn calls in each new worker
    assert hashing_slots() == CORES  # its hashing threads: one per core, not its share
    gate = get_gate()
    assert gate.budget is shared_budget() and gate.slots == CORES
    assert settings.HASHING_SLOTS == 0  # the setting itself is untouched


def test_the_operators_slots_size_the_shared_budget(settings: Settings) -> None:
    settings.HASHING_SLOTS = 5
    budget = share_budget_among_workers()
    assert budget is not None and budget.size == budget_size() == 5
    _post_fork(3)(None, None)
    assert hashing_slots() == 5 and get_gate().slots == 5


def test_the_budget_goes_with_the_master() -> None:
    budget = share_budget_among_workers()
    assert budget is not None and budget.try_acquire()
    release_shared_budget()  # the master's on_exit
    assert shared_budget() is None
    assert not budget.try_acquire() and budget.free() == 0  # the set is gone, not leaked


@pytest.mark.parametrize(
    ("workers", "cores", "slots"),
    [(2, 2, 1), (1, 2, 2), (2, 4, 2), (3, 4, 2), (8, 8, 1), (2, 1, 1), (4, 2, 1), (0, 2, 2)],
)
def test_without_a_shared_budget_workers_split_the_cores(
    workers: int, cores: int, slots: int
) -> None:
    assert hashing_slots_per_worker(workers, cores) == slots


def test_without_a_shared_budget_a_worker_takes_its_share(settings: Settings) -> None:
    settings.HASHING_SLOTS = 0
    assert shared_budget() is None
    assert hashing_slots() == CORES  # a lone process: every core
    _post_fork(2)(None, None)
    assert hashing_slots() == math.ceil(CORES / 2)
    assert get_gate().slots == math.ceil(CORES / 2)


def test_a_granian_worker_uses_the_inherited_budget(settings: Settings) -> None:
    pytest.importorskip("granian")
    from keyhouse.ops.granian_server import worker_app

    settings.HASHING_SLOTS = 0
    share_budget_among_workers()
    worker_app(2, access_log=False)  # what granian calls in each new (forked) worker
    assert hashing_slots() == CORES and get_gate().budget is shared_budget()
    assert settings.HASHING_SLOTS == 0


def test_a_granian_worker_without_a_budget_takes_its_share(settings: Settings) -> None:
    pytest.importorskip("granian")
    from keyhouse.ops.granian_server import worker_app

    settings.HASHING_SLOTS = 0
    assert shared_budget() is None  # as in a spawned worker, or without SysV IPC
    worker_app(2, access_log=False)
    assert hashing_slots() == math.ceil(CORES / 2)
    assert settings.HASHING_SLOTS == 0


def test_the_operators_slots_win_without_a_budget(settings: Settings) -> None:
    settings.HASHING_SLOTS = 5
    worker_started(2)
    assert hashing_slots() == 5
