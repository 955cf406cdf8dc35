"""Interleaved A/B logins: keyhouse under two (or more) environments, up at once.

Not part of `make bench`. On these shared machines one short run of each variant
catches a different machine speed (the Argon2 bound moves 10 % within minutes),
so a 5 % change cannot be told from the drift. Here every variant's server is up
for the whole run, each round runs every load against every variant back to
back, and the order of the variants alternates from round to round, so the
drift falls on all of them alike. Run after a `make bench` (it uses that run's
seeded data dir, copied for each variant, and its wrk request files):

    .venv/bin/python bench/ab.py '{"a": {}, "b": {"KEYHOUSE_HASHING_SLOTS": "3"}}' \\
        [--loads 16:balanced,4:pinned] [--rounds 3] [--seconds 5]

Each variant is a name and the environment it adds (KEYHOUSE_* settings, say).
Prints each run, then per variant and load the mean logins/s and the mean CPU
per login (server cores / logins per second), which moves less than throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
from pathlib import Path

from config import CORES
from measure import closed_loop, warm
from servers import BENCH, free_ports, keyhouse_server


def _loads(text: str) -> list[tuple[int, str]]:
    loads = []
    for item in text.split(","):
        conns, _, placement = item.partition(":")
        loads.append((int(conns), placement or "balanced"))
    return loads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", help='JSON: {"name": {"ENV_VAR": "value"}, ...}')
    parser.add_argument("--loads", default="16:balanced,4:pinned,16:pinned")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    variants: dict[str, dict[str, str]] = json.loads(args.variants)
    loads = _loads(args.loads)
    out = BENCH / "out"
    seeded, requests = out / "keyhouse-data", out / "requests" / "kh_login.tsv"
    if not seeded.is_dir() or not requests.exists():
        raise SystemExit("bench/ab.py: run `make bench` first (it needs that run's data)")
    figures: dict[tuple[str, tuple[int, str]], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        servers = {}
        for (name, env), port in zip(variants.items(), free_ports(len(variants)), strict=True):
            data = Path(tmp) / name
            shutil.copytree(seeded, data)
            log = Path(tmp) / f"{name}.log"
            servers[name] = stack.enter_context(keyhouse_server(data, port, CORES, log, **env))
            warm(servers[name].port, requests)
        for r in range(args.rounds):
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            for load in loads:
                for name in order:
                    s = servers[name]
                    run = closed_loop(
                        s.pid, s.port, requests, load[0], load[0], args.seconds, load[1]
                    )
                    cpu_ms = 1000 * run["cpu"]["server_cores"] / max(0.1, run["ok_per_s"])
                    figures.setdefault((name, load), []).append((run["ok_per_s"], cpu_ms))
                    print(
                        f"round {r + 1} {name} c={load[0]} {load[1]}: {run['ok_per_s']}/s, "
                        f"{cpu_ms:.1f} ms CPU per login, statuses {run['statuses']}",
                        flush=True,
                    )
    for (name, load), runs in figures.items():
        rate = sum(x for x, _ in runs) / len(runs)
        cpu = sum(y for _, y in runs) / len(runs)
        print(f"{name} c={load[0]} {load[1]}: mean {rate:.1f} logins/s, {cpu:.1f} ms CPU each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
