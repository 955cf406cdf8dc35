"""`make bench`: keyhouse's login and API throughput, against the Argon2 bound and a DRF peer.

Figures and ratios, never pass/fail: targets are printed as MET / NOT MET and the
run exits 0 whatever they say (it exits non-zero only if it could not measure).
See docs/performance.md for what each figure means and what limits it.

Every duration scales with BENCH_SECONDS (default 8: one measured run lasts 8 s,
the flood 20 s, the whole run about 3 minutes after setup). Other knobs:
BENCH_WORKERS (default: cores), BENCH_GROWTH_SIZES (default 1000,10000,100000),
BENCH_FLOOD_SECONDS, BENCH_FLOOD_FACTOR (4), BENCH_FLOOD_API_RATE (20/s),
BENCH_API_CONNECTIONS (8 x cores), BENCH_WRK_THREADS (1, for API runs),
BENCH_STAGES (side_by_side,overload,growth,gateway,fleet,serving by default: which
stages run, e.g. BENCH_STAGES=serving),
BENCH_FLEET_WORKERS, BENCH_PG_GROWTH_SIZES (the fleet stage's).
KEYHOUSE_ARGON2_* and the other KEYHOUSE_* tuning variables pass through to
keyhouse; the Argon2 ones to the peer as well.

This file only runs the stages in order: config.py reads the knobs, data.py
seeds both servers, scenarios.py says what is measured, measure.py measures,
report.py prints the tables and the MET / NOT MET lines.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402
from config import Config  # noqa: E402
from data import prepare  # noqa: E402
from measure import log  # noqa: E402
from servers import BENCH  # noqa: E402


@contextlib.contextmanager
def _stage(name: str, seconds: dict[str, float]) -> Iterator[None]:
    """Log a stage's start and record how long it took (results.json's meta)."""
    t0 = time.monotonic()
    log(f"stage {name}")
    yield
    seconds[name] = round(time.monotonic() - t0, 1)


def run(cfg: Config, out: Path) -> dict[str, Any]:
    """Every stage in order; returns results.json's dict."""
    started = time.monotonic()
    stage_seconds: dict[str, float] = {}
    with _stage("prepare", stage_seconds):
        data = prepare(cfg, out)
    results: dict[str, Any] = {"setup": data.setup}
    if "side_by_side" in cfg.stages:
        with _stage("side_by_side", stage_seconds):
            # "keyhouse", "peer" and "argon2_bound", which the flood's rate is a multiple of.
            results.update(scenarios.side_by_side(cfg, data))
    if "overload" in cfg.stages:
        with _stage("overload", stage_seconds):
            bound = results["argon2_bound"]["per_second"]
            results["overload"] = scenarios.overload(cfg, data, bound)
    if "growth" in cfg.stages:
        with _stage("growth", stage_seconds):
            results["growth"] = scenarios.growth(cfg, data)
    if "gateway" in cfg.stages:
        with _stage("gateway", stage_seconds):
            results["gateway"] = scenarios.gateway(cfg, data)
    if "fleet" in cfg.stages:
        with _stage("fleet", stage_seconds):
            # Reuses side_by_side's keyhouse figures for the SQLite side when it ran.
            results["fleet"] = fleet.fleet(cfg, data, results)
    if "serving" in cfg.stages:
        with _stage("serving", stage_seconds):
            results["serving"] = scenarios.serving(cfg, data)
    if "side_by_side" in cfg.stages:
        results["targets"] = report.targets(results)
    results["meta"] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "stages": cfg.stages,
        "stage_seconds": stage_seconds,
        "wall_seconds": round(time.monotonic() - started, 1),
        "loadavg_at_end": os.getloadavg(),
    }
    return results


def main() -> int:
    cfg, out = Config(), BENCH / "out"
    results = run(cfg, out)
    path = report.write(results, cfg, out)
    log(f"wrote {path} and results.md in {results['meta']['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
