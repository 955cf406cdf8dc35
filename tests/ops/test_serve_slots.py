"""``keyhouse serve`` splits the cores between its workers' hashing slots (ops/serve.py)."""

from __future__ import annotations

import math
import os

import pytest
from pytest_django.fixtures import Settings

from keyhouse.auth.hashing_gate import hashing_slots
from keyhouse.ops.serve import hashing_slots_per_worker, set_worker_hashing_slots


@pytest.mark.parametrize(
    ("workers", "cores", "slots"),
    [(2, 2, 1), (1, 2, 2), (2, 4, 2), (3, 4, 2), (8, 8, 1), (2, 1, 1), (4, 2, 1), (0, 2, 2)],
)
def test_workers_together_use_every_core_and_no_more(workers: int, cores: int, slots: int) -> None:
    assert hashing_slots_per_worker(workers, cores) == slots


def test_serve_sets_the_workers_share_when_unset(settings: Settings) -> None:
    settings.HASHING_SLOTS = 0
    assert hashing_slots() == os.cpu_count()  # a lone process: every core
    set_worker_hashing_slots(2)
    assert settings.HASHING_SLOTS == math.ceil((os.cpu_count() or 1) / 2)
    assert hashing_slots() == settings.HASHING_SLOTS


def test_serve_keeps_the_operators_slots(settings: Settings) -> None:
    settings.HASHING_SLOTS = 5
    set_worker_hashing_slots(2)
    assert settings.HASHING_SLOTS == 5
