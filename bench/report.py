"""Reporting: the targets (MET / NOT MET) and the markdown tables of results.md.

Works from results.json's dict alone, so a report can be rendered again from
a saved results.json. One function per section, in the order they print;
docs/performance.md explains every figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openloop
from config import Config

Results = dict[str, Any]
Run = dict[str, Any]

# Issue 17: logins >= 0.90 of the Argon2 bound, balanced and pinned, reaching for 0.95.
LOGIN_TARGET = 0.90
LOGIN_REACH = 0.95
API_TARGET = 2.0
# Cores used by other processes during a run above which the report warns.
NOISY_OTHER_CORES = 0.25
MET = {True: "MET", False: "NOT MET"}


def _best(runs: list[Run], placement: str) -> Run | None:
    chosen = [r for r in runs if r["placement"]["mode"] == placement]
    return max(chosen, key=lambda r: r["ratio_to_bound"]) if chosen else None


def targets(results: Results) -> dict[str, Any]:
    """The targets, reported and never enforced: results.json's "targets"."""
    kh, peer = results["keyhouse"], results["peer"]
    kh_best = _best(kh["logins"], "balanced") or kh["logins"][0]
    peer_best = _best(peer["logins"], "balanced") or peer["logins"][0]
    out: dict[str, Any] = {
        "login_ratio": {
            "target": f">= {LOGIN_TARGET}",
            "value": kh_best["ratio_to_bound"],
            "at_concurrency": kh_best["connections"],
            "met": kh_best["ratio_to_bound"] >= LOGIN_TARGET,
        },
    }
    kh_pinned = _best(kh["logins"], "pinned")
    if kh_pinned is not None:
        out["login_ratio_pinned"] = {
            "target": f">= {LOGIN_TARGET}",
            "value": kh_pinned["ratio_to_bound"],
            "at_concurrency": kh_pinned["connections"],
            "met": kh_pinned["ratio_to_bound"] >= LOGIN_TARGET,
        }
    out["login_ratio_vs_peer"] = {
        "target": ">= peer's",
        "keyhouse": kh_best["ratio_to_bound"],
        "peer": peer_best["ratio_to_bound"],
        "met": kh_best["ratio_to_bound"] >= peer_best["ratio_to_bound"],
    }
    out["api_vs_peer"] = _api_target(kh, peer)
    lean = results.get("lean_peer")
    if lean is not None:  # results from before the lean peer have none
        out["api_vs_lean_peer"] = _api_target(kh, lean)
    return out


def _api_target(kh: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """keyhouse's users/me throughput against one peer's /me, and the 2x target."""
    ratio = kh["api"]["ok_per_s"] / max(0.1, peer["api"]["ok_per_s"])
    return {
        "target": f">= {API_TARGET}x",
        "keyhouse_per_s": kh["api"]["ok_per_s"],
        "peer_per_s": peer["api"]["ok_per_s"],
        "ratio": round(ratio, 2),
        "met": ratio >= API_TARGET,
    }


def non200(run: Run) -> str:
    """Every answer but 200, and every socket error, by count; "-" for none."""
    bad = {k: v for k, v in run["statuses"].items() if k != "200"}
    bad.update(run["socket_errors"])
    return ", ".join(f"{k}: {v}" for k, v in sorted(bad.items())) or "-"


def cpu(run: Run) -> str:
    """The CPU column: server (each worker) / load generator / other processes, in cores."""
    c = run["cpu"]
    workers = "+".join(str(x) for x in c["per_process_cores"][1:])
    return f"{c['server_cores']} ({workers}) / {c['loadgen_cores']} / {c['other_cores']}"


def rounds(run: Run) -> str:
    """Each round's throughput, as "a + b"."""
    return " + ".join(str(x["ok_per_s"]) for x in run["rounds"])


def header(results: Results, run_seconds: int) -> list[str]:
    s, b = results["setup"], results["argon2_bound"]
    a = s["argon2"]
    return [
        f"## keyhouse benchmark ({s['cores']} cores, {s['workers']} workers x "
        f"{s['threads_per_worker']} threads, {s['hashing_slots']} hashing "
        f"slots shared by the workers, Argon2id m={a['memory_cost']} KiB t={a['time_cost']} "
        f"p={a['parallelism']}, runs of {run_seconds} s)",
        "",
        f"**Argon2 bound**: {b['per_second']} verifications/s on {b['processes']} processes "
        f"({b['ms_per_verification_cpu']} ms CPU each; other processes used up to "
        f"{b['other_cores']} cores meanwhile): the mean of {len(b['samples'])} samples "
        f"taken between the login runs, which ranged from {b['min_per_second']} to "
        f"{b['max_per_second']}/s. Each login level is divided by the mean of the "
        f"samples just before and after it (its *bound/s* column).",
    ]


def placed(run: Run) -> str:
    """Where a run's connections were, per worker ("8+8"), flagged if not as planned."""
    where = run["placement"]
    if "held" not in where:
        return str(where["mode"])
    held = "+".join(str(n) for n in where["held"])
    return f"{where['mode']} {held}" + ("" if where["placed"] else " (NOT as planned)")


def logins(results: Results) -> list[str]:
    lines = [
        "### Logins: keyhouse `POST /api/v1/fetch_api_key` vs DRF `POST /api-token-auth/`",
        "",
        "*balanced*: the connections split evenly over the workers; *pinned*: all on one "
        "worker, the others idle (bench/placement.py). The connections each worker held "
        "follow the placement (keyhouse's / the peer's).",
        "",
        "| concurrency | placement | bound/s | keyhouse ok/s | p50 ms | p99 ms | / bound | "
        "non-200 | CPU srv/gen/other | peer ok/s | p50 ms | p99 ms | / bound | non-200 "
        "| CPU srv/gen/other |",
        "|---:|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|---|",
    ]
    for k, p in zip(results["keyhouse"]["logins"], results["peer"]["logins"], strict=True):
        where = placed(k) if placed(k) == placed(p) else f"{placed(k)} / {placed(p)}"
        lines.append(
            f"| {k['connections']} | {where} | {k['bound_per_s']} | {k['ok_per_s']} | "
            f"{k['p50_ms']} | {k['p99_ms']} | "
            f"{k['ratio_to_bound']} | {non200(k)} | {cpu(k)} | {p['ok_per_s']} | "
            f"{p['p50_ms']} | {p['p99_ms']} | {p['ratio_to_bound']} | {non200(p)} | {cpu(p)} |"
        )
    return lines


def api(results: Results) -> list[str]:
    ka = results["keyhouse"]["api"]
    rows = [
        ("keyhouse `GET /api/v1/users/me` (Basic, rate limits on)", ka),
        ("peer `GET /me` (Token)", results["peer"]["api"]),
    ]
    order = "keyhouse, peer, peer, keyhouse"
    if "lean_peer" in results:
        rows.append(
            (
                "lean peer `GET /me` (Token; CommonMiddleware only, persistent connections)",
                results["lean_peer"]["api"],
            )
        )
        order = "keyhouse, peer, lean peer, lean peer, peer, keyhouse"
    return [
        f"### API-key requests ({ka['connections']} connections, spread over "
        f"{results['setup']['api_users']} users; {order}: each figure "
        f"is over its server's {len(ka['rounds'])} rounds)",
        "",
        "| endpoint | ok/s | p50 ms | p99 ms | non-200 | CPU srv/gen/other |",
        "|---|---:|---:|---:|---|---|",
        *(
            f"| {name} | {r['ok_per_s']} ({rounds(r)}) | {r['p50_ms']} | {r['p99_ms']} | "
            f"{non200(r)} | {cpu(r)} |"
            for name, r in rows
        ),
    ]


def target_lines(results: Results) -> list[str]:
    t = results["targets"]
    login, vs_peer, api_ = t["login_ratio"], t["login_ratio_vs_peer"], t["api_vs_peer"]
    lines = [
        "### Targets (reported, never enforced)",
        "",
        f"- keyhouse login throughput / Argon2 bound {login['target']}, balanced: "
        f"**{MET[login['met']]}** ({login['value']} at concurrency {login['at_concurrency']}; "
        f"the reach, {LOGIN_REACH}: {MET[login['value'] >= LOGIN_REACH]})",
    ]
    if "login_ratio_pinned" in t:
        pinned = t["login_ratio_pinned"]
        lines.append(
            f"- keyhouse login throughput / Argon2 bound {pinned['target']}, pinned to one "
            f"worker: **{MET[pinned['met']]}** ({pinned['value']} at concurrency "
            f"{pinned['at_concurrency']})"
        )
    return [
        *lines,
        f"- keyhouse login ratio >= peer's (balanced): **{MET[vs_peer['met']]}** "
        f"(keyhouse {vs_peer['keyhouse']}, peer {vs_peer['peer']})",
        f"- keyhouse users/me >= {API_TARGET:g}x peer /me: "
        f"**{MET[api_['met']]}** ({api_['keyhouse_per_s']}/s vs "
        f"{api_['peer_per_s']}/s = {api_['ratio']}x)",
        *(
            f"- keyhouse users/me >= {API_TARGET:g}x the lean peer's /me: "
            f"**{MET[lean['met']]}** ({lean['keyhouse_per_s']}/s vs "
            f"{lean['peer_per_s']}/s = {lean['ratio']}x)"
            for lean in [t["api_vs_lean_peer"]]
            if "api_vs_lean_peer" in t
        ),
    ]


def overload(results: Results, flood_factor: float) -> list[str]:
    ov = results["overload"]
    idle, during = ov["api_idle"], ov["api_during_flood"]
    return [
        f"### Overload: {ov['offered_per_s']} logins/s offered "
        f"({flood_factor:g}x the bound) for {ov['seconds']} s, login limits off",
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
        f"| users/me at {idle['rate_per_s']:g}/s, idle: p50 / p99 | "
        f"{idle['p50_ms']} / {idle['p99_ms']} ms (non-200: {idle['non_200']}) |",
        f"| users/me at {during['rate_per_s']:g}/s, during the flood: p50 / p99 | "
        f"{during['p50_ms']} / {during['p99_ms']} ms (non-200: {during['non_200']}) |",
        f"| CPU srv/gen/other (cores) | {cpu(ov)} |",
    ]


def growth(results: Results) -> list[str]:
    gr = results["growth"]
    lines = [
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
        lines.append(
            f"| {g['users']} | {g['ok_per_s']} ({rounds(g)}) | {g['p50_ms']} | {g['p99_ms']} | "
            f"{non200(g)} | {cpu(g)} | `{plan}` |"
        )
    lines += ["", f"Largest / smallest size throughput: {gr['last_to_first']} (flat is 1.0)."]
    return lines


def memory_and_legend(results: Results) -> list[str]:
    kh, peer = results["keyhouse"], results["peer"]
    return [
        f"Server RSS (master + workers) before -> after the closed-loop runs: keyhouse "
        f"{kh['rss_before_mib']} -> {kh['rss_after_mib']} MiB, peer "
        f"{peer['rss_before_mib']} -> {peer['rss_after_mib']} MiB.",
        "",
        "CPU columns: cores busy in the server (each worker) / the load generator / "
        "everything else on the machine.",
    ]


def unplaced_runs(results: Results) -> list[str]:
    """The runs whose connections did not land as planned (placement.py); none, no lines."""
    missed = [
        f"{who} {what} ({run['placement']})"
        for who in ("keyhouse", "peer", "lean_peer")
        if who in results
        for what, run in [
            *((f"logins c={x['connections']}", x) for x in results[who]["logins"]),
            *((f"API round {i + 1}", x) for i, x in enumerate(results[who]["api"]["rounds"])),
        ]
        if not run["placement"].get("placed", True)
    ]
    missed += [
        f"growth {g['users']} users round {i + 1} ({x['placement']})"
        for g in results.get("growth", {}).get("rows", [])
        for i, x in enumerate(g["rounds"])
        if not x["placement"].get("placed", True)
    ]
    for side_name, side in (results.get("fleet") or {}).items():
        if side_name == "pg_growth" or not side:
            continue
        missed += [
            f"fleet {side_name} {what} ({run['placement']})"
            for what, run in [
                *((f"logins c={x['connections']}", x) for x in side["logins"]),
                *((f"API round {i + 1}", x) for i, x in enumerate(side["api"]["rounds"])),
            ]
            if not run["placement"].get("placed", True)
        ]
    if not missed:
        return []
    return [
        "**Runs whose connections did not land as planned** (their figures measure "
        "another spread): " + "; ".join(missed) + "."
    ]


def _all_cpu(results: Results) -> list[dict[str, Any]]:
    """The CPU figures of every run whose "other" column measures the machine's noise."""
    r = results
    runs: list[Run] = []
    if "keyhouse" in r:
        runs += [*r["keyhouse"]["logins"], r["keyhouse"]["api"], *r["peer"]["logins"]]
        runs.append(r["peer"]["api"])
        if "lean_peer" in r:
            runs.append(r["lean_peer"]["api"])
    if "overload" in r:
        runs.append(r["overload"])
    runs += r.get("growth", {}).get("rows", [])
    # Not the fleet's runs nor the gateway's through nginx: their "other" column is
    # the load's own PostgreSQL, Redis, nginx and upstream, not noise.
    if "fleet" in r:
        runs += [*r["fleet"]["sqlite"]["logins"], r["fleet"]["sqlite"]["api"]]
    if "serving" in r:
        for side in r["serving"]["servers"].values():
            runs += [*side["logins"], side["api"]]
    if "gateway" in r:
        runs += list(r["gateway"]["api"].values())
    return [run["cpu"] for run in runs]


def busy_warning(results: Results) -> list[str]:
    """A warning when other processes used over NOISY_OTHER_CORES during any run."""
    sampled = (results, results.get("serving", {}))
    bounds = [r["argon2_bound"] for r in sampled if "argon2_bound" in r]
    bound = max([b["other_cores"] for b in bounds] or [0.0])
    busiest = max([c["other_cores"] for c in _all_cpu(results)] or [0.0])
    if max(busiest, bound) <= NOISY_OTHER_CORES:
        return []
    return [
        f"**WARNING: the machine was busy** (up to "
        f"{max(busiest, bound)} cores used by other "
        f"processes during a run, {bound} during the Argon2 bound): "
        f"these figures are noisy. Re-run on an idle machine.",
    ]


def gateway(results: Results) -> list[str]:
    """The forward-auth check: throughput beside users/me and the peer, cost behind nginx."""
    gw = results["gateway"]
    api_, proxy, added = gw["api"], gw["proxy"], gw["added"]
    lines = [
        f"### Gateway: `/auth/verify` ({gw['connections']} connections, spread over "
        f"{results['setup']['api_users']} users; users/me, verify, peer, peer, verify, "
        f"users/me: each figure over its {len(api_['verify']['rounds'])} rounds)",
        "",
        "| endpoint | ok/s | p50 ms | p99 ms | non-200 | CPU srv/gen/other |",
        "|---|---:|---:|---:|---|---|",
    ]
    rows = (
        ("keyhouse `GET /api/v1/users/me` (Basic)", api_["users_me"]),
        ("keyhouse `GET /auth/verify` (Basic, as a proxy asks)", api_["verify"]),
        ("peer `GET /me` (Token)", api_["peer"]),
    )
    for name, run in rows:
        lines.append(
            f"| {name} | {run['ok_per_s']} ({rounds(run)}) | {run['p50_ms']} | {run['p99_ms']} "
            f"| {non200(run)} | {cpu(run)} |"
        )
    lines += [
        "",
        "nginx in front of a trivial upstream (nginx itself answering `200 ok`): *guarded* is "
        "docs/gateway.md's recipe (auth_request → verify → the app), *direct* the same "
        "proxy_pass without the check; direct, guarded, guarded, direct. CPU: keyhouse's.",
        "",
        "| connections | path | ok/s | p50 ms | p99 ms | non-200 | keyhouse CPU srv/gen/other |",
        "|---:|---|---:|---:|---:|---|---|",
    ]
    for conns, paths in proxy.items():
        for name in ("direct", "guarded"):
            run = paths[name]
            lines.append(
                f"| {conns} | {name} | {run['ok_per_s']} ({rounds(run)}) | {run['p50_ms']} | "
                f"{run['p99_ms']} | {non200(run)} | {cpu(run)} |"
            )
    lines += [
        "",
        f"keyhouse's check adds **{added['p50_ms']} ms** per request at the median "
        f"({added['mean_ms']} ms on average) at one connection; at {gw['connections']} "
        f"connections the guarded path serves {added['throughput_ratio_at_c']} of the "
        f"direct path's requests per second.",
    ]
    return lines


def _cost_cells(run: Run) -> str:
    """PostgreSQL transactions, rows fetched / written, CPU ms; Redis commands, CPU ms."""
    c = run.get("shared_cost")
    if c is None:
        return "- | - | - | - | -"
    return (
        f"{c['pg_transactions']} | {c['pg_tup_fetched']} / {c['pg_rows_written']} | "
        f"{c['pg_cpu_ms']} | {c['redis_commands']} | {c['redis_cpu_ms']}"
    )


def _fleet_row(label: str, run: Run, login: bool) -> str:
    ratio = f"{run['ratio_to_bound']} (bound {run['bound_per_s']})" if login else "-"
    return (
        f"| {label} | {run['connections']} | {run['ok_per_s']} | {ratio} | {run['p50_ms']} | "
        f"{run['p99_ms']} | {non200(run)} | {_cost_cells(run)} | "
        f"{run['cpu']['server_cores']} / {run['cpu']['loadgen_cores']} / "
        f"{run['cpu']['other_cores']} |"
    )


def fleet(results: Results) -> list[str]:
    """Two servers on PostgreSQL + Redis beside the SQLite default, and growth on PostgreSQL."""
    fl = results["fleet"]
    pr, sq = fl["postgres_redis"], fl["sqlite"]
    lines = [
        f"### Fleet: two `keyhouse serve` ({pr['workers_per_server']} workers each) on one "
        f"PostgreSQL database and one Redis, beside SQLite (one server, "
        f"{sq['workers_per_server']} workers; {sq['source']})",
        "",
        "Each load split in half over the two servers, at once; the bound is the machine's "
        "cores still (both servers hash on them). Per request: PostgreSQL transactions "
        "(autocommit: one per statement outside `atomic()`), rows fetched / written and "
        "backend CPU; Redis commands and CPU. CPU srv/gen/other: both servers / wrk / the "
        "rest, PostgreSQL and Redis included.",
        "",
        "| configuration, load | connections | ok/s | / bound | p50 ms | p99 ms | non-200 | "
        "PG xact/req | PG rows fetched / written per req | PG CPU ms/req | Redis cmds/req | "
        "Redis CPU ms/req | CPU srv/gen/other |",
        "|---|---:|---:|---|---:|---:|---|---:|---|---:|---:|---:|---|",
    ]
    for name, side in (("PG + Redis, 2 servers", pr), ("SQLite, 1 server", sq)):
        lines += [_fleet_row(f"{name}, logins", r, True) for r in side["logins"]]
        lines.append(_fleet_row(f"{name}, users/me ({rounds(side['api'])})", side["api"], False))
    me_cost = pr["api"].get("shared_cost", {})
    by_cmd = ", ".join(f"{k} {v}" for k, v in me_cost.get("redis_by_command", {}).items())
    login_costs = [r["shared_cost"] for r in pr["logins"] if "shared_cost" in r]
    login_cmds = ", ".join(
        f"{k} {v}" for k, v in (login_costs[-1]["redis_by_command"] if login_costs else {}).items()
    )
    lines += [
        "",
        f"Redis commands per users/me: {by_cmd or '-'}; per login (top concurrency): "
        f"{login_cmds or '-'}.",
    ]
    gr = fl.get("pg_growth")
    if gr:
        lines += [
            "",
            "#### Growth on PostgreSQL: `GET /api/v1/users/me` for one fixed user, no Redis "
            "(its cache would answer every request), rate limits off",
            "",
            "| users | ok/s | p50 ms | p99 ms | non-200 | insert s | CPU srv/gen/other | "
            "lookup plan |",
            "|---:|---:|---:|---:|---|---:|---|---|",
        ]
        for g in gr["rows"]:
            plan = " ".join(g["lookup_plan"].split())
            lines.append(
                f"| {g['users']} | {g['ok_per_s']} ({rounds(g)}) | {g['p50_ms']} | "
                f"{g['p99_ms']} | {non200(g)} | {g['insert_seconds']} | {cpu(g)} | `{plan}` |"
            )
        lines += ["", f"Largest / smallest size throughput: {gr['last_to_first']} (flat is 1.0)."]
    return lines


def serving(results: Results) -> list[str]:
    """The serving stack side by side: each app under gunicorn and granian."""
    sv = results["serving"]
    servers, levels, b = sv["servers"], sv["levels"], sv["argon2_bound"]
    level_cols = "".join(f" c={c} ok/s | / bound | p99 ms |" for c in levels)
    lines = [
        "### Serving stack: gunicorn vs granian (same workers, threads, timeouts)",
        "",
        f"Argon2 bound {b['per_second']}/s ({len(b['samples'])} samples, "
        f"{b['min_per_second']} to {b['max_per_second']}/s). Logins, then users/me "
        f"({results['setup']['api_users']} users, each server's figure over 2 rounds). "
        "Connections land as each server accepts them, not placed on workers "
        "(bench/placement.py steers gunicorn's shared socket only).",
        "",
        f"| server |{level_cols} users/me ok/s | p50 ms | p99 ms | non-200 | CPU srv/gen/other |",
        "|---|" + "---:|---:|---:|" * len(levels) + "---:|---:|---:|---|---|",
    ]
    for name, run in servers.items():
        cells = "".join(
            f" {r['ok_per_s']} | {r['ratio_to_bound']} | {r['p99_ms']} |" for r in run["logins"]
        )
        a = run["api"]
        lines.append(
            f"| {name} |{cells} {a['ok_per_s']} ({rounds(a)}) | {a['p50_ms']} | "
            f"{a['p99_ms']} | {non200(a)} | {cpu(a)} |"
        )
    lines.append("")
    for app in ("keyhouse", "peer"):
        gu, gr = servers.get(f"{app}-gunicorn"), servers.get(f"{app}-granian")
        if gu and gr:
            best = {
                k: max(r["ratio_to_bound"] for r in v["logins"])
                for k, v in (("gunicorn", gu), ("granian", gr))
            }
            lines.append(
                f"- {app}: users/me granian / gunicorn "
                f"{gr['api']['ok_per_s'] / max(0.1, gu['api']['ok_per_s']):.2f}x; best login "
                f"ratio gunicorn {best['gunicorn']}, granian {best['granian']}."
            )
    for server in ("gunicorn", "granian"):
        kh, peer = servers.get(f"keyhouse-{server}"), servers.get(f"peer-{server}")
        if kh and peer:
            lines.append(
                f"- under {server}: keyhouse users/me / peer "
                f"{kh['api']['ok_per_s'] / max(0.1, peer['api']['ok_per_s']):.2f}x."
            )
    if sv["not_measured"]:
        lines.append(
            f"- not measured: {', '.join(sv['not_measured'])} (bench/.venv-peer lacks the "
            "server; bench/setup.sh installs it)."
        )
    counted = sv.get("instructions") or {}
    for server, c in counted.items():
        lines.append(
            f"- keyhouse instructions per request under {server} (`make bench-cost`, "
            f"{c['when']}): login outside Argon2 {c['login_outside_argon2'] / 1000:,.0f} k, "
            f"users/me {c['users_me'] / 1000:,.0f} k."
        )
    if not counted:
        lines.append(
            "- instructions per request under each server: `make bench-cost` (bench/cost.py), "
            "not counted yet."
        )
    return lines


def setup_line(results: Results, run_seconds: int) -> list[str]:
    """The heading of a run without side_by_side (no Argon2 bound was sampled)."""
    s = results["setup"]
    return [
        f"## keyhouse benchmark ({s['cores']} cores, {s['workers']} workers x "
        f"{s['threads_per_worker']} threads, runs of {run_seconds} s; stages: "
        f"{', '.join(results.get('meta', {}).get('stages', []))})",
    ]


def markdown(results: Results, cfg: Config) -> str:
    """results.md: every section of the stages that ran, a blank line between them."""
    full = "keyhouse" in results  # side_by_side ran (BENCH_STAGES)
    sections = [
        header(results, cfg.run_seconds) if full else setup_line(results, cfg.run_seconds),
        logins(results) if full else [],
        api(results) if full else [],
        target_lines(results) if full else [],
        overload(results, cfg.flood_factor) if "overload" in results else [],
        growth(results) if "growth" in results else [],
        gateway(results) if "gateway" in results else [],
        fleet(results) if "fleet" in results else [],
        serving(results) if "serving" in results else [],
        memory_and_legend(results) if full else [],
        unplaced_runs(results),
        busy_warning(results),
    ]
    lines: list[str] = []
    for section in sections:
        if section:
            lines += [*([""] if lines else []), *section]
    return "\n".join(lines)


def write(results: Results, cfg: Config, out: Path) -> Path:
    """results.json and results.md under `out`, and both on stdout; returns results.json."""
    report = markdown(results, cfg)
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(report + "\n")
    print(report)
    print()
    print("```json")
    print(json.dumps(results, indent=2))
    print("```")
    return path
