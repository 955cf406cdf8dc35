"""Measuring: one load against one server, and the figures collected from it.

Nothing here knows which endpoint or server it measures: the scenarios
(scenarios.py) say what to run, and the figures come back as the plain dicts
that go into results.json unchanged.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import argon2_bound
import openloop
from config import CORES, PASSWORD
from procstat import CpuMeter, MemorySampler, wait_until_idle
from servers import wrk

# One run's (or one merged figure's) figures, as they appear in results.json.
Figures = dict[str, Any]

# Closed-loop runs repeated when one gunicorn worker got no connections (closed_loop).
RERUNS_IF_IDLE_WORKER = 2


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


def worker_idled(result: Figures, conns: int) -> bool:
    """A worker used under a fifth of the workers' mean CPU, with connections enough for all."""
    workers = result["cpu"]["per_process_cores"][1:]
    if len(workers) < 2 or conns < 2 * len(workers):
        return False
    return bool(min(workers) < 0.2 * (sum(workers) / len(workers)))


def closed_loop(
    server_pid: int, port: int, reqs: Path, conns: int, threads: int, seconds: int
) -> Figures:
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
            result = wrk(port, reqs, conns, threads, seconds)
        result["cpu"] = cpu.result
        result["settle_seconds"] = wait_until_idle(server_pid)
        attempts.append({"ok_per_s": result["ok_per_s"], "cpu": cpu.result})
        if not worker_idled(result, conns):
            break
        log(f"a worker idled ({cpu.result['per_process_cores']}); running again")
    result["attempts"] = attempts
    result["worker_idled"] = worker_idled(result, conns)
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
