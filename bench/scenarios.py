"""The scenarios: what is measured, against which server, in which order.

- `side_by_side`: logins at each concurrency against the Argon2 bound, and
  users/me, for keyhouse and the DRF peer up together;
- `overload`: an open-loop login flood at a multiple of the bound, with a
  trickle of users/me alongside;
- `growth`: users/me for one user at each database size;
- `gateway`: `/auth/verify` beside users/me and the peer's token GET, and a
  page through nginx with and without the verify check (docs/gateway.md);
- `serving`: keyhouse and the peer each under gunicorn and under granian, with
  the same workers and threads (docs/decisions.md, "Serving stack").

Each returns its part of results.json; measure.py does the measuring.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import openloop
from config import FORM, Config
from data import Prepared, basic, login_body, snapshot_data_dir
from measure import (
    ArgonBound,
    Figures,
    closed_loop,
    log,
    merge_rounds,
    open_loop_summary,
    pct,
    rss_mib,
    warm,
)
from nginx import Nginx
from procstat import CpuMeter, MemorySampler
from servers import (
    BENCH,
    HOST,
    HTTP_SERVERS,
    VENV_BIN,
    Server,
    child_env,
    free_port,
    free_ports,
    keyhouse_server,
    peer_has,
    peer_server,
    run_json,
)

# API-key runs per server, alternating so that neither catches the machine's drift alone.
# The lean peer (bench/peers/drf/peer/settings_lean.py) runs the API-key rounds only.
API_ROUND_ORDER = ("keyhouse", "peer", "lean_peer", "lean_peer", "peer", "keyhouse")
# The gateway's rounds, in the same spirit: each figure over two rounds, in mirrored order.
GATEWAY_API_ORDER = ("users_me", "verify", "peer", "peer", "verify", "users_me")
GATEWAY_PROXY_ORDER = ("direct", "guarded", "guarded", "direct")


def side_by_side(cfg: Config, data: Prepared) -> dict[str, Figures]:
    """keyhouse and the peer up together, their runs interleaved with bound samples.

    This machine's speed drifts (other tenants of the host): the Argon2 cost
    has moved by a third within a minute. Measured one after the other,
    keyhouse, the peer and the bound would each catch a different speed. So
    every login level runs both servers back to back (alternating which goes
    first) between two bound samples, and divides by their mean; the API-key
    runs go keyhouse, peer, peer, keyhouse, and each server's figure is the
    mean of its two.

    Returns results.json's "keyhouse", "peer" and "argon2_bound".
    """
    bound = ArgonBound(data.seed["password_hash"], max(2.0, cfg.seconds / 2))
    kh_port, peer_port, lean_port = free_ports(3)
    kh_ctx = keyhouse_server(data.kh_data, kh_port, cfg.workers, data.logs / "keyhouse.log")
    threads = data.setup["threads_per_worker"]
    peer_ctx = peer_server(
        data.peer_data, peer_port, cfg.workers, threads, data.logs / "peer.log", data.argon2_env
    )
    # The same seeded database: its users/me rounds only read it.
    lean_ctx = peer_server(
        data.peer_data,
        lean_port,
        cfg.workers,
        threads,
        data.logs / "peer-lean.log",
        data.argon2_env,
        lean=True,
    )
    req = data.requests
    with kh_ctx as kh_server, peer_ctx as peer_server_, lean_ctx as lean_server:
        sides: dict[str, tuple[Server, Path, Path]] = {
            "keyhouse": (kh_server, req["kh_login"], req["kh_me"]),
            "peer": (peer_server_, req["peer_login"], req["peer_me"]),
        }
        api_sides = {**sides, "lean_peer": (lean_server, req["peer_login"], req["peer_me"])}
        out: dict[str, dict[str, Any]] = {}
        for name, (server, login, me) in api_sides.items():
            warm(server.port, login, me)
            out[name] = {"logins": [], "api": None, "rss_before_mib": rss_mib(server.pid)}
        _login_levels(cfg, sides, bound, out)
        _api_rounds(cfg, api_sides, out)
    return {
        "keyhouse": out["keyhouse"],
        "peer": out["peer"],
        "lean_peer": out["lean_peer"],
        "argon2_bound": bound.summary(),
    }


def _login_levels(
    cfg: Config,
    sides: dict[str, tuple[Server, Path, Path]],
    bound: ArgonBound,
    out: dict[str, dict[str, Any]],
    cases: list[tuple[int, str | None]] | None = None,
) -> None:
    """Each login case for every server, between two bound samples, divided by their mean.

    A case is a concurrency and where its connections land (cfg.login_cases unless
    ``cases`` is given): balanced over the workers, pinned to one of them, or None,
    wherever the server's accept puts them (the serving stage: granian's workers
    each listen on their own SO_REUSEPORT socket, which placement cannot steer).
    """
    before = bound.sample()
    for i, (c, placement) in enumerate(cfg.login_cases if cases is None else cases):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        runs = {}
        for name in order:
            server, login, _ = sides[name]
            runs[name] = closed_loop(
                server.pid, server.port, login, c, c, cfg.run_seconds, placement
            )
        after = bound.sample()
        level_bound = (before["per_second"] + after["per_second"]) / 2
        before = after
        for name in sides:
            r = runs[name]
            r["bound_per_s"] = round(level_bound, 1)
            r["ratio_to_bound"] = round(r["ok_per_s"] / level_bound, 3)
            log(
                f"{name} logins c={c} {r['placement']['mode']}: {r['ok_per_s']}/s ok, ratio "
                f"{r['ratio_to_bound']} (bound {level_bound:.1f}/s), p50 {r['p50_ms']} ms, "
                f"p99 {r['p99_ms']} ms, statuses {r['statuses']}, "
                f"held {r['placement'].get('held')}"
            )
            out[name]["logins"].append(r)


def _api_rounds(
    cfg: Config, sides: dict[str, tuple[Server, Path, Path]], out: dict[str, dict[str, Any]]
) -> None:
    """users/me spread over many users, in API_ROUND_ORDER; each server's figure over its rounds."""
    c = cfg.api_connections
    rounds: dict[str, list[Figures]] = {name: [] for name in sides}
    for name in API_ROUND_ORDER:
        server, _, me = sides[name]
        r = closed_loop(server.pid, server.port, me, c, min(c, cfg.wrk_threads), cfg.run_seconds)
        log(
            f"{name} API c={c}: {r['ok_per_s']}/s ok, p50 {r['p50_ms']} ms, "
            f"p99 {r['p99_ms']} ms, statuses {r['statuses']}"
        )
        rounds[name].append(r)
    for name, (server, _, _) in sides.items():
        out[name]["api"] = merge_rounds(rounds[name])
        # glibc keeps freed Argon2 buffers in per-thread arenas: RSS after logins shows it.
        out[name]["rss_after_mib"] = rss_mib(server.pid)


def overload(cfg: Config, data: Prepared, bound_per_s: float) -> Figures:
    """A login flood at cfg.flood_factor x the bound, open loop, with users/me alongside."""
    seed = data.seed
    port = free_port()
    host = f"{HOST}:{port}"
    logins = [
        openloop.raw_request(
            "POST", "/api/v1/fetch_api_key", host, {"Content-Type": FORM}, login_body(e)
        )
        for e in seed["login"]
    ]
    me = [
        openloop.raw_request("GET", "/api/v1/users/me", host, {"Authorization": basic(e, k)})
        for e, k in seed["api"]
    ]
    flood_rate = cfg.flood_factor * bound_per_s
    # Login limits off: every attempt reaches the hashing gate, as a flood spread
    # over many usernames and addresses would. API limits stay on.
    with keyhouse_server(
        data.kh_data,
        port,
        cfg.workers,
        data.logs / "overload.log",
        KEYHOUSE_RATE_LIMITING_AUTHENTICATE="false",
    ) as server:
        warm(port, data.requests["kh_me"])
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
    result: Figures = {
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
        "ok_ratio_to_bound": round(ok / cfg.flood_seconds / bound_per_s, 3),
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
        "api_idle": open_loop_summary(idle),
        "api_during_flood": open_loop_summary(api),
        "cpu": cpu.result,
    }
    log(
        f"overload: statuses {statuses}, refused share {result['refused_share']}, "
        f"refused p99 {result['refused_p99_ms']} ms, peak RSS {result['peak_rss_mib']} MiB, "
        f"API p99 idle {result['api_idle']['p99_ms']} ms / flood "
        f"{result['api_during_flood']['p99_ms']} ms"
    )
    return result


def growth(cfg: Config, data: Prepared) -> Figures:
    """users/me at each size, every size served at once, their runs interleaved.

    Grown one after another on one server, the sizes were measured a minute
    apart, and this machine's drift showed as a trend: largest / smallest
    0.79–0.96 over runs, while the same 1 000- and 100 000-user databases
    served side by side, runs alternating, showed none (or the reverse). So
    each size gets its own copy of the data and its own server, and the runs
    go smallest to largest and back (half a run each); a size's figure is
    over its two rounds.
    """
    kh_env = child_env(KEYHOUSE_DATA_DIR=str(data.kh_data))
    grown_at: dict[int, dict[str, Any]] = {}
    data_dirs: dict[int, Path] = {}
    for size in cfg.growth_sizes:
        grown_at[size] = run_json(
            [str(VENV_BIN / "python"), str(BENCH / "seed.py"), "grow", "--total", str(size)],
            kh_env,
        )
        data_dirs[size] = data.out / f"growth-{size}"
        snapshot_data_dir(data.kh_data, data_dirs[size])
    with contextlib.ExitStack() as stack:
        servers = {
            # One fixed user, so api_by_user (200/min) would refuse the run: limits off.
            size: stack.enter_context(
                keyhouse_server(
                    data_dirs[size],
                    free_port(),
                    cfg.workers,
                    data.logs / f"growth-{size}.log",
                    KEYHOUSE_RATE_LIMITING="false",
                )
            )
            for size in cfg.growth_sizes
        }
        return growth_rounds(cfg, servers, data.requests["kh_me_fixed"], grown_at)


def growth_rounds(
    cfg: Config, servers: dict[int, Server], fixed: Path, grown_at: dict[int, dict[str, Any]]
) -> Figures:
    """users/me for one user on each size's server, smallest to largest and back.

    ``grown_at`` is seed.py grow's JSON for each size; the result is results.json's
    "growth" (the fleet stage's PostgreSQL growth too).
    """
    sizes = list(servers)
    rounds: dict[int, list[Figures]] = {size: [] for size in sizes}
    round_seconds = max(1, round(cfg.seconds / 2))
    c = cfg.api_connections
    for server in servers.values():
        warm(server.port, fixed)
    for size in [*sizes, *reversed(sizes)]:
        server = servers[size]
        r = closed_loop(server.pid, server.port, fixed, c, min(c, cfg.wrk_threads), round_seconds)
        log(
            f"growth {grown_at[size]['users']} users: {r['ok_per_s']}/s ok, "
            f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms"
        )
        rounds[size].append(r)
    rows = []
    for size in sizes:
        row = merge_rounds(rounds[size])
        grown = grown_at[size]
        row["users"] = grown["users"]
        row["insert_seconds"] = grown["insert_seconds"]
        row["lookup_plan"] = grown["lookup_plan"]
        rows.append(row)
    first = rows[0]["ok_per_s"] or 1
    return {
        "rows": rows,
        "round_seconds": round_seconds,
        "last_to_first": round(rows[-1]["ok_per_s"] / first, 3),
    }


def gateway(cfg: Config, data: Prepared) -> Figures:
    """What the forward-auth check costs: its own throughput, and what it adds behind nginx.

    First `GET /auth/verify` (Basic, spread over the API users, as a proxy asks
    it) beside keyhouse's `users/me` and the DRF peer's token GET, all three up
    together, rounds in GATEWAY_API_ORDER. Then one page through nginx, guarded
    (docs/gateway.md's recipe: auth_request → verify → the app) and direct
    (nginx → the app), the app being nginx itself answering `200 ok`: at one
    connection the difference in latency is the milliseconds keyhouse adds to a
    request; at BENCH_API_CONNECTIONS, what it does to throughput. keyhouse
    trusts nginx (TRUSTED_PROXIES) as deployed; CPU columns are keyhouse's.
    """
    kh_port, peer_port = free_ports(2)
    kh_ctx = keyhouse_server(
        data.kh_data,
        kh_port,
        cfg.workers,
        data.logs / "gateway-keyhouse.log",
        KEYHOUSE_TRUSTED_PROXIES="127.0.0.1/32",
    )
    peer_ctx = peer_server(
        data.peer_data,
        peer_port,
        cfg.workers,
        data.setup["threads_per_worker"],
        data.logs / "gateway-peer.log",
        data.argon2_env,
    )
    req = data.requests
    c = cfg.api_connections
    with kh_ctx as kh, peer_ctx as peer:
        warm(kh.port, req["kh_me"], req["kh_verify"])
        warm(peer.port, req["peer_me"])
        targets: dict[str, tuple[Server, Path]] = {
            "users_me": (kh, req["kh_me"]),
            "verify": (kh, req["kh_verify"]),
            "peer": (peer, req["peer_me"]),
        }
        rounds: dict[str, list[Figures]] = {name: [] for name in targets}
        for name in GATEWAY_API_ORDER:
            server, reqs = targets[name]
            r = closed_loop(
                server.pid, server.port, reqs, c, min(c, cfg.wrk_threads), cfg.run_seconds
            )
            log(
                f"gateway {name} c={c}: {r['ok_per_s']}/s ok, p50 {r['p50_ms']} ms, "
                f"statuses {r['statuses']}"
            )
            rounds[name].append(r)
        api = {name: merge_rounds(runs) for name, runs in rounds.items()}

        guarded, direct, app = free_ports(3)  # three at once: never the same port twice
        ports = (guarded, direct, app)
        with Nginx(data.out / "nginx", kh.port, ports) as nginx:
            paths = {"guarded": nginx.guarded, "direct": nginx.direct}
            for port in paths.values():
                warm(port, req["gw_page"])
            proxy: dict[str, dict[str, Figures]] = {}
            for conns in sorted({1, c}):
                runs: dict[str, list[Figures]] = {name: [] for name in paths}
                for name in GATEWAY_PROXY_ORDER:
                    # Through nginx: its upstream connections land as they will.
                    r = closed_loop(
                        kh.pid, paths[name], req["gw_page"], conns, min(conns, cfg.wrk_threads),
                        cfg.run_seconds, placement=None,
                    )  # fmt: skip
                    log(
                        f"gateway nginx {name} c={conns}: {r['ok_per_s']}/s ok, "
                        f"p50 {r['p50_ms']} ms, statuses {r['statuses']}"
                    )
                    runs[name].append(r)
                proxy[str(conns)] = {name: merge_rounds(rs) for name, rs in runs.items()}
    one = proxy["1"]
    added = {
        "p50_ms": round(one["guarded"]["p50_ms"] - one["direct"]["p50_ms"], 3),
        # A closed loop of one: each request's mean time is 1 / throughput.
        "mean_ms": round(
            1000 / max(0.1, one["guarded"]["ok_per_s"])
            - 1000 / max(0.1, one["direct"]["ok_per_s"]),
            3,
        ),
        "throughput_ratio_at_c": round(
            proxy[str(c)]["guarded"]["ok_per_s"] / max(0.1, proxy[str(c)]["direct"]["ok_per_s"]), 3
        ),
    }
    log(f"gateway: nginx -> verify adds {added['p50_ms']} ms (p50) / {added['mean_ms']} ms (mean)")
    return {"api": api, "proxy": proxy, "added": added, "connections": c}


def serving(cfg: Config, data: Prepared) -> Figures:
    """The serving stack side by side: each app under gunicorn and under granian.

    keyhouse (`keyhouse serve --server ...`) and the DRF peer, each under both
    servers with the same workers, threads, timeouts and backlog
    (ops/server_policy.py), all four up at once as in `side_by_side`: the logins
    at 2 and 8 connections per core go server after server between two bound
    samples (the order reversed from level to level), then users/me in mirrored
    rounds (each server's figure over its two). Every connection lands where the
    server's accept puts it, unplaced (bench/placement.py steers gunicorn's
    shared socket only), and the report says so. The peer under granian needs
    granian in bench/.venv-peer (bench/setup.sh); without it that column is left
    out and the results say so.

    Instructions per request under each server are `make bench-cost`'s job
    (bench/cost.py, counted with callgrind). Its granian figure belongs in this
    stage's table: run it with KEYHOUSE_SERVER=granian (the peer: the same
    server switch) and put the count beside each row's seconds here.
    """
    bound = ArgonBound(data.seed["password_hash"], max(2.0, cfg.seconds / 2))
    req = data.requests
    missing = [f"peer-{s}" for s in HTTP_SERVERS if not peer_has(s)]
    with contextlib.ExitStack() as stack:
        sides: dict[str, tuple[Server, Path, Path]] = {}
        for server in HTTP_SERVERS:
            kh = keyhouse_server(
                data.kh_data,
                free_port(),
                cfg.workers,
                data.logs / f"serving-keyhouse-{server}.log",
                server=server,
            )
            sides[f"keyhouse-{server}"] = (stack.enter_context(kh), req["kh_login"], req["kh_me"])
        for server in HTTP_SERVERS:
            if f"peer-{server}" in missing:
                continue
            peer = peer_server(
                data.peer_data,
                free_port(),
                cfg.workers,
                data.setup["threads_per_worker"],
                data.logs / f"serving-peer-{server}.log",
                data.argon2_env,
                server=server,
            )
            sides[f"peer-{server}"] = (stack.enter_context(peer), req["peer_login"], req["peer_me"])
        out: dict[str, dict[str, Any]] = {}
        for name, (srv, login, me) in sides.items():
            warm(srv.port, login, me)
            out[name] = {"logins": [], "api": None, "rss_before_mib": rss_mib(srv.pid)}
        # Connections as they land (no placement): see _login_levels.
        _login_levels(cfg, sides, bound, out, [(c, None) for c in cfg.serving_levels])
        c = cfg.api_connections
        names = list(sides)
        rounds: dict[str, list[Figures]] = {name: [] for name in names}
        for name in [*names, *reversed(names)]:
            srv, _, me = sides[name]
            r = closed_loop(
                srv.pid, srv.port, me, c, min(c, cfg.wrk_threads), cfg.run_seconds, None
            )
            log(
                f"serving {name} API c={c}: {r['ok_per_s']}/s ok, p50 {r['p50_ms']} ms, "
                f"p99 {r['p99_ms']} ms, statuses {r['statuses']}"
            )
            rounds[name].append(r)
        for name, (srv, _, _) in sides.items():
            out[name]["api"] = merge_rounds(rounds[name])
            out[name]["rss_after_mib"] = rss_mib(srv.pid)
    return {
        "servers": out,
        "argon2_bound": bound.summary(),
        "levels": cfg.serving_levels,
        "not_measured": missing,
        "instructions": counted_instructions(BENCH / "out"),
    }


def counted_instructions(out: Path) -> dict[str, dict[str, Any]]:
    """keyhouse's instructions per request under each server, as the last `make
    bench-cost` under it counted them (bench/out/cost-<server>.json); none: {}."""
    counted = {}
    for server in HTTP_SERVERS:
        path = out / f"cost-{server}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        counted[server] = {
            "when": result["setup"]["when"],
            "login_outside_argon2": result["endpoints"]["login"]["outside_argon2"],
            "users_me": result["endpoints"]["me"]["outside_argon2"],
        }
    return counted
