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
STAGES = ("side_by_side", "overload", "growth", "gateway", "fleet", "serving")
# Run only when BENCH_STAGES names them. None now: issue 17 asks one `make bench`
# to record the serving-stack comparison beside the rest.
OPT_IN_STAGES: tuple[str, ...] = ()


def _stages() -> list[str]:
    default = ",".join(s for s in STAGES if s not in OPT_IN_STAGES)
    chosen = [s.strip() for s in os.environ.get("BENCH_STAGES", default).split(",")]
    unknown = sorted(set(chosen) - set(STAGES) - {""})
    if unknown:
        raise SystemExit(f"BENCH_STAGES: unknown stage(s) {', '.join(unknown)}; known: {STAGES}")
    if "overload" in chosen and "side_by_side" not in chosen:
        raise SystemExit("BENCH_STAGES: overload needs side_by_side (the Argon2 bound)")
    return [s for s in STAGES if s in chosen]


def _growth_sizes() -> list[int]:
    return [int(x) for x in os.environ.get("BENCH_GROWTH_SIZES", "1000,10000,100000").split(",")]


def _pg_growth_sizes() -> list[int]:
    # The same sizes as on SQLite unless told (empty: none); 100 000 users seed in ~9 s on PG.
    sizes = os.environ.get("BENCH_PG_GROWTH_SIZES")
    if sizes is None:
        return _growth_sizes()
    return [int(x) for x in sizes.split(",") if x.strip()]


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
    # The fleet stage: workers per server (two servers share the machine's cores),
    # and the growth sizes on PostgreSQL (empty: no PG growth runs).
    fleet_workers: int = field(default_factory=lambda: _env_int("BENCH_FLEET_WORKERS", 0))
    pg_growth_sizes: list[int] = field(default_factory=_pg_growth_sizes)

    @property
    def workers_per_fleet_server(self) -> int:
        """BENCH_FLEET_WORKERS, or half the workers: the machine runs as many as alone."""
        return self.fleet_workers or max(1, self.workers // 2)

    @property
    def fleet_login_levels(self) -> list[int]:
        """The login concurrencies that split over two servers (one connection cannot)."""
        return [c for c in self.levels if c >= 2]

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
    def login_cases(self) -> list[tuple[int, str]]:
        """Each login concurrency balanced over the workers, and from two connections per
        worker on also pinned to one worker (bench/placement.py)."""
        cases = []
        for c in self.levels:
            cases.append((c, "balanced"))
            if c >= 2 * self.workers:
                cases.append((c, "pinned"))
        return cases

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


@dataclass
class CostConfig:
    """`make bench-cost`'s knobs (BENCH_COST_*) and the request sequence they make.

    One server run sends, on one keep-alive connection: ``warmup`` logins,
    ``logins`` measured ones and one more; then ``warmup`` users/me, ``me``
    measured ones and two more. The request after the last measured one of
    each kind closes the measured ones' stretches on the threads that mark
    only when work reaches them (bench/cost_probe.py); the very last one
    makes the probe write its log.
    """

    warmup: int = field(default_factory=lambda: _env_int("BENCH_COST_WARMUP", 10))
    logins: int = field(default_factory=lambda: _env_int("BENCH_COST_LOGINS", 12))
    me: int = field(default_factory=lambda: _env_int("BENCH_COST_ME", 40))
    repeats: int = field(default_factory=lambda: _env_int("BENCH_COST_REPEATS", 2))
    jobs: int = field(default_factory=lambda: _env_int("BENCH_COST_JOBS", min(2, CORES)))
    keep_profiles: bool = field(default_factory=lambda: os.environ.get("BENCH_COST_KEEP") == "1")

    @property
    def login_window(self) -> range:
        """The measured logins' request numbers (the probe counts from 1)."""
        return range(self.warmup + 1, self.warmup + self.logins + 1)

    @property
    def me_window(self) -> range:
        start = self.login_window.stop + 1 + self.warmup
        return range(start, start + self.me)

    @property
    def first_marked(self) -> int:
        return self.login_window.start

    @property
    def final(self) -> int:
        return self.me_window.stop + 1

    @property
    def login_requests(self) -> int:
        return self.login_window.stop

    @property
    def me_requests(self) -> int:
        return self.final - self.login_requests
