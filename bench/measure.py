"""Measuring: one load against one server, and the figures collected from it.

A closed-loop run places its connections on the server's workers on purpose
(placement.py): balanced or pinned to one, never left to gunicorn's accept race.

Nothing here knows which endpoint or server it measures: the scenarios
(scenarios.py) say what to run, and the figures come back as the plain dicts
that go into results.json unchanged.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import argon2_bound
import openloop
from config import CORES, PASSWORD
from placement import placed, plan, workers_of
from procstat import CpuMeter, MemorySampler, wait_until_idle
from servers import wrk, wrk_result, wrk_start

# One run's (or one merged figure's) figures, as they appear in results.json.
Figures = dict[str, Any]


def log(msg: str) -> None:
    """Progress on stderr, so that stdout holds only the report."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def rss_mib(pid: int) -> float:
    """The resident memory of a server (master + workers) now, in MiB."""
    return round(MemorySampler(pid).sample()[0] / 1024, 1)


def warm(port: int, *reqs: Path) -> None:
    """A second of each request file, so first-request costs stay out of the figures."""
    for r in reqs:
        wrk(port, r, 2, 2, 1)


def request_part(reqs: Path, part: int, parts: int) -> Path:
    """Every ``parts``-th line of a request file, so that each wrk process owns its users.

    A file with fewer lines than parts (one fixed user) is shared whole.
    """
    if parts == 1:
        return reqs
    path = reqs.with_name(f"{reqs.name}.part{part}of{parts}")
    if not path.exists():
        lines = reqs.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[part::parts]) or "".join(lines))
    return path


def merge_parts(parts: list[Figures]) -> Figures:
    """The wrk processes of one run, side by side, as one figure.

    Their throughputs add up; the median is their request-weighted mean and the
    p99 their largest (wrk reports percentiles, not its histogram).
    """
    if len(parts) == 1:
        return parts[0]
    statuses: dict[str, int] = {}
    socket_errors: dict[str, int] = {}
    for r in parts:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        for k, v in r["socket_errors"].items():
            socket_errors[k] = socket_errors.get(k, 0) + v
    requests = sum(r["requests"] for r in parts)
    return {
        "connections": sum(r["connections"] for r in parts),
        "seconds": max(r["seconds"] for r in parts),
        "requests": requests,
        "ok": sum(r["ok"] for r in parts),
        "ok_per_s": round(sum(r["ok_per_s"] for r in parts), 1),
        "p50_ms": round(sum(r["p50_ms"] * r["requests"] for r in parts) / max(1, requests), 2),
        "p99_ms": max(r["p99_ms"] for r in parts),
        "statuses": statuses,
        "socket_errors": socket_errors,
        "parts": [{"connections": r["connections"], "ok_per_s": r["ok_per_s"]} for r in parts],
    }


def closed_loop(
    server_pid: int,
    port: int,
    reqs: Path,
    conns: int,
    threads: int,
    seconds: int,
    placement: str | None = "balanced",
) -> Figures:
    """One closed-loop run, its connections placed on the server's workers (placement.py).

    ``placement`` is "balanced" (an even split, one wrk per worker), "pinned"
    (every connection on one worker) or None (wherever they land: for loads
    that do not come from wrk directly, as through nginx). Every run is
    measured once: an uneven spread is a case to measure, not noise to retry.
    """
    with CpuMeter(server_pid) as cpu:
        if placement is None:
            result = wrk(port, reqs, conns, threads, seconds)
            where: dict[str, object] = {"mode": "as accepted"}
        else:
            shares = plan(placement, conns, len(workers_of(server_pid)))
            parts = sum(1 for s in shares if s)
            started: list[tuple[subprocess.Popen[str], int]] = []

            def start(part: int, share: int) -> None:
                part_threads = share if threads >= conns else max(1, min(share, threads))
                reqs_part = request_part(reqs, part, parts)
                started.append((wrk_start(port, reqs_part, share, part_threads, seconds), share))

            try:
                with placed(server_pid, port, shares, start) as where:
                    where["mode"] = placement
            finally:
                results = [wrk_result(proc, share, seconds) for proc, share in started]
            result = merge_parts(results)
            if not where["placed"]:
                log(f"{placement} placement not reached: {where}")
    result["cpu"] = cpu.result
    result["placement"] = where
    result["settle_seconds"] = wait_until_idle(server_pid)
    return result


def merge_rounds(rounds: list[Figures]) -> Figures:
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
            {"ok_per_s": r["ok_per_s"], "cpu": r["cpu"], "placement": r["placement"]}
            for r in rounds
        ],
        "placement": {
            "mode": rounds[0]["placement"]["mode"],
            "placed": all(r["placement"].get("placed", True) for r in rounds),
        },
    }


def open_loop_summary(stream: openloop.Stream) -> Figures:
    """An open-loop stream's successes: how many, and their latency."""
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


class ArgonBound:
    """The Argon2 bound, sampled between the login runs (see docs/performance.md).

    The machine's speed drifts, so a login level is divided by the samples
    taken just before and after it, and the bound reported is their mean.
    """

    def __init__(self, password_hash: str, sample_seconds: float) -> None:
        self.password_hash = password_hash
        self.sample_seconds = sample_seconds
        self.samples: list[Figures] = []

    def sample(self) -> Figures:
        """One short measurement on every core, with no load running."""
        with CpuMeter(os.getpid()) as cpu:
            sample: Figures = argon2_bound.measure(
                self.password_hash, PASSWORD, self.sample_seconds, CORES
            )
        sample["other_cores"] = cpu.result["other_cores"]
        log(
            f"Argon2 bound sample: {sample['per_second']}/s "
            f"({sample['ms_per_verification_cpu']} ms CPU each)"
        )
        self.samples.append(sample)
        return sample

    def summary(self) -> Figures:
        """The bound reported and used for the flood: the mean of every sample."""
        samples = self.samples
        rates = [b["per_second"] for b in samples]
        verifications = sum(b["verifications"] for b in samples)
        return {
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
