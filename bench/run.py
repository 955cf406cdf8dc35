"""`make bench`: keyhouse's login and API throughput, against the Argon2 bound and a DRF peer.

Figures and ratios, never pass/fail: targets are printed as MET / NOT MET and the
run exits 0 whatever they say (it exits non-zero only if it could not measure).
See docs/performance.md for what each figure means and what limits it.

Every duration scales with BENCH_SECONDS (default 8: one measured run lasts 8 s,
the flood 20 s, the whole run about 3 minutes after setup). Other knobs:
BENCH_WORKERS (default: cores), BENCH_GROWTH_SIZES (default 1000,10000,100000),
BENCH_FLOOD_SECONDS, BENCH_FLOOD_FACTOR (4), BENCH_FLOOD_API_RATE (20/s),
BENCH_API_CONNECTIONS (8 x cores), BENCH_WRK_THREADS (1, for API runs).
KEYHOUSE_ARGON2_* and the other KEYHOUSE_* tuning variables pass through to
keyhouse; the Argon2 ones to the peer as well.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import argon2_bound  # noqa: E402
import openloop  # noqa: E402
from procstat import CpuMeter, MemorySampler, wait_until_idle  # noqa: E402
from servers import (  # noqa: E402
    BENCH,
    HOST,
    PEER_BIN,
    PEER_DIR,
    VENV_BIN,
    child_env,
    free_port,
    inherited_settings,
    keyhouse_server,
    peer_server,
    run_json,
    write_requests,
    wrk,
)

from keyhouse.ops.serve import hashing_slots_per_worker  # noqa: E402

CORES = len(os.sched_getaffinity(0))
PASSWORD = "bench-Argon2id-horse-battery-7"
FORM = "application/x-www-form-urlencoded"
LOGIN_TARGET = 0.95
API_TARGET = 2.0
# Closed-loop runs repeated when one gunicorn worker got no connections (Bench._run).
RERUNS_IF_IDLE_WORKER = 2
# Cores used by other processes during a run above which the report warns.
NOISY_OTHER_CORES = 0.25
# keyhouse's embedded database in its data dir (settings.DATABASES without a URL).
SQLITE_FILE = "keyhouse.sqlite3"


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


@dataclass
class Config:
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
    growth_sizes: list[int] = field(
        default_factory=lambda: [
            int(x) for x in os.environ.get("BENCH_GROWTH_SIZES", "1000,10000,100000").split(",")
        ]
    )

    @property
    def run_seconds(self) -> int:
        """One closed-loop run (wrk takes whole seconds)."""
        return max(1, round(self.seconds))

    @property
    def flood_seconds(self) -> float:
        return _env_float("BENCH_FLOOD_SECONDS", 2.5 * self.seconds)

    @property
    def levels(self) -> list[int]:
        return sorted({1, 2 * CORES, 8 * CORES})

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


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def basic(email: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{key}".encode()).decode()


def snapshot_data_dir(source: Path, dest: Path) -> None:
    """Copy a keyhouse data dir whose server is stopped; the database through SQLite's backup API.

    The backup API copies a consistent database including what is still in the
    WAL file, which copying the files would have to get right by hand.
    """
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(f"{SQLITE_FILE}*", "emails"))
    src = sqlite3.connect(source / SQLITE_FILE)
    dst = sqlite3.connect(dest / SQLITE_FILE)
    try:
        with dst:
            src.backup(dst)
    finally:
        src.close()
        dst.close()


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one load as one figure: throughput over all of them, each round kept."""
    seconds = sum(r["seconds"] for r in rounds)
    statuses: dict[str, int] = {}
    socket_errors: dict[str, int] = {}
    for r in rounds:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        for k, v in r["socket_errors"].items():
            socket_errors[k] = socket_errors.get(k, 0) + v
    ok = sum(r["ok"] for r in rounds)
    cpus = [r["cpu"] for r in rounds]

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 2)

    return {
        "connections": rounds[0]["connections"],
        "seconds": round(seconds, 2),
        "requests": sum(r["requests"] for r in rounds),
        "ok": ok,
        "ok_per_s": round(ok / seconds, 1),
        "p50_ms": mean([r["p50_ms"] for r in rounds]),
        "p99_ms": max(r["p99_ms"] for r in rounds),
        "statuses": statuses,
        "socket_errors": socket_errors,
        "cpu": {
            "server_cores": mean([c["server_cores"] for c in cpus]),
            "loadgen_cores": mean([c["loadgen_cores"] for c in cpus]),
            "other_cores": max(c["other_cores"] for c in cpus),
            "per_process_cores": [
                mean(list(x)) for x in zip(*(c["per_process_cores"] for c in cpus), strict=True)
            ],
        },
        "rounds": [
            {
                "ok_per_s": r["ok_per_s"],
                "cpu": r["cpu"],
                "attempts": r["attempts"],
                "worker_idled": r["worker_idled"],
            }
            for r in rounds
        ],
        "worker_idled": any(r["worker_idled"] for r in rounds),
    }


class Bench:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.out = BENCH / "out"
        self.results: dict[str, Any] = {}
        self.started = time.monotonic()
        self.stage_seconds: dict[str, float] = {}
        self.bound_samples: list[dict[str, Any]] = []

    # --- data ------------------------------------------------------------------

    def prepare(self) -> None:
        cfg = self.cfg
        for d in ("keyhouse-data", "peer-data", "requests"):
            shutil.rmtree(self.out / d, ignore_errors=True)
        for d in self.out.glob("growth-*"):
            shutil.rmtree(d, ignore_errors=True)
        (self.out / "requests").mkdir(parents=True)
        (self.out / "logs").mkdir(exist_ok=True)
        self.kh_data = self.out / "keyhouse-data"
        self.peer_data = self.out / "peer-data"
        kh_env = child_env(KEYHOUSE_DATA_DIR=str(self.kh_data))
        subprocess.run(
            [str(VENV_BIN / "keyhouse"), "realm", "create", "--subdomain", "", "--name", "Bench"],
            env=kh_env,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )
        seed = run_json(
            [
                str(VENV_BIN / "python"),
                str(BENCH / "seed.py"),
                "init",
                "--login-users",
                str(cfg.login_users),
                "--api-users",
                str(cfg.api_users),
                "--password",
                PASSWORD,
            ],
            kh_env,
        )
        self.seed = seed
        a = seed["argon2"]
        self.argon2_env = {
            "KEYHOUSE_ARGON2_MEMORY_COST": str(a["memory_cost"]),
            "KEYHOUSE_ARGON2_TIME_COST": str(a["time_cost"]),
            "KEYHOUSE_ARGON2_PARALLELISM": str(a["parallelism"]),
        }
        peer_env = child_env(PEER_DATA_DIR=str(self.peer_data), **self.argon2_env)
        peer = run_json(
            [
                str(PEER_BIN / "python"),
                "seed.py",
                "--login-users",
                str(cfg.login_users),
                "--api-users",
                str(cfg.api_users),
                "--password",
                PASSWORD,
            ],
            peer_env,
            cwd=PEER_DIR,
        )
        self.peer_seed = peer
        kh_params = seed["password_hash"].split("$")[3]
        peer_params = peer["password_hash"].split("$")[3]
        if kh_params != peer_params:
            raise RuntimeError(
                f"Argon2 parameters differ: keyhouse {kh_params}, peer {peer_params}"
            )

        r = self.out / "requests"
        self.req = {
            "kh_login": write_requests(
                r / "kh_login.tsv",
                [
                    (
                        "POST",
                        "/api/v1/fetch_api_key",
                        "Content-Type",
                        FORM,
                        urlencode({"username": e, "password": PASSWORD}),
                    )
                    for e in seed["login"]
                ],
            ),
            "kh_me": write_requests(
                r / "kh_me.tsv",
                [
                    ("GET", "/api/v1/users/me", "Authorization", basic(e, k), "")
                    for e, k in seed["api"]
                ],
            ),
            "kh_me_fixed": write_requests(
                r / "kh_me_fixed.tsv",
                [("GET", "/api/v1/users/me", "Authorization", basic(*seed["api"][0]), "")],
            ),
            "peer_login": write_requests(
                r / "peer_login.tsv",
                [
                    (
                        "POST",
                        "/api-token-auth/",
                        "Content-Type",
                        FORM,
                        urlencode({"username": e, "password": PASSWORD}),
                    )
                    for e in peer["login"]
                ],
            ),
            "peer_me": write_requests(
                r / "peer_me.tsv",
                [("GET", "/me", "Authorization", f"Token {t}", "") for t in peer["api"]],
            ),
        }
        self.results["setup"] = {
            "cores": CORES,
            "workers": cfg.workers,
            "threads_per_worker": seed["server"]["threads"],
            # 0: `keyhouse serve` gives each worker its share of the cores.
            "hashing_slots_per_worker": seed["server"]["hashing_slots"]
            or hashing_slots_per_worker(cfg.workers, os.cpu_count() or 1),
            "hashing_max_wait_s": seed["server"]["hashing_max_wait"],
            "hashing_max_waiters": seed["server"]["hashing_max_waiters"],
            "argon2": a,
            "argon2_encoded_params": kh_params,
            "login_users": cfg.login_users,
            "api_users": cfg.api_users,
            "bench_seconds": cfg.seconds,
            "inherited_keyhouse_settings": inherited_settings(),
        }

    # --- measurements -----------------------------------------------------------

    def bound_sample(self) -> dict[str, Any]:
        """One short Argon2 bound measurement (every core), taken between the login runs."""
        seconds = max(2.0, self.cfg.seconds / 2)
        with CpuMeter(os.getpid()) as cpu:
            sample = argon2_bound.measure(self.seed["password_hash"], PASSWORD, seconds, CORES)
        sample["other_cores"] = cpu.result["other_cores"]
        log(
            f"Argon2 bound sample: {sample['per_second']}/s "
            f"({sample['ms_per_verification_cpu']} ms CPU each)"
        )
        self.bound_samples.append(sample)
        return sample

    def summarize_bound(self) -> None:
        """The bound reported and used for the flood: the mean of every sample."""
        samples = self.bound_samples
        rates = [b["per_second"] for b in samples]
        verifications = sum(b["verifications"] for b in samples)
        self.bound = {
            "processes": CORES,
            "per_second": round(sum(rates) / len(rates), 1),
            "min_per_second": min(rates),
            "max_per_second": max(rates),
            "ms_per_verification_cpu": round(
                sum(b["ms_per_verification_cpu"] * b["verifications"] for b in samples)
                / max(1, verifications),
                2,
            ),
            "other_cores": max(b["other_cores"] for b in samples),
            "samples": samples,
        }
        self.results["argon2_bound"] = self.bound

    def _run(
        self,
        server_pid: int,
        port: int,
        reqs: Path,
        conns: int,
        threads: int,
        seconds: int | None = None,
    ) -> dict[str, Any]:
        """One closed-loop run, repeated (at most RERUNS_IF_IDLE_WORKER times) if a worker idled.

        gunicorn's workers race to accept connections, and wrk opens all of its
        connections at once: now and then one worker accepts every one of them and
        the other idles, for keyhouse and the peer alike. Such a run measures that
        race, not the server, so it is run again; every attempt is kept in the
        results ("attempts"), and a run that stays lopsided is flagged.
        """
        attempts: list[dict[str, Any]] = []
        for _ in range(1 + RERUNS_IF_IDLE_WORKER):
            with CpuMeter(server_pid) as cpu:
                result = wrk(port, reqs, conns, threads, seconds or self.cfg.run_seconds)
            result["cpu"] = cpu.result
            result["settle_seconds"] = wait_until_idle(server_pid)
            attempts.append({"ok_per_s": result["ok_per_s"], "cpu": cpu.result})
            if not self._worker_idled(result, conns):
                break
            log(f"a worker idled ({cpu.result['per_process_cores']}); running again")
        result["attempts"] = attempts
        result["worker_idled"] = self._worker_idled(result, conns)
        return result

    def _worker_idled(self, result: dict[str, Any], conns: int) -> bool:
        """A worker used under a fifth of the workers' mean CPU, with connections enough for all."""
        workers = result["cpu"]["per_process_cores"][1:]
        if len(workers) < 2 or conns < 2 * len(workers):
            return False
        return min(workers) < 0.2 * (sum(workers) / len(workers))

    def _warm(self, port: int, *reqs: Path) -> None:
        for r in reqs:
            wrk(port, r, 2, 2, 1)

    def measure_side_by_side(self) -> None:
        """keyhouse and the peer up together, their runs interleaved with bound samples.

        This machine's speed drifts (other tenants of the host): the Argon2 cost
        has moved by a third within a minute. Measured one after the other,
        keyhouse, the peer and the bound would each catch a different speed. So
        every login level runs both servers back to back (alternating which goes
        first) between two bound samples, and divides by their mean; the API-key
        runs go keyhouse, peer, peer, keyhouse, and each server's figure is the
        mean of its two.
        """
        cfg = self.cfg
        kh_port, peer_port = free_port(), free_port()
        kh_ctx = keyhouse_server(
            self.kh_data, kh_port, cfg.workers, self.out / "logs" / "keyhouse.log"
        )
        peer_ctx = peer_server(
            self.peer_data,
            peer_port,
            cfg.workers,
            self.results["setup"]["threads_per_worker"],
            self.out / "logs" / "peer.log",
            self.argon2_env,
        )
        with kh_ctx as kh_server, peer_ctx as peer_server_:
            sides = {
                "keyhouse": (kh_server, self.req["kh_login"], self.req["kh_me"]),
                "peer": (peer_server_, self.req["peer_login"], self.req["peer_me"]),
            }
            out: dict[str, dict[str, Any]] = {}
            for name, (server, login, me) in sides.items():
                self._warm(server.port, login, me)
                out[name] = {
                    "logins": [],
                    "api": None,
                    "rss_before_mib": round(MemorySampler(server.pid).sample()[0] / 1024, 1),
                }
            before = self.bound_sample()
            for i, c in enumerate(cfg.levels):
                order = list(sides) if i % 2 == 0 else list(reversed(sides))
                runs = {}
                for name in order:
                    server, login, _ = sides[name]
                    runs[name] = self._run(server.pid, server.port, login, c, c)
                after = self.bound_sample()
                bound = (before["per_second"] + after["per_second"]) / 2
                before = after
                for name in sides:
                    r = runs[name]
                    r["bound_per_s"] = round(bound, 1)
                    r["ratio_to_bound"] = round(r["ok_per_s"] / bound, 3)
                    log(
                        f"{name} logins c={c}: {r['ok_per_s']}/s ok, ratio {r['ratio_to_bound']} "
                        f"(bound {bound:.1f}/s), p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                        f"statuses {r['statuses']}"
                    )
                    out[name]["logins"].append(r)
            c = cfg.api_connections
            api_rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
            for name in ("keyhouse", "peer", "peer", "keyhouse"):
                server, _, me = sides[name]
                r = self._run(server.pid, server.port, me, c, min(c, cfg.wrk_threads))
                log(
                    f"{name} API c={c}: {r['ok_per_s']}/s ok, p50 {r['p50_ms']} ms, "
                    f"p99 {r['p99_ms']} ms, statuses {r['statuses']}"
                )
                api_rounds[name].append(r)
            for name, (server, _, _) in sides.items():
                out[name]["api"] = merge_rounds(api_rounds[name])
                # glibc keeps freed Argon2 buffers in per-thread arenas: RSS after logins shows it.
                out[name]["rss_after_mib"] = round(MemorySampler(server.pid).sample()[0] / 1024, 1)
        self.results["keyhouse"], self.results["peer"] = out["keyhouse"], out["peer"]
        self.summarize_bound()

    def measure_overload(self) -> None:
        cfg, seed = self.cfg, self.seed
        port = free_port()
        host = f"{HOST}:{port}"
        logins = [
            openloop.raw_request(
                "POST",
                "/api/v1/fetch_api_key",
                host,
                {"Content-Type": FORM},
                urlencode({"username": e, "password": PASSWORD}),
            )
            for e in seed["login"]
        ]
        me = [
            openloop.raw_request("GET", "/api/v1/users/me", host, {"Authorization": basic(e, k)})
            for e, k in seed["api"]
        ]
        flood_rate = cfg.flood_factor * self.bound["per_second"]
        # Login limits off: every attempt reaches the hashing gate, as a flood spread
        # over many usernames and addresses would. API limits stay on.
        with keyhouse_server(
            self.kh_data,
            port,
            cfg.workers,
            self.out / "logs" / "overload.log",
            KEYHOUSE_RATE_LIMITING_AUTHENTICATE="false",
        ) as server:
            self._warm(port, self.req["kh_me"])
            idle = openloop.Stream("api", me, cfg.flood_api_rate, 64)
            openloop.run(HOST, port, [idle], max(2.0, cfg.seconds / 2))
            sampler = MemorySampler(server.pid)
            idle_rss, idle_pss = sampler.sample()
            log(
                f"overload: {flood_rate:.0f} logins/s offered for {cfg.flood_seconds:g}s "
                f"with {cfg.flood_api_rate:g} users/me/s"
            )
            flood = openloop.Stream("flood", logins, flood_rate, cfg.flood_max_in_flight)
            api = openloop.Stream("api", me[len(me) // 2 :], cfg.flood_api_rate, 64)
            with sampler, CpuMeter(server.pid) as cpu:
                wall = openloop.run(HOST, port, [flood, api], cfg.flood_seconds)

        statuses: dict[str, int] = {}
        for o in flood.outcomes:
            statuses[str(o.status)] = statuses.get(str(o.status), 0) + 1
        answered = [o for o in flood.outcomes if o.status]
        refused = [o.latency * 1000 for o in answered if o.status in (503, 429)]
        ok = sum(1 for o in answered if o.status == 200)
        ok_lat = [o.latency * 1000 for o in answered if o.status == 200]

        def api_summary(stream: openloop.Stream) -> dict[str, Any]:
            lat = [o.latency * 1000 for o in stream.outcomes if o.status == 200]
            return {
                "rate_per_s": stream.rate,
                "sent": len(stream.outcomes),
                "ok": len(lat),
                "non_200": len(stream.outcomes) - len(lat),
                "dropped": stream.dropped,
                "p50_ms": round(pct(lat, 50), 2),
                "p99_ms": round(pct(lat, 99), 2),
            }

        self.results["overload"] = {
            "offered_per_s": round(flood_rate, 1),
            "seconds": round(cfg.flood_seconds, 1),
            "wall_seconds": round(wall, 1),
            "scheduled": flood.scheduled,
            "dropped_at_client_cap": flood.dropped,
            "unanswered_after_drain": flood.unanswered,
            "max_in_flight": cfg.flood_max_in_flight,
            "answered": len(answered),
            "connection_errors": len(flood.outcomes) - len(answered),
            "statuses": statuses,
            "ok_per_s": round(ok / cfg.flood_seconds, 1),
            "ok_ratio_to_bound": round(ok / cfg.flood_seconds / self.bound["per_second"], 3),
            "ok_p50_ms": round(pct(ok_lat, 50), 1),
            "ok_p99_ms": round(pct(ok_lat, 99), 1),
            "refused_share": round(len(refused) / max(1, len(answered)), 3),
            "refused_p50_ms": round(pct(refused, 50), 2),
            "refused_p99_ms": round(pct(refused, 99), 2),
            "other_5xx": sum(1 for o in answered if o.status >= 500 and o.status != 503),
            "idle_rss_mib": round(idle_rss / 1024, 1),
            "peak_rss_mib": round(sampler.peak_rss_kib / 1024, 1),
            "idle_pss_mib": round(idle_pss / 1024, 1),
            "peak_pss_mib": round(sampler.peak_pss_kib / 1024, 1),
            "rss_samples": sampler.samples,
            "api_idle": api_summary(idle),
            "api_during_flood": api_summary(api),
            "cpu": cpu.result,
        }
        o = self.results["overload"]
        log(
            f"overload: statuses {statuses}, refused share {o['refused_share']}, "
            f"refused p99 {o['refused_p99_ms']} ms, peak RSS {o['peak_rss_mib']} MiB, "
            f"API p99 idle {o['api_idle']['p99_ms']} ms / flood "
            f"{o['api_during_flood']['p99_ms']} ms"
        )

    def measure_growth(self) -> None:
        """users/me at each size, every size served at once, their runs interleaved.

        Grown one after another on one server, the sizes were measured a minute
        apart, and this machine's drift showed as a trend: largest / smallest
        0.79–0.96 over runs, while the same 1 000- and 100 000-user databases
        served side by side, runs alternating, showed none (or the reverse). So
        each size gets its own copy of the data and its own server, and the runs
        go smallest to largest and back (half a run each); a size's figure is
        over its two rounds.
        """
        cfg = self.cfg
        kh_env = child_env(KEYHOUSE_DATA_DIR=str(self.kh_data))
        grown_at: dict[int, dict[str, Any]] = {}
        data_dirs: dict[int, Path] = {}
        for size in cfg.growth_sizes:
            grown_at[size] = run_json(
                [str(VENV_BIN / "python"), str(BENCH / "seed.py"), "grow", "--total", str(size)],
                kh_env,
            )
            data_dirs[size] = self.out / f"growth-{size}"
            snapshot_data_dir(self.kh_data, data_dirs[size])
        rounds: dict[int, list[dict[str, Any]]] = {size: [] for size in cfg.growth_sizes}
        round_seconds = max(1, round(cfg.seconds / 2))
        c = cfg.api_connections
        with contextlib.ExitStack() as stack:
            servers = {
                # One fixed user, so api_by_user (200/min) would refuse the run: limits off.
                size: stack.enter_context(
                    keyhouse_server(
                        data_dirs[size],
                        free_port(),
                        cfg.workers,
                        self.out / "logs" / f"growth-{size}.log",
                        KEYHOUSE_RATE_LIMITING="false",
                    )
                )
                for size in cfg.growth_sizes
            }
            for server in servers.values():
                self._warm(server.port, self.req["kh_me_fixed"])
            for size in [*cfg.growth_sizes, *reversed(cfg.growth_sizes)]:
                server = servers[size]
                r = self._run(
                    server.pid,
                    server.port,
                    self.req["kh_me_fixed"],
                    c,
                    min(c, cfg.wrk_threads),
                    round_seconds,
                )
                log(
                    f"growth {grown_at[size]['users']} users: {r['ok_per_s']}/s ok, "
                    f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms"
                )
                rounds[size].append(r)
        rows = []
        for size in cfg.growth_sizes:
            row = merge_rounds(rounds[size])
            grown = grown_at[size]
            row["users"] = grown["users"]
            row["insert_seconds"] = grown["insert_seconds"]
            row["lookup_plan"] = grown["lookup_plan"]
            rows.append(row)
        first = rows[0]["ok_per_s"] or 1
        self.results["growth"] = {
            "rows": rows,
            "round_seconds": round_seconds,
            "last_to_first": round(rows[-1]["ok_per_s"] / first, 3),
        }

    # --- report -------------------------------------------------------------------

    def _all_cpu(self) -> list[dict[str, Any]]:
        r = self.results
        runs = [*r["keyhouse"]["logins"], r["keyhouse"]["api"], *r["peer"]["logins"]]
        runs += [r["peer"]["api"], r["overload"], *r["growth"]["rows"]]
        return [run["cpu"] for run in runs]

    def targets(self) -> dict[str, Any]:
        kh, peer = self.results["keyhouse"], self.results["peer"]
        kh_best = max(kh["logins"], key=lambda r: r["ratio_to_bound"])
        peer_best = max(peer["logins"], key=lambda r: r["ratio_to_bound"])
        api_ratio = kh["api"]["ok_per_s"] / max(0.1, peer["api"]["ok_per_s"])
        return {
            "login_ratio": {
                "target": f">= {LOGIN_TARGET}",
                "value": kh_best["ratio_to_bound"],
                "at_concurrency": kh_best["connections"],
                "met": kh_best["ratio_to_bound"] >= LOGIN_TARGET,
            },
            "login_ratio_vs_peer": {
                "target": ">= peer's",
                "keyhouse": kh_best["ratio_to_bound"],
                "peer": peer_best["ratio_to_bound"],
                "met": kh_best["ratio_to_bound"] >= peer_best["ratio_to_bound"],
            },
            "api_vs_peer": {
                "target": f">= {API_TARGET}x",
                "keyhouse_per_s": kh["api"]["ok_per_s"],
                "peer_per_s": peer["api"]["ok_per_s"],
                "ratio": round(api_ratio, 2),
                "met": api_ratio >= API_TARGET,
            },
        }

    def markdown(self) -> str:
        r = self.results
        s, b = r["setup"], r["argon2_bound"]
        kh, peer, ov, gr, t = r["keyhouse"], r["peer"], r["overload"], r["growth"], r["targets"]
        met = {True: "MET", False: "NOT MET"}

        def non200(run: dict[str, Any]) -> str:
            bad = {k: v for k, v in run["statuses"].items() if k != "200"}
            bad.update(run["socket_errors"])
            return ", ".join(f"{k}: {v}" for k, v in sorted(bad.items())) or "-"

        def cpu(run: dict[str, Any]) -> str:
            c = run["cpu"]
            workers = "+".join(str(x) for x in c["per_process_cores"][1:])
            return f"{c['server_cores']} ({workers}) / {c['loadgen_cores']} / {c['other_cores']}"

        a = s["argon2"]
        lines = [
            f"## keyhouse benchmark ({s['cores']} cores, {s['workers']} workers x "
            f"{s['threads_per_worker']} threads, {s['hashing_slots_per_worker']} hashing "
            f"slot(s) per worker, Argon2id m={a['memory_cost']} KiB t={a['time_cost']} "
            f"p={a['parallelism']}, runs of {self.cfg.run_seconds} s)",
            "",
            f"**Argon2 bound**: {b['per_second']} verifications/s on {b['processes']} processes "
            f"({b['ms_per_verification_cpu']} ms CPU each; other processes used up to "
            f"{b['other_cores']} cores meanwhile): the mean of {len(b['samples'])} samples "
            f"taken between the login runs, which ranged from {b['min_per_second']} to "
            f"{b['max_per_second']}/s. Each login level is divided by the mean of the "
            f"samples just before and after it (its *bound/s* column).",
            "",
            "### Logins: keyhouse `POST /api/v1/fetch_api_key` vs DRF `POST /api-token-auth/`",
            "",
            "| concurrency | bound/s | keyhouse ok/s | p50 ms | p99 ms | / bound | non-200 "
            "| CPU srv/gen/other | peer ok/s | p50 ms | p99 ms | / bound | non-200 "
            "| CPU srv/gen/other |",
            "|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|---|",
        ]
        for k, p in zip(kh["logins"], peer["logins"], strict=True):
            lines.append(
                f"| {k['connections']} | {k['bound_per_s']} | {k['ok_per_s']} | {k['p50_ms']} | "
                f"{k['p99_ms']} | "
                f"{k['ratio_to_bound']} | {non200(k)} | {cpu(k)} | {p['ok_per_s']} | "
                f"{p['p50_ms']} | {p['p99_ms']} | {p['ratio_to_bound']} | {non200(p)} | {cpu(p)} |"
            )
        ka, pa = kh["api"], peer["api"]
        lines += [
            "",
            f"### API-key requests ({ka['connections']} connections, spread over "
            f"{s['api_users']} users; keyhouse, peer, peer, keyhouse: each figure is over "
            f"its server's {len(ka['rounds'])} rounds)",
            "",
            "| endpoint | ok/s | p50 ms | p99 ms | non-200 | CPU srv/gen/other |",
            "|---|---:|---:|---:|---|---|",
            f"| keyhouse `GET /api/v1/users/me` (Basic, rate limits on) | {ka['ok_per_s']} "
            f"({' + '.join(str(x['ok_per_s']) for x in ka['rounds'])}) | "
            f"{ka['p50_ms']} | {ka['p99_ms']} | {non200(ka)} | {cpu(ka)} |",
            f"| peer `GET /me` (Token) | {pa['ok_per_s']} "
            f"({' + '.join(str(x['ok_per_s']) for x in pa['rounds'])}) | {pa['p50_ms']} | "
            f"{pa['p99_ms']} | "
            f"{non200(pa)} | {cpu(pa)} |",
            "",
            "### Targets (reported, never enforced)",
            "",
            f"- keyhouse login throughput / Argon2 bound {t['login_ratio']['target']}: "
            f"**{met[t['login_ratio']['met']]}** ({t['login_ratio']['value']} at concurrency "
            f"{t['login_ratio']['at_concurrency']})",
            f"- keyhouse login ratio >= peer's: **{met[t['login_ratio_vs_peer']['met']]}** "
            f"(keyhouse {t['login_ratio_vs_peer']['keyhouse']}, peer "
            f"{t['login_ratio_vs_peer']['peer']})",
            f"- keyhouse users/me >= {API_TARGET:g}x peer /me: "
            f"**{met[t['api_vs_peer']['met']]}** ({t['api_vs_peer']['keyhouse_per_s']}/s vs "
            f"{t['api_vs_peer']['peer_per_s']}/s = {t['api_vs_peer']['ratio']}x)",
            "",
            f"### Overload: {ov['offered_per_s']} logins/s offered "
            f"({self.cfg.flood_factor:g}x the bound) for {ov['seconds']} s, login limits off",
            "",
            "| figure | value |",
            "|---|---|",
            f"| flood answers by status | {ov['statuses']} |",
            f"| fast 503/429 share; their p50 / p99 | {ov['refused_share']}; "
            f"{ov['refused_p50_ms']} / {ov['refused_p99_ms']} ms |",
            f"| successful logins during the flood | {ov['ok_per_s']}/s "
            f"({ov['ok_ratio_to_bound']} of the bound), p50 / p99 {ov['ok_p50_ms']} / "
            f"{ov['ok_p99_ms']} ms |",
            f"| 5xx other than 503; connection errors; not sent (client cap "
            f"{ov['max_in_flight']} in flight); unanswered {openloop.DRAIN_SECONDS:g} s after "
            f"the flood | {ov['other_5xx']}; {ov['connection_errors']}; "
            f"{ov['dropped_at_client_cap']}; {ov['unanswered_after_drain']} |",
            f"| server RSS (master + workers) idle -> peak | {ov['idle_rss_mib']} -> "
            f"{ov['peak_rss_mib']} MiB (PSS {ov['idle_pss_mib']} -> {ov['peak_pss_mib']} MiB) |",
            f"| users/me at {ov['api_idle']['rate_per_s']:g}/s, idle: p50 / p99 | "
            f"{ov['api_idle']['p50_ms']} / {ov['api_idle']['p99_ms']} ms "
            f"(non-200: {ov['api_idle']['non_200']}) |",
            f"| users/me at {ov['api_during_flood']['rate_per_s']:g}/s, during the flood: "
            f"p50 / p99 | {ov['api_during_flood']['p50_ms']} / "
            f"{ov['api_during_flood']['p99_ms']} ms (non-200: "
            f"{ov['api_during_flood']['non_200']}) |",
            f"| CPU srv/gen/other (cores) | {cpu(ov)} |",
            "",
            "### Growth: `GET /api/v1/users/me` for one fixed user, rate limits off",
            "",
            f"Each size in its own copy of the data on its own server, all up at once; runs "
            f"of {gr['round_seconds']} s from the smallest size to the largest and back, so "
            f"each figure is over its size's two rounds.",
            "",
            "| users | ok/s | p50 ms | p99 ms | non-200 | CPU srv/gen/other | lookup plan |",
            "|---:|---:|---:|---:|---|---|---|",
        ]
        for g in gr["rows"]:
            plan = " ".join(g["lookup_plan"].split())
            each = " + ".join(str(x["ok_per_s"]) for x in g["rounds"])
            lines.append(
                f"| {g['users']} | {g['ok_per_s']} ({each}) | {g['p50_ms']} | {g['p99_ms']} | "
                f"{non200(g)} | {cpu(g)} | `{plan}` |"
            )
        lines += [
            "",
            f"Largest / smallest size throughput: {gr['last_to_first']} (flat is 1.0).",
            "",
            f"Server RSS (master + workers) before -> after the closed-loop runs: keyhouse "
            f"{kh['rss_before_mib']} -> {kh['rss_after_mib']} MiB, peer "
            f"{peer['rss_before_mib']} -> {peer['rss_after_mib']} MiB.",
            "",
            "CPU columns: cores busy in the server (each worker) / the load generator / "
            "everything else on the machine.",
        ]
        repeated = [
            f"{who} {what} ({len(run['attempts'])} attempts: "
            + ", ".join(
                f"{a['ok_per_s']}/s {a['cpu']['per_process_cores'][1:]}" for a in run["attempts"]
            )
            + (", still lopsided" if run["worker_idled"] else "")
            + ")"
            for who, data in (("keyhouse", kh), ("peer", peer))
            for what, run in [
                *((f"logins c={x['connections']}", x) for x in data["logins"]),
                *((f"API round {i + 1}", x) for i, x in enumerate(data["api"]["rounds"])),
            ]
            if len(run.get("attempts", [])) > 1
        ]
        repeated += [
            f"growth {g['users']} users round {i + 1} ({len(x['attempts'])} attempts: "
            + ", ".join(
                f"{a['ok_per_s']}/s {a['cpu']['per_process_cores'][1:]}" for a in x["attempts"]
            )
            + (", still lopsided" if x["worker_idled"] else "")
            + ")"
            for g in gr["rows"]
            for i, x in enumerate(g["rounds"])
            if len(x["attempts"]) > 1
        ]
        if repeated:
            lines += [
                "",
                "Runs repeated because one worker got no connections (the table shows the "
                "last attempt): " + "; ".join(repeated) + ".",
            ]
        busiest = max(self._all_cpu(), key=lambda c: c["other_cores"])
        if max(busiest["other_cores"], b["other_cores"]) > NOISY_OTHER_CORES:
            lines += [
                "",
                f"**WARNING: the machine was busy** (up to "
                f"{max(busiest['other_cores'], b['other_cores'])} cores used by other "
                f"processes during a run, {b['other_cores']} during the Argon2 bound): "
                f"these figures are noisy. Re-run on an idle machine.",
            ]
        return "\n".join(lines)

    def run(self) -> None:
        stages = [
            ("prepare", self.prepare),
            ("side_by_side", self.measure_side_by_side),
            ("overload", self.measure_overload),
            ("growth", self.measure_growth),
        ]
        for name, stage in stages:
            t0 = time.monotonic()
            log(f"stage {name}")
            stage()
            self.stage_seconds[name] = round(time.monotonic() - t0, 1)
        self.results["targets"] = self.targets()
        self.results["meta"] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "stage_seconds": self.stage_seconds,
            "wall_seconds": round(time.monotonic() - self.started, 1),
            "loadavg_at_end": os.getloadavg(),
        }
        report = self.markdown()
        path = self.out / "results.json"
        path.write_text(json.dumps(self.results, indent=2) + "\n")
        (self.out / "results.md").write_text(report + "\n")
        print(report)
        print()
        print("```json")
        print(json.dumps(self.results, indent=2))
        print("```")
        log(f"wrote {path} and results.md in {self.results['meta']['wall_seconds']} s")


def main() -> int:
    Bench(Config()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
