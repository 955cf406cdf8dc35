"""prometheus_client's multiprocess mode for ``keyhouse serve``'s workers (gunicorn's or granian's).

Each worker writes its metric values to files in ``PROMETHEUS_MULTIPROC_DIR``;
/metrics (ops/metrics.py) adds up the files of every worker. prometheus_client
decides between in-memory and file-backed values when it is first imported, so
the variable must be set in the master before that import and before the fork.
This module therefore never imports prometheus_client at module level.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prometheus_loaded() -> bool:
    return "prometheus_client" in sys.modules


def prepare_metrics_dir() -> Callable[[Any], None]:
    """Point ENV at an empty directory; return the ``on_exit`` hook that tidies up.

    An operator's own ENV is kept but emptied (files of an earlier run would add
    its counts to this one's); otherwise a temporary directory is made and
    removed at exit.
    """
    configured = os.environ.get(ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return lambda _arbiter: None
    if prometheus_loaded():
        # Too late: the workers would inherit in-memory values and /metrics would
        # show only the worker that happens to answer the scrape.
        raise RuntimeError("prometheus_client was imported before keyhouse serve set " + ENV)
    path = Path(tempfile.mkdtemp(prefix="keyhouse-metrics-"))
    os.environ[ENV] = str(path)

    def on_exit(_arbiter: Any) -> None:
        shutil.rmtree(path, ignore_errors=True)

    return on_exit


def forget_worker(pid: int) -> None:
    """In the master, once worker ``pid`` is gone: drop its live gauges (counters stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def child_exit(_arbiter: Any, worker: Any) -> None:
    """gunicorn's hook for ``forget_worker``."""
    forget_worker(worker.pid)
