"""Argon2 on the process's own hashing threads (keyhouse/hashing_threads.py), never on callers'.

The point is memory: each thread that ever runs Argon2 keeps its block in its
glibc arena, so only as many threads as there are slots may run it. What can be
checked from here is that the work lands on those threads, that there are no more
of them than HASHING_SLOTS, and that the caller sees results and errors as if the
call were its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, check_password, make_password
from pytest_django.fixtures import Settings

from keyhouse import hashing_threads
from keyhouse.hashing_threads import run_on_hashing_thread

PREFIX = "keyhouse-argon2"
WAIT = 10.0  # generous: the machine may be busy; only a deadlock reaches it


def on_own_thread(fn: Callable[[], Any], timeout: float = WAIT) -> Any:
    """``fn()`` on a fresh caller thread, failing the test instead of hanging on a deadlock."""
    outcome: list[Any] = []
    caller = threading.Thread(target=lambda: outcome.append(fn()), daemon=True)
    caller.start()
    caller.join(timeout)
    if caller.is_alive():
        # Cancel the queued inner call, freeing the stuck hashing thread: else the
        # interpreter would wait for it at exit and the run would never end.
        if hashing_threads._pool is not None:
            hashing_threads._pool.shutdown(wait=False, cancel_futures=True)
            hashing_threads._pool_key = None  # and let the next test have a working pool
        caller.join(timeout)
        pytest.fail(f"still blocked after {timeout}s: deadlock")
    [result] = outcome
    return result


@pytest.fixture
def argon2_threads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(operation, thread name) for each Argon2 call; the real hashing still runs."""
    seen: list[tuple[str, str]] = []
    encode, verify = Argon2PasswordHasher.encode, Argon2PasswordHasher.verify

    def recording_encode(self: Argon2PasswordHasher, password: str, salt: str) -> str:
        seen.append(("encode", threading.current_thread().name))
        return encode(self, password, salt)

    def recording_verify(self: Argon2PasswordHasher, password: str, encoded: str) -> bool:
        seen.append(("verify", threading.current_thread().name))
        return verify(self, password, encoded)

    monkeypatch.setattr(Argon2PasswordHasher, "encode", recording_encode)
    monkeypatch.setattr(Argon2PasswordHasher, "verify", recording_verify)
    return seen


def test_runs_on_a_hashing_thread() -> None:
    assert not threading.current_thread().name.startswith(PREFIX)
    assert run_on_hashing_thread(lambda: threading.current_thread().name).startswith(PREFIX)
    assert run_on_hashing_thread(pow, 2, 10) == 1024  # arguments pass through


def test_make_and_check_password_hash_on_hashing_threads(
    argon2_threads: list[tuple[str, str]],
) -> None:
    """Django's API, unchanged for callers, puts the Argon2 work on the hashing threads."""
    encoded = make_password("Correct-Horse-77")
    assert encoded.startswith("argon2$argon2id$")
    assert check_password("Correct-Horse-77", encoded) is True
    assert check_password("Wrong-Horse-77", encoded) is False
    assert [op for op, _ in argon2_threads] == ["encode", "verify", "verify"]
    assert all(name.startswith(PREFIX) for _, name in argon2_threads), argon2_threads


def test_exceptions_reach_the_caller() -> None:
    ran_on: list[str] = []

    def fail() -> None:
        ran_on.append(threading.current_thread().name)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        run_on_hashing_thread(fail)
    assert ran_on[0].startswith(PREFIX)  # raised there, re-raised here
    assert run_on_hashing_thread(lambda: "still serving") == "still serving"


def outer_and_inner_thread() -> tuple[str, str]:
    """The hashing thread a call runs on, and the one a call nested in it runs on."""
    return threading.current_thread().name, run_on_hashing_thread(
        lambda: threading.current_thread().name
    )


def test_a_call_from_a_hashing_thread_runs_inline(settings: Settings) -> None:
    """Two slots, so that a nested call sent to the pool would show as another thread."""
    settings.HASHING_SLOTS = 2
    outer_name, inner_name = on_own_thread(lambda: run_on_hashing_thread(outer_and_inner_thread))
    assert outer_name.startswith(PREFIX) and inner_name == outer_name


def test_a_nested_call_with_one_slot_does_not_deadlock(settings: Settings) -> None:
    """With one slot, waiting for a second thread from the only one would never end."""
    settings.HASHING_SLOTS = 1
    outer_name, inner_name = on_own_thread(lambda: run_on_hashing_thread(outer_and_inner_thread))
    assert outer_name.startswith(PREFIX) and inner_name == outer_name


def test_hashing_from_a_hashing_thread_does_not_deadlock(
    settings: Settings, argon2_threads: list[tuple[str, str]]
) -> None:
    settings.HASHING_SLOTS = 1
    encoded = on_own_thread(lambda: run_on_hashing_thread(make_password, "Correct-Horse-77"))
    assert on_own_thread(lambda: run_on_hashing_thread(check_password, "Correct-Horse-77", encoded))
    assert len({name for _, name in argon2_threads}) == 1


@pytest.mark.parametrize("slots", [1, 2, 3])
def test_no_more_threads_than_slots(settings: Settings, slots: int) -> None:
    """slots + 2 callers at once: the extra ones queue rather than get threads of their own."""
    settings.HASHING_SLOTS = slots
    names: list[str] = []
    lock, started, release = threading.Lock(), threading.Semaphore(0), threading.Event()

    def task() -> str:
        with lock:
            names.append(threading.current_thread().name)
        started.release()
        assert release.wait(WAIT)
        return threading.current_thread().name

    callers = [
        threading.Thread(target=run_on_hashing_thread, args=(task,), daemon=True)
        for _ in range(slots + 2)
    ]
    for caller in callers:
        caller.start()
    try:
        for _ in range(slots):
            assert started.acquire(timeout=WAIT)  # every slot busy at once …
        assert not started.acquire(timeout=0.3)  # … and no thread beyond them
        with lock:
            assert len(set(names)) == slots
    finally:
        release.set()
        for caller in callers:
            caller.join(WAIT)
    assert len(names) == slots + 2  # the queued ones ran, on the same threads
    assert len(set(names)) == slots
    assert all(name.startswith(PREFIX) for name in names)


def meet(parties: int, timeout: float) -> list[str]:
    """``parties`` hashing-thread tasks that must all run at once to finish."""
    barrier = threading.Barrier(parties, timeout=timeout)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            run_on_hashing_thread(barrier.wait)
        except threading.BrokenBarrierError as exc:
            errors.append(exc)

    callers = [threading.Thread(target=call, daemon=True) for _ in range(parties)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(WAIT + timeout * parties)
    return [type(e).__name__ for e in errors]


def test_changing_slots_builds_a_new_pool(settings: Settings) -> None:
    """Three tasks that wait for each other finish only on a pool of three threads."""
    settings.HASHING_SLOTS = 1
    assert meet(3, timeout=0.3) == ["BrokenBarrierError"] * 3  # one thread: they never meet
    settings.HASHING_SLOTS = 3
    assert meet(3, timeout=WAIT) == []
    settings.HASHING_SLOTS = 1
    assert meet(2, timeout=0.3) == ["BrokenBarrierError"] * 2  # and back down again


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (gunicorn's workers)")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads, on purpose
def test_a_forked_child_gets_its_own_threads() -> None:
    """gunicorn forks workers; the parent's pool threads do not exist in the child."""
    assert run_on_hashing_thread(lambda: 1) == 1  # the parent's pool exists, threads idle
    pid = os.fork()
    if pid == 0:  # the child: answer by exit status, never return into pytest
        code = 1
        try:
            name = run_on_hashing_thread(lambda: threading.current_thread().name)
            code = 0 if name.startswith(PREFIX) else 2
        finally:
            os._exit(code)
    deadline = threading.Event()
    for _ in range(int(WAIT / 0.05)):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        deadline.wait(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child's hashing call never returned: it used the parent's pool")
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread nice values are Linux's")
def test_hashing_threads_yield_the_cpu_to_request_threads() -> None:
    """Under a flood, refusals and API-key requests must not wait behind Argon2 for a core."""
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    theirs = run_on_hashing_thread(
        lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    )
    assert theirs == min(19, mine + hashing_threads.HASHING_NICENESS)
