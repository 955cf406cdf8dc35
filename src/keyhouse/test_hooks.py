"""Points where a test may make the process kill itself, to prove what a crash leaves.

``KEYHOUSE_TEST_HOOKS`` names the points, comma-separated; at a named point the
process sends itself SIGKILL, as the kernel's OOM killer or an operator's
``kill -9`` would, with no cleanup. Unset (always, outside tests), ``reached`` is
one check of an empty set. The points:

- ``after-verification``: a sign-in's secret has just been checked, nothing after
  it done (auth/pipeline.py);
- ``after-response``: the response to a sign-in (``signing_in`` marks the request
  thread) has been written to the client's socket: Django's ``request_finished``,
  which the WSGI server sends when it closes the response after writing it.

Read from the environment once, at import, not through config_keys: it is no
setting an operator may turn on, and it must hold before settings load.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

ENV = "KEYHOUSE_TEST_HOOKS"
POINTS = frozenset({"after-verification", "after-response"})

_armed = frozenset(p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip())
_thread = threading.local()


def reached(point: str) -> None:
    """Kill this process now if a test armed ``point``."""
    if _armed and point in _armed:
        os.kill(os.getpid(), signal.SIGKILL)


def signing_in() -> None:
    """This thread's request is a sign-in: ``after-response`` applies to it."""
    if _armed:
        _thread.signing_in = True


def install() -> None:
    """Connect the points that hang on Django signals (keyhouse/apps.py calls this)."""
    unknown = _armed - POINTS
    if unknown:
        raise RuntimeError(f"{ENV}: unknown point(s) {', '.join(sorted(unknown))}")
    if _armed:
        logging.getLogger("keyhouse.test_hooks").warning(
            "%s is set: this process kills itself at %s (tests only)",
            ENV,
            ", ".join(sorted(_armed)),
        )
    if "after-response" in _armed:
        from django.core.signals import request_finished

        request_finished.connect(_after_response, dispatch_uid="keyhouse.test_hooks")


def _after_response(sender: Any, **kwargs: Any) -> None:
    if getattr(_thread, "signing_in", False):
        _thread.signing_in = False
        reached("after-response")
