"""Hashing slots as a budget: one process's, or one shared by every worker of a server.

A slot is the right to run one Argon2 computation. ``keyhouse serve`` creates one
``SharedBudget`` of ``HASHING_SLOTS`` (default: one per core) in its master before
it forks, and every worker inherits it: a worker that holds every keep-alive
connection may then hash on every core while the others idle, and all workers
together never run more computations than there are slots (docs/decisions.md,
"Hot paths"). A lone process (tests, runserver) uses a ``LocalBudget``.

``SharedBudget`` is a System V semaphore because it is the one primitive that is:

- *machine-wide and blocking with a timeout* (``semtimedop``): a waiter in any
  worker wakes when a slot frees in any worker, in arrival order;
- *crash-safe*: every change is made with ``SEM_UNDO``, so when a process dies,
  kill -9 included, the kernel gives back whatever it held. A POSIX semaphore
  (``multiprocessing.Semaphore``) has no undo, so a worker killed mid-hash would
  shrink capacity for good; one ``flock``ed file per slot is crash-safe, but a
  waiter must block on one file and misses another that frees first (tried: no
  better than a slot per worker);
- *countable*: the kernel knows how many threads wait on it, machine-wide
  (``GETNCNT``), which the hashing gate needs for its 503 estimate.

Hand-written over ctypes because the standard library has no System V IPC and
the library that wraps it, ``sysv_ipc`` on PyPI, cannot bound a wait here: its
Linux wheels (1.2.0, the only release with a wheel for CPython 3.11 on Linux)
are built without ``semtimedop`` (``sysv_ipc.SEMAPHORE_TIMEOUT_SUPPORTED`` is
False, its issue #69), and it then treats every timeout, zero included, as
infinite (documented; tried: ``acquire(0.2)`` on an empty semaphore never
returned). A login would wait for a slot forever instead of HASHING_MAX_WAIT.
Worth switching once its wheels report timeouts supported. The calls are XSI
and Linux's ABI for them is stable. Linux only (``semtimedop``): elsewhere
``create`` raises BudgetUnavailable and the server falls back to a share of the
cores per worker (keyhouse/hashing_slots.py).
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import threading
import time
from typing import Protocol

# <sys/ipc.h>, <sys/sem.h> on Linux (every architecture uses these values).
_IPC_PRIVATE = 0
_IPC_CREAT = 0o1000
_IPC_RMID = 0
_IPC_NOWAIT = 0o4000
_SEM_UNDO = 0x1000
_GETVAL = 12
_GETNCNT = 14
_SETVAL = 16
# The set is gone (its server's master exited): no slot can be had from it.
_GONE = (errno.EIDRM, errno.EINVAL)


class BudgetUnavailable(Exception):
    """This platform or kernel offers no shared budget (no System V semaphores)."""


class SlotBudget(Protocol):
    """What the hashing gate (auth/hashing_gate.py) needs of a budget."""

    size: int

    def try_acquire(self) -> bool: ...

    def acquire(self, timeout: float) -> bool: ...

    def release(self) -> None: ...

    def free(self) -> int: ...

    def waiting(self) -> int: ...


class LocalBudget:
    """One process's slots: a lone process (tests, runserver), or a worker without SysV IPC."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._semaphore = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._held = 0
        self._waiting = 0

    def try_acquire(self) -> bool:
        acquired = self._semaphore.acquire(blocking=False)
        if acquired:
            with self._lock:
                self._held += 1
        return acquired

    def acquire(self, timeout: float) -> bool:
        with self._lock:
            self._waiting += 1
        try:
            acquired = self._semaphore.acquire(timeout=max(0.0, timeout))
        finally:
            with self._lock:
                self._waiting -= 1
        if acquired:
            with self._lock:
                self._held += 1
        return acquired

    def release(self) -> None:
        with self._lock:
            self._held -= 1
        self._semaphore.release()

    def free(self) -> int:
        return self.size - self._held

    def waiting(self) -> int:
        return self._waiting


class _SemBuf(ctypes.Structure):
    _fields_ = [
        ("sem_num", ctypes.c_ushort),
        ("sem_op", ctypes.c_short),
        ("sem_flg", ctypes.c_short),
    ]


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _libc() -> ctypes.CDLL:
    """libc's semget / semctl / semtimedop; ctypes releases the GIL while they block."""
    if not sys.platform.startswith("linux"):
        raise BudgetUnavailable(f"no semtimedop on {sys.platform}")
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        libc.semget.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        libc.semget.restype = ctypes.c_int
        libc.semctl.restype = ctypes.c_int  # variadic: arguments passed as c_int
        libc.semtimedop.argtypes = [
            ctypes.c_int,
            ctypes.POINTER(_SemBuf),
            ctypes.c_size_t,
            ctypes.POINTER(_TimeSpec),
        ]
        libc.semtimedop.restype = ctypes.c_int
    except AttributeError as exc:
        raise BudgetUnavailable(str(exc)) from exc
    return libc


def _os_error(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")


class SharedBudget:
    """``size`` slots shared by every process that inherits this object across fork()."""

    def __init__(self, libc: ctypes.CDLL, semid: int, size: int) -> None:
        self._libc = libc
        self.semid = semid
        self.size = size
        self._owner = os.getpid()  # the process that created the set, and only it removes it
        self._take = (_SemBuf * 1)(_SemBuf(0, -1, _SEM_UNDO))
        self._take_now = (_SemBuf * 1)(_SemBuf(0, -1, _SEM_UNDO | _IPC_NOWAIT))
        self._give = (_SemBuf * 1)(_SemBuf(0, 1, _SEM_UNDO))

    @classmethod
    def create(cls, size: int) -> SharedBudget:
        """A new private set of one semaphore, worth ``size``; readable by this user only."""
        if not 1 <= size <= 32767:  # SEMVMX
            raise ValueError(f"a budget of {size} slots")
        try:
            libc = _libc()
            semid = libc.semget(_IPC_PRIVATE, 1, _IPC_CREAT | 0o600)
        except OSError as exc:  # no libc to load
            raise BudgetUnavailable(str(exc)) from exc
        if semid < 0:
            raise BudgetUnavailable(str(_os_error("semget")))
        budget = cls(libc, semid, size)
        if libc.semctl(semid, 0, _SETVAL, ctypes.c_int(size)) < 0:
            error = _os_error("semctl SETVAL")
            budget.remove()
            raise BudgetUnavailable(str(error))
        return budget

    def _op(self, ops: ctypes.Array[_SemBuf], timeout: float | None) -> bool:
        """One semop; False if it would block (or timed out), retrying on EINTR."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            spec = None
            if deadline is not None:
                left = max(0.0, deadline - time.monotonic())
                spec = ctypes.byref(_TimeSpec(int(left), int((left % 1) * 1e9)))
            if self._libc.semtimedop(self.semid, ops, 1, spec) == 0:
                return True
            code = ctypes.get_errno()
            if code == errno.EINTR:  # a signal (gunicorn's): wait on for the time left
                continue
            if code == errno.EAGAIN or code in _GONE:
                return False
            raise _os_error("semtimedop")

    def try_acquire(self) -> bool:
        return self._op(self._take_now, None)

    def acquire(self, timeout: float) -> bool:
        return self._op(self._take, timeout)

    def release(self) -> None:
        try:
            self._op(self._give, None)
        except OSError:  # pragma: no cover - only ERANGE on a corrupted count
            pass

    def _get(self, cmd: int) -> int:
        value = int(self._libc.semctl(self.semid, 0, cmd))
        return max(0, value)  # -1: the set is gone, nothing free and nobody waiting

    def free(self) -> int:
        """Slots free now, in all workers together."""
        return self._get(_GETVAL)

    def waiting(self) -> int:
        """Threads blocked waiting for a slot now, in all workers together."""
        return self._get(_GETNCNT)

    def remove(self, orphaned: bool = False) -> None:
        """Delete the set; only in the process that created it (a worker that unwinds
        through ``keyhouse serve``'s code after the fork must not), or, with
        ``orphaned``, in a worker whose master died without deleting it."""
        if orphaned or os.getpid() == self._owner:
            self._libc.semctl(self.semid, 0, _IPC_RMID)  # a second call: EINVAL, ignored
