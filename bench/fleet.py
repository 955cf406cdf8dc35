"""The fleet stage: two `keyhouse serve` sharing PostgreSQL and Redis, beside the SQLite default.

What people grow into (docs/operations.md, "Several servers"): every server
with the same KEYHOUSE_DATABASE_URL, KEYHOUSE_REDIS_URL and KEYHOUSE_SECRET_KEY.
Here both servers run on this machine, on a throwaway PostgreSQL database and
a redis-server of the bench's own (shared_services.py), each with half the
workers (BENCH_FLEET_WORKERS), so the machine runs as many as the SQLite
server alone does. Each load is split: half the connections (and half the
users) on each server, at once, each half balanced over its server's workers.

Measured: logins at each concurrency that splits (against the Argon2 bound,
sampled before and after, which is still the machine's cores: two servers on
one machine hash on the same cores), users/me over two rounds, and between the
loads what they cost PostgreSQL and Redis per request (shared_services.Ledger).
The SQLite side is side_by_side's keyhouse figures when that stage ran, else
measured here the same way on one server. Then the growth runs on PostgreSQL
(BENCH_PG_GROWTH_SIZES), each size on its own copy of the database.
"""

from __future__ import annotations

import contextlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from config import Config
from data import Prepared, keyhouse_request_files, seed_keyhouse
from measure import (
    ArgonBound,
    Figures,
    closed_loop,
    log,
    merge_parts,
    merge_rounds,
    request_part,
    warm,
)
from placement import plan
from procstat import CpuMeter
from scenarios import growth_rounds
from servers import (
    BENCH,
    VENV_BIN,
    Server,
    child_env,
    free_port,
    keyhouse_server,
    run_json,
    wrk,
)
from shared_services import (
    Ledger,
    RedisServer,
    analyze,
    create_database,
    drop_database,
    throwaway_database,
)

API_ROUNDS = 2
DB_PREFIX = "keyhouse_bench_fleet"


def split_run(
    servers: list[Server], reqs: list[Path], conns: int, threads: int, seconds: int
) -> Figures:
    """``conns`` split evenly over the servers, all loaded at once; one figure for them all.

    Server i gets ``reqs[i]`` (its own users), its share balanced over its
    workers by closed_loop; ``threads`` is wrk threads per server (capped at its
    share). The CPU columns count every server's tree as the server.
    """
    shares = plan("balanced", conns, len(servers))
    with CpuMeter(*(s.pid for s in servers)) as cpu, ThreadPoolExecutor(len(servers)) as pool:
        futures = [
            pool.submit(
                closed_loop, s.pid, s.port, r, share, min(share, threads), seconds, "balanced"
            )
            for s, r, share in zip(servers, reqs, shares, strict=True)
        ]
        parts = [f.result() for f in futures]
    result = merge_parts(parts)
    result["cpu"] = cpu.result
    result["placement"] = {
        "mode": f"split over {len(servers)}, balanced" if len(servers) > 1 else "balanced",
        "placed": all(p["placement"]["placed"] for p in parts),
        "held": [n for p in parts for n in p["placement"]["held"]],
    }
    result["servers"] = [
        {
            "ok_per_s": p["ok_per_s"],
            "p99_ms": p["p99_ms"],
            "server_cores": p["cpu"]["server_cores"],
            "held": p["placement"]["held"],
        }
        for p in parts
    ]
    return result


def measure_side(
    cfg: Config,
    servers: list[Server],
    reqs: dict[str, list[Path]],
    bound: ArgonBound,
    ledger: Ledger | None,
) -> Figures:
    """Logins at each splitting concurrency against the bound, then users/me (costs: ledger)."""
    out: Figures = {"logins": [], "api": None, "servers": len(servers)}
    before = bound.sample()
    reading = ledger.read() if ledger else None
    for c in cfg.fleet_login_levels:
        r = split_run(servers, reqs["login"], c, c, cfg.run_seconds)
        if ledger and reading:
            after_reading = ledger.read()
            r["shared_cost"] = ledger.cost(reading, after_reading, r["requests"])
            reading = after_reading
        after = bound.sample()
        level_bound = (before["per_second"] + after["per_second"]) / 2
        before = after
        r["bound_per_s"] = round(level_bound, 1)
        r["ratio_to_bound"] = round(r["ok_per_s"] / level_bound, 3)
        log(
            f"fleet {len(servers)} server(s) logins c={c}: {r['ok_per_s']}/s ok, ratio "
            f"{r['ratio_to_bound']}, p99 {r['p99_ms']} ms, statuses {r['statuses']}"
            + (f", cost {_cost_line(r['shared_cost'])}" if "shared_cost" in r else "")
        )
        out["logins"].append(r)
    api_start = reading
    rounds = []
    for _ in range(API_ROUNDS):
        c = cfg.api_connections
        r = split_run(servers, reqs["me"], c, cfg.wrk_threads, cfg.run_seconds)
        log(
            f"fleet {len(servers)} server(s) API c={c}: {r['ok_per_s']}/s ok, "
            f"p99 {r['p99_ms']} ms, statuses {r['statuses']}"
        )
        rounds.append(r)
    out["api"] = merge_rounds(rounds)
    if ledger and api_start:
        out["api"]["shared_cost"] = ledger.cost(api_start, ledger.read(), out["api"]["requests"])
        log(f"fleet API cost {_cost_line(out['api']['shared_cost'])}")
    return out


def _cost_line(cost: dict[str, Any]) -> str:
    return (
        f"{cost['pg_transactions']} PG transactions, {cost['redis_commands']} Redis commands "
        f"per request"
    )


def _halves(path: Path, parts: int) -> list[Path]:
    return [request_part(path, i, parts) for i in range(parts)]


def _shared_env(db_url: str, redis_url: str | None, secret: str) -> dict[str, str]:
    env = {"KEYHOUSE_DATABASE_URL": db_url, "KEYHOUSE_SECRET_KEY": secret}
    if redis_url:
        env["KEYHOUSE_REDIS_URL"] = redis_url
    return env


def _two_servers(cfg: Config, data: Prepared, root: Path) -> Figures:
    """Two servers on one throwaway database and one redis-server, measured with a ledger."""
    workers = cfg.workers_per_fleet_server
    with contextlib.ExitStack() as stack:
        redis_server = stack.enter_context(
            RedisServer(root / "redis", data.logs / "fleet-redis.log")
        )
        db = stack.enter_context(throwaway_database(DB_PREFIX))
        env = _shared_env(db.url, redis_server.url, secrets.token_urlsafe(50))
        log(f"fleet: seeding {db.name} (redis on port {redis_server.port})")
        seed = seed_keyhouse(root / "server-0", cfg.login_users, cfg.api_users, **env)
        files = keyhouse_request_files(root / "requests", seed)
        servers = [
            stack.enter_context(
                keyhouse_server(
                    root / f"server-{i}", free_port(), workers, data.logs / f"fleet-{i}.log", **env
                )
            )
            for i in range(2)
        ]
        reqs = {"login": _halves(files["kh_login"], 2), "me": _halves(files["kh_me"], 2)}
        # Every gunicorn thread the loads will use opens its PostgreSQL connection
        # now (each new backend reads thousands of catalog rows), not in a measured run.
        busiest = max(cfg.api_connections, max(cfg.fleet_login_levels)) // 2
        for server, login, me in zip(servers, reqs["login"], reqs["me"], strict=True):
            warm(server.port, login, me)
            wrk(server.port, me, busiest, busiest, 2)
        bound = ArgonBound(seed["password_hash"], max(2.0, cfg.seconds / 2))
        side = measure_side(cfg, servers, reqs, bound, Ledger(db, redis_server))
        side["workers_per_server"] = workers
        side["argon2_bound"] = bound.summary()
        side["database"] = db.name
        return side


def _sqlite_side(cfg: Config, data: Prepared, results: dict[str, Any]) -> Figures:
    """The SQLite default: side_by_side's keyhouse figures if it ran, else measured here."""
    if "keyhouse" in results:
        kh = results["keyhouse"]
        logins = [
            r
            for r in kh["logins"]
            if r["placement"]["mode"] == "balanced" and r["connections"] in cfg.fleet_login_levels
        ]
        return {
            "source": "side_by_side",
            "servers": 1,
            "workers_per_server": cfg.workers,
            "logins": logins,
            "api": kh["api"],
            "argon2_bound": results["argon2_bound"],
        }
    seed = data.seed
    with keyhouse_server(
        data.kh_data, free_port(), cfg.workers, data.logs / "fleet-sqlite.log"
    ) as s:
        req = data.requests
        warm(s.port, req["kh_login"], req["kh_me"])
        bound = ArgonBound(seed["password_hash"], max(2.0, cfg.seconds / 2))
        side = measure_side(
            cfg, [s], {"login": [req["kh_login"]], "me": [req["kh_me"]]}, bound, None
        )
    side["source"] = "measured in the fleet stage"
    side["workers_per_server"] = cfg.workers
    side["argon2_bound"] = bound.summary()
    return side


def pg_growth(cfg: Config, data: Prepared, root: Path) -> Figures | None:
    """The growth runs on PostgreSQL: users/me for one user, each size its own database copy.

    No Redis: with it users/me for one fixed user is one cache hit and never
    reaches the database whose size is measured. Limits off, as in `growth`.
    """
    sizes = cfg.pg_growth_sizes
    if not sizes:
        return None
    secret = secrets.token_urlsafe(50)
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(throwaway_database(f"{DB_PREFIX}_growth"))
        env = _shared_env(base.url, None, secret)
        seed = seed_keyhouse(root / "growth-seed", cfg.login_users, cfg.api_users, **env)
        fixed = keyhouse_request_files(root / "growth-requests", seed)["kh_me_fixed"]
        grown_at: dict[int, dict[str, Any]] = {}
        urls: dict[int, str] = {}
        for size in sizes:
            grown_at[size] = run_json(
                [str(VENV_BIN / "python"), str(BENCH / "seed.py"), "grow", "--total", str(size)],
                child_env(KEYHOUSE_DATA_DIR=str(root / "growth-seed"), **env),
            )
            log(f"fleet PG growth: {size} users in {grown_at[size]['insert_seconds']} s")
            analyze(base)
            copy = create_database(f"{base.name}_{size}", template=base.name)
            stack.callback(drop_database, copy)
            urls[size] = copy.url
        servers = {
            size: stack.enter_context(
                keyhouse_server(
                    root / f"growth-{size}",
                    free_port(),
                    cfg.workers,
                    data.logs / f"fleet-growth-{size}.log",
                    **_shared_env(urls[size], None, secret),
                    KEYHOUSE_RATE_LIMITING="false",
                )
            )
            for size in sizes
        }
        return growth_rounds(cfg, servers, fixed, grown_at)


def fleet(cfg: Config, data: Prepared, results: dict[str, Any]) -> Figures:
    """results.json's "fleet": "postgres_redis", "sqlite", and "pg_growth" (or None)."""
    root = data.out / "fleet"
    return {
        "postgres_redis": _two_servers(cfg, data, root),
        "sqlite": _sqlite_side(cfg, data, results),
        "pg_growth": pg_growth(cfg, data, root),
    }
