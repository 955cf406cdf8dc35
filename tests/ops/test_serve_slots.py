"""``keyhouse serve`` splits the cores between its workers' hashing slots (hashing_slots.py).

The split is told to each worker after the fork (gunicorn's post_fork hook,
granian's worker loader); the settings are never changed at run time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

from keyhouse.hashing_slots import hashing_slots, hashing_slots_per_worker, share_cores_among
from keyhouse.ops.gunicorn_server import _post_fork


@pytest.fixture(autouse=True)
def lone_process() -> Iterator[None]:
    yield
    share_cores_among(None)


@pytest.mark.parametrize(
    ("workers", "cores", "slots"),
    [(2, 2, 1), (1, 2, 2), (2, 4, 2), (3, 4, 2), (8, 8, 1), (2, 1, 1), (4, 2, 1), (0, 2, 2)],
)
def test_workers_together_use_every_core_and_no_more(workers: int, cores: int, slots: int) -> None:
    assert hashing_slots_per_worker(workers, cores) == slots


def test_a_forked_worker_takes_its_share_when_unset(settings: Settings) -> None:
    settings.HASHING_SLOTS = 0
    assert hashing_slots() == os.cpu_count()  # a lone process: every core
    _post_fork(2)(None, None)  # what gunicorn calls in each new worker
    assert hashing_slots() == math.ceil((os.cpu_count() or 1) / 2)
    assert settings.HASHING_SLOTS == 0  # the setting itself is untouched


def test_a_granian_worker_takes_its_share_when_unset(settings: Settings) -> None:
    pytest.importorskip("granian")
    from keyhouse.ops.granian_server import worker_app

    settings.HASHING_SLOTS = 0
    worker_app(2, access_log=False)  # what granian calls in each new worker
    assert hashing_slots() == math.ceil((os.cpu_count() or 1) / 2)
    assert settings.HASHING_SLOTS == 0


def test_the_operators_slots_win(settings: Settings) -> None:
    settings.HASHING_SLOTS = 5
    share_cores_among(2)
    assert hashing_slots() == 5
