"""`make bench-cost`: the CPU instructions one login (outside Argon2) and one users/me cost.

Instructions, not seconds: valgrind's callgrind counts them, and the count for
the same code and data hardly moves from run to run, on a loaded machine too,
where timings drift by ±10 % (docs/performance.md, "Instruction counts").
Figures, never pass/fail: the run exits non-zero only if it could not measure.

What runs: keyhouse's own server (`keyhouse serve`'s entry point and gunicorn
settings, one gthread worker) under ``valgrind --tool=callgrind``, started by
bench/cost_probe.py, which adds phase markers in that process only; a client
here, outside valgrind, sends warm-up and measured requests on one keep-alive
connection. Each of ``BENCH_COST_REPEATS`` (2) rounds makes a ``totals`` run
(one marker per request: the headline figures) and a ``phases`` run (a marker
at every phase boundary: where the instructions go), ``BENCH_COST_JOBS`` (the
cores, at most 2) servers at a time. Every run serves a fresh
copy of the same seeded database with PYTHONHASHSEED=0, so that the runs
differ only by what cannot be fixed (thread timing, the clock).

This file only runs the stages in order: config.py's CostConfig reads the
knobs, data.py seeds, cost_runs.py runs one server and reads its profile
parts (callgrind_files.py), cost_report.py makes the figures and tables.
Writes bench/out/cost.json and bench/out/cost.md and prints the tables;
``cost.py --report-only`` makes them again from the last run's segments
(bench/out/cost/runs.json) without running anything.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cost_report  # noqa: E402
import cost_runs  # noqa: E402
from config import CostConfig  # noqa: E402
from data import seed_keyhouse  # noqa: E402
from measure import log  # noqa: E402
from servers import BENCH, VENV_BIN  # noqa: E402

MODES = ("totals", "phases")


def _versions() -> dict[str, str]:
    valgrind = subprocess.run(
        [cost_runs.VALGRIND, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    freeze = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "pip", "freeze"], capture_output=True, text=True
    ).stdout.lower()
    pins = {
        line.split("==")[0]: line.split("==")[1]
        for line in freeze.splitlines()
        if line.split("==")[0] in {"django", "gunicorn", "argon2-cffi-bindings"}
    }
    return {"valgrind": valgrind, "python": platform.python_version(), **pins}


def _save(runs: dict[str, list[cost_runs.Run]], setup: dict[str, Any], path: Path) -> None:
    """Every segment of every run, so that the figures can be made again (--report-only)."""
    data = {"setup": setup, "runs": {m: [asdict(r) for r in rs] for m, rs in runs.items()}}
    path.write_text(json.dumps(data))


def _load(path: Path) -> tuple[dict[str, list[cost_runs.Run]], dict[str, Any]]:
    data = json.loads(path.read_text())
    runs = {
        m: [
            cost_runs.Run(**{**r, "segments": [cost_runs.Segment(**s) for s in r["segments"]]})
            for r in rs
        ]
        for m, rs in data["runs"].items()
    }
    return runs, data["setup"]


def main() -> int:
    cfg = CostConfig()
    out = BENCH / "out"
    work = out / "cost"
    if sys.argv[1:] == ["--report-only"]:  # the tables again, from the last run's segments
        runs, setup = _load(work / "runs.json")
        keys = ("warmup", "logins", "me", "repeats", "jobs")
        cfg = CostConfig(**{k: setup[k] for k in keys})  # the windows that run measured
        print(cost_report.write(cost_report.summarize(cfg, runs, setup), out).read_text())
        return 0
    shutil.rmtree(work, ignore_errors=True)
    started = time.monotonic()
    log("stage seed")
    seeded = work / "seeded"
    seed = seed_keyhouse(seeded, cfg.login_requests, cfg.me_requests)
    jobs = [(mode, repeat) for repeat in range(1, cfg.repeats + 1) for mode in MODES]
    log(f"stage runs: {len(jobs)} servers under callgrind, {cfg.jobs} at a time")
    # Side by side is safe for the counts: callgrind counts each process's own
    # instructions, whatever else the cores run (only what the clock drives, such
    # as gthread's once-a-second loop turn, grows with a slower run).
    with ThreadPoolExecutor(max_workers=cfg.jobs) as pool:
        futures = {
            job: pool.submit(
                cost_runs.run, job[0], cfg, seeded, seed, work / "-".join(map(str, job))
            )
            for job in jobs
        }
        for (mode, repeat), future in futures.items():
            run = future.result()
            log(f"  {mode} run {repeat}: {run.wall_seconds} s, {len(run.segments)} segments")
    runs = {
        mode: [futures[(mode, r)].result() for r in range(1, cfg.repeats + 1)] for mode in MODES
    }
    setup: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M %z"),
        **_versions(),
        "warmup": cfg.warmup,
        "logins": cfg.logins,
        "me": cfg.me,
        "repeats": cfg.repeats,
        "jobs": cfg.jobs,
        "argon2": seed["argon2"],
        "server_threads": seed["server"]["threads"],
        # keyhouse's SERVER as the seeded settings resolved it (KEYHOUSE_SERVER passes through).
        "server": seed["server"]["server"],
        "wall_seconds": round(time.monotonic() - started, 1),
        "loadavg_at_end": os.getloadavg(),
    }
    _save(runs, setup, work / "runs.json")
    result = cost_report.summarize(cfg, runs, setup)
    path = cost_report.write(result, out)
    print(path.read_text())
    log(
        f"wrote {out / 'cost.json'}, {path} and their {setup['server']} copies in "
        f"{setup['wall_seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
