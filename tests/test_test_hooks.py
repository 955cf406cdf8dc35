"""keyhouse/test_hooks.py: unset, nothing happens; armed, the process really dies.

The e2e test tests/e2e/test_crash_keeps_records.py relies on the kill; this checks
the mechanism itself in a child process, and that an unknown point is refused.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PROGRAM = (
    "from keyhouse import test_hooks\ntest_hooks.reached('after-verification')\nprint('alive')\n"
)


def run(hooks: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KEYHOUSE_TEST_HOOKS"}
    if hooks is not None:
        env["KEYHOUSE_TEST_HOOKS"] = hooks
    env["PYTHONPATH"] = str(SRC)
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60
    )


def test_unset_the_point_is_passed() -> None:
    done = run(None)
    assert done.returncode == 0 and done.stdout == "alive\n"


def test_another_point_armed_this_one_is_passed() -> None:
    assert run("after-response").stdout == "alive\n"


def test_armed_the_process_is_killed_on_the_spot() -> None:
    done = run("after-verification")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout == ""


def test_an_unknown_point_is_refused_at_start_up() -> None:
    program = "from keyhouse import test_hooks\ntest_hooks.install()\n"
    env = dict(os.environ, KEYHOUSE_TEST_HOOKS="after-lunch", PYTHONPATH=str(SRC))
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "unknown point(s) after-lunch" in done.stderr
