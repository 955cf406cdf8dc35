"""`keyhouse serve` with phase markers, for `make bench-cost` to run under callgrind.

    BENCH_COST_PROBE='{"mode": ..., "first": F, "final": N, "log": PATH}' \
        valgrind --tool=callgrind --dump-before=getsid ... python bench/cost_probe.py serve ...

Callgrind counts instructions per C function; the Python functions it sees are
the interpreter's, never ours. So this module makes the phases visible: at each
phase boundary it calls ``os.getsid(0)``, a libc function that nothing else in
the server calls (gunicorn's workers poll ``getppid``, which is why that one
will not do), and callgrind's ``--dump-before=getsid`` writes one profile part
per boundary. Every marker is logged here, in the order of the parts, with the
thread, the request it belongs to and the phase that starts; bench/cost.py
pairs the log with the parts.

The markers are wrappers this module puts around Django's, gunicorn's and
keyhouse's functions at start-up, in this process only: keyhouse's code path
is not changed, and the server is the real one, started by keyhouse's own
CLI entry point (``keyhouse.cli.runner.main``) with its gunicorn settings.

Two modes:

- ``totals``: one marker per request, when the WSGI app is entered. With
  ``--separate-threads=no`` each part is one whole request cycle, every thread
  of the worker included. The fewest markers, so the least disturbed total.
- ``phases``: a marker on entering and leaving each phase, on every thread
  that works for a request (the request thread, gthread's event loop, the
  hashing and mail threads). With ``--separate-threads=yes`` callgrind dumps
  only the marking thread's costs, so each part is one thread's stretch
  between two of its own markers, whatever the other threads did meanwhile.

Only requests to the two measured paths are counted (the readiness probe's
are not, however many there were). Markers run from request ``first`` to the
app entry of request ``final``; there the probe also measures its own cost
(the calibration loops below), writes the log and stops marking.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import threading
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

COUNTED_PATHS = frozenset({"/api/v1/fetch_api_key", "/api/v1/users/me"})
CALIBRATION_ROUNDS = 40
# A thread's label between phases, by the prefix of its name.
_THREAD_BASES = (
    ("MainThread", "http: event loop"),
    ("keyhouse-argon2", "hashing thread: idle"),
    ("keyhouse-mail", "mail thread: idle"),
)
REQUEST_THREAD_BASE = "http"

_mark_syscall = os.getsid


class _ThreadState:
    """One thread's marker state: its number in the log, its label between phases, its stack."""

    __slots__ = ("base", "number", "served", "stack")

    def __init__(self, number: int, base: int) -> None:
        self.number, self.base = number, base
        self.stack: list[int] = []
        self.served: set[str] = set()  # the counted paths it has served


class Markers:
    """The marker log, the request counter and each thread's stack of phases."""

    def __init__(self, mode: str, first: int, final: int, collect_at: list[int], log: Path) -> None:
        self.mode, self.first, self.final, self.log_path = mode, first, final, log
        self.collect_at = frozenset(collect_at)
        self.counter = 0
        self.active = False
        # One marker per profile part: thread number, request index, label number.
        # Flat integers, not tuples: the log then holds no object for Python's
        # garbage collector, whose timing (and so cost) it would otherwise shift.
        self._log = array("q")
        self._threads: dict[str, int] = {}
        self._labels: dict[str, int] = {}
        # Requests that were their thread's first of their path. Each request thread
        # has its own database connection, and on it the first request of a kind
        # compiles its prepared queries (keyhouse/prepared.py) and SQLite statements:
        # a cost of the thread, not of the request, which cost_report.py leaves out.
        self.first_use: list[int] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def label(self, name: str) -> int:
        return self._labels.setdefault(name, len(self._labels))

    def _state(self) -> _ThreadState:
        try:
            state: _ThreadState = self._local.state
        except AttributeError:
            name = threading.current_thread().name
            number = self._threads.setdefault(name, len(self._threads))
            state = self._local.state = _ThreadState(number, self.label(_thread_base(name)))
        return state

    def mark(self, label: int, request: int | None = None) -> None:
        if not self.active:
            return
        number = self._state().number
        with self._lock:  # log order == dump order: one marker at a time
            if not self.active:
                return
            self._log.extend((number, self.counter if request is None else request, label))
            _mark_syscall(0)

    def push(self, label: int) -> None:
        self._state().stack.append(label)
        self.mark(label)

    def pop(self) -> None:
        state = self._state()
        stack = state.stack
        stack.pop()
        self.mark(stack[-1] if stack else state.base)

    def phase(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with a marker on entry and on exit (whatever way it exits)."""
        label = self.label(name)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.push(label)
            try:
                return fn(*args, **kwargs)
            finally:
                self.pop()

        return wrapper

    def request_entered(self, environ: dict[str, Any]) -> bool:
        """Count a measured request; True if this one is the last (log written)."""
        if environ.get("PATH_INFO") not in COUNTED_PATHS:
            return False
        with self._lock:
            self.counter += 1
            counter = self.counter
        if counter in self.collect_at:
            # The collector's counts start from zero at each measured stretch, so its
            # collections fall on the same requests in every run (and this one costs
            # before the stretch's first marker, unmarked). Outside the lock: a
            # finalizer it runs may reach a marked function.
            active, self.active = self.active, False
            gc.collect()
            self.active = active
        if counter == self.first:
            self.active = True
        state = self._state()
        if environ["PATH_INFO"] not in state.served:
            state.served.add(environ["PATH_INFO"])
            self.first_use.append(counter)
        return counter == self.final

    def _entries(self) -> list[tuple[str, int, str]]:
        threads = {n: name for name, n in self._threads.items()}
        labels = {n: label for label, n in self._labels.items()}
        log = self._log
        return [(threads[log[i]], log[i + 1], labels[log[i + 2]]) for i in range(0, len(log), 3)]

    def finish(self) -> None:
        """Measure the markers' own cost, write the log, stop marking."""
        if self.mode == "phases":
            inner = self.phase("calibration: inside", lambda: None)
            self.push(self.label("calibration: between"))
            for _ in range(CALIBRATION_ROUNDS):
                inner()
            self.pop()
        else:
            between = self.label("calibration: between")
            for _ in range(CALIBRATION_ROUNDS):
                self.mark(between)
            self.mark(self.label("calibration: end"))
        with self._lock:
            self.active = False
        record = {
            "pid": os.getpid(),
            "mode": self.mode,
            "first": self.first,
            "final": self.final,
            "markers": self._entries(),
            "first_use": self.first_use,
            "threads": sorted(t.name for t in threading.enumerate()),
        }
        tmp = self.log_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self.log_path)


def _thread_base(name: str) -> str:
    for prefix, base in _THREAD_BASES:
        if name.startswith(prefix):
            return base
    return REQUEST_THREAD_BASE


def _install_request_counter(m: Markers) -> None:
    """The WSGI app's entry: count the request, and in phases mode mark Django's handler."""
    from keyhouse.api.input_validation import KeyhouseWSGIHandler

    call = KeyhouseWSGIHandler.__call__
    request, handler = m.label("request"), m.label("django: WSGI handler")

    def counted(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        last = m.request_entered(environ)
        if m.mode == "totals":
            m.mark(request)
            if last:
                m.finish()
            return call(self, environ, start_response)
        m.push(handler)
        try:
            if last:
                m.finish()
            return call(self, environ, start_response)
        finally:
            m.pop()

    KeyhouseWSGIHandler.__call__ = counted  # type: ignore[method-assign]


def _install_phases(m: Markers) -> None:
    """Markers around every phase the report names (bench/cost_report.py groups them)."""
    import django.core.handlers.base as base
    from django.http.response import HttpResponseBase
    from gunicorn.workers.gthread import ThreadWorker

    import keyhouse.api.basic_auth as basic_auth
    import keyhouse.api.middleware as api_middleware
    import keyhouse.auth.login_limits as login_limits
    import keyhouse.auth.pipeline as pipeline
    import keyhouse.mail as mail
    import keyhouse.users.hashers as hashers
    from keyhouse.ops.access_log import AccessLogger

    if "keyhouse.wsgi" in sys.modules:  # its handler would have the unwrapped middleware
        raise RuntimeError("cost_probe must be installed before keyhouse.wsgi is imported")

    convert = base.convert_exception_to_response

    def convert_marked(get_response: Any) -> Any:
        if getattr(get_response, "__name__", "") == "_get_response":
            label = "django: _get_response"
        else:
            label = f"mw: {type(get_response).__name__}"
        return m.phase(label, convert(get_response))

    base.convert_exception_to_response = convert_marked  # type: ignore[assignment]
    handler = base.BaseHandler
    handler.resolve_request = m.phase("routing", handler.resolve_request)  # type: ignore[method-assign]
    make_atomic = handler.make_view_atomic
    marked_views: dict[Any, Any] = {}  # made once per view: no wrapping cost per request

    def make_view_atomic(self: Any, view: Any) -> Any:
        marked = marked_views.get(view)
        if marked is None:
            marked = marked_views[view] = m.phase("view", make_atomic(self, view))
        return marked

    handler.make_view_atomic = make_view_atomic  # type: ignore[method-assign]
    HttpResponseBase.close = m.phase("django: response close", HttpResponseBase.close)  # type: ignore[method-assign]
    AccessLogger.access = m.phase("access log", AccessLogger.access)  # type: ignore[method-assign]

    # The password budget is one frozen LoginLimits that Attempt's default holds:
    # its callables are swapped in place (this process only) so every holder sees them.
    for name in ("check", "refund", "succeeded"):
        marked = m.phase("limits", getattr(login_limits.PASSWORD_LIMITS, name))
        object.__setattr__(login_limits.PASSWORD_LIMITS, name, marked)
    # The audit entry: opened before the secret is checked and closed after, or
    # written whole for an attempt refused early (auth/pipeline.py's _AuditEntry).
    for name in ("open_login_attempt", "close_login_attempt", "record_login_attempt"):
        setattr(pipeline, name, m.phase("audit", getattr(pipeline, name)))
    pipeline.email_on_new_login = m.phase("email", pipeline.email_on_new_login)  # type: ignore[assignment]
    pipeline.authenticate = m.phase("authentication", pipeline.authenticate)  # type: ignore[assignment]
    basic_auth.validate_api_key = m.phase("authentication", basic_auth.validate_api_key)  # type: ignore[assignment]
    basic_auth.hit = m.phase("limits", basic_auth.hit)  # type: ignore[assignment]
    api_middleware.rate_limit_headers = m.phase("limits", api_middleware.rate_limit_headers)  # type: ignore[assignment]

    run_on_hashing_thread = hashers.run_on_hashing_thread

    verify = m.label("hashing thread: verify")

    def verify_marked(fn: Callable[..., Any], *args: object) -> Any:
        m.push(verify)  # on the hashing thread
        try:
            return fn(*args)
        finally:
            m.pop()

    def hashed(fn: Callable[..., Any], *args: object) -> Any:
        return run_on_hashing_thread(verify_marked, fn, *args)

    hashers.run_on_hashing_thread = hashed  # type: ignore[assignment]
    mail._deliver = m.phase("mail thread: deliver", mail._deliver)  # type: ignore[assignment]

    enqueue = ThreadWorker.enqueue_req
    event_loop = m.label("http: event loop")

    def enqueue_marked(self: Any, conn: Any) -> None:
        # On gthread's event loop, for the request about to be handed to a thread.
        m.mark(event_loop, request=m.counter + 1)
        enqueue(self, conn)

    ThreadWorker.enqueue_req = enqueue_marked  # type: ignore[method-assign]


def main() -> int:
    from keyhouse.cli.runner import main as keyhouse_main
    from keyhouse.cli.runner import setup_django
    from keyhouse.data_dir import private_umask

    spec = json.loads(os.environ["BENCH_COST_PROBE"])
    markers = Markers(
        spec["mode"], int(spec["first"]), int(spec["final"]), spec["collect_at"], Path(spec["log"])
    )
    private_umask()  # as runner.main does first
    setup_django()  # the wrapped modules import models; runner.main's own call is then a no-op
    _install_request_counter(markers)
    if markers.mode == "phases":
        _install_phases(markers)
    return keyhouse_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
