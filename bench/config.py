"""The benchmark's knobs (BENCH_* variables) and the constants every part shares.

Read once, at start, into one `Config`, so that the scenarios and the report
agree on what ran (the report prints the run length and the flood factor).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

CORES = len(os.sched_getaffinity(0))
# Every seeded user's password, on keyhouse and the peer alike (bench/profile_paths.py too).
PASSWORD = "bench-Argon2id-horse-battery-7"
FORM = "application/x-www-form-urlencoded"


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


# The stages run.py runs, in this order; BENCH_STAGES picks some (overload needs
# side_by_side, whose Argon2 bound sets the flood's rate).
STAGES = ("side_by_side", "overload", "growth", "gateway", "serving")


def _stages() -> list[str]:
    chosen = [s.strip() for s in os.environ.get("BENCH_STAGES", ",".join(STAGES)).split(",")]
    unknown = sorted(set(chosen) - set(STAGES) - {""})
    if unknown:
        raise SystemExit(f"BENCH_STAGES: unknown stage(s) {', '.join(unknown)}; known: {STAGES}")
    if "overload" in chosen and "side_by_side" not in chosen:
        raise SystemExit("BENCH_STAGES: overload needs side_by_side (the Argon2 bound)")
    return [s for s in STAGES if s in chosen]


def _growth_sizes() -> list[int]:
    return [int(x) for x in os.environ.get("BENCH_GROWTH_SIZES", "1000,10000,100000").split(",")]


@dataclass
class Config:
    """What to measure and for how long; docs/performance.md lists every variable."""

    seconds: float = field(default_factory=lambda: _env_float("BENCH_SECONDS", 8))
    workers: int = field(default_factory=lambda: _env_int("BENCH_WORKERS", CORES))
    api_connections: int = field(
        default_factory=lambda: _env_int("BENCH_API_CONNECTIONS", 8 * CORES)
    )
    wrk_threads: int = field(default_factory=lambda: _env_int("BENCH_WRK_THREADS", 1))
    flood_factor: float = field(default_factory=lambda: _env_float("BENCH_FLOOD_FACTOR", 4))
    flood_api_rate: float = field(default_factory=lambda: _env_float("BENCH_FLOOD_API_RATE", 20))
    flood_max_in_flight: int = field(
        default_factory=lambda: _env_int("BENCH_FLOOD_MAX_IN_FLIGHT", 512)
    )
    growth_sizes: list[int] = field(default_factory=_growth_sizes)
    stages: list[str] = field(default_factory=_stages)

    @property
    def run_seconds(self) -> int:
        """One closed-loop run (wrk takes whole seconds)."""
        return max(1, round(self.seconds))

    @property
    def flood_seconds(self) -> float:
        return _env_float("BENCH_FLOOD_SECONDS", 2.5 * self.seconds)

    @property
    def levels(self) -> list[int]:
        """The login concurrencies: one connection, then 2 and 8 per core."""
        return sorted({1, 2 * CORES, 8 * CORES})

    @property
    def serving_levels(self) -> list[int]:
        """The login concurrencies of the serving-stack comparison: 2 and 8 per core."""
        return sorted({2 * CORES, 8 * CORES})

    @property
    def login_users(self) -> int:
        # 4 per connection at the top level: a user is never in flight twice, so the
        # per-username limit (5 / 30 min, cleared by each success) never triggers.
        return 4 * max(self.levels)

    @property
    def api_users(self) -> int:
        # The rest of the smallest growth size; at least enough that spreading the
        # users/me load keeps every user under api_by_user (200 / min).
        return max(200, self.growth_sizes[0] - self.login_users)
