"""The physical limit for logins: Argon2id verifications per second on every core.

One process per core, each verifying the same hash (made by keyhouse's hasher at
the configured parameters) in a loop with argon2-cffi, all started together and
stopped at one deadline. Nothing else of the benchmark runs meanwhile.
"""

from __future__ import annotations

import multiprocessing as mp
import time


def _worker(encoded: str, password: str, start: float, seconds: float, out: mp.Queue) -> None:
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    while time.time() < start:
        time.sleep(0.001)
    deadline = start + seconds
    done = 0
    cpu0 = time.process_time()
    while True:
        hasher.verify(encoded, password)
        done += 1
        now = time.time()
        if now >= deadline:
            break
    out.put((done, now - start, time.process_time() - cpu0))


def measure(django_hash: str, password: str, seconds: float, processes: int) -> dict[str, float]:
    """Verifications per second over ``processes`` processes for about ``seconds`` seconds."""
    algorithm, encoded = django_hash.split("$", 1)
    assert algorithm == "argon2", f"not an Argon2 hash: {algorithm}"
    encoded = "$" + encoded  # Django prefixes argon2-cffi's own encoding with "argon2"
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()
    start = time.time() + 0.5  # every process is up before the clock starts
    procs = [
        ctx.Process(target=_worker, args=(encoded, password, start, seconds, out))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    rate = sum(done / elapsed for done, elapsed, _ in results)
    verifications = sum(done for done, _, _ in results)
    cpu = sum(c for _, _, c in results)
    return {
        "processes": processes,
        "verifications": verifications,
        "per_second": round(rate, 1),
        "ms_per_verification_cpu": round(1000 * cpu / max(1, verifications), 2),
        "ms_per_verification_wall": round(1000 * processes / rate, 2) if rate else 0.0,
    }
