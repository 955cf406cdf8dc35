"""Where a request's time goes, in one process, straight through keyhouse's WSGI app.

Not part of `make bench` (it prints profiles, not figures). Run it after a bench
run, against the data dir that run left (it needs the benchmark's users):

    KEYHOUSE_DATA_DIR=bench/out/keyhouse-data .venv/bin/python bench/profile_paths.py \
        [--mode ab|profile] [--path me|login|refused|all] [--requests 400] [--top 30]

--mode ab (default): CPU and wall time per request for variants applied in this
    process only (src/ unchanged), in interleaved batches so that a busy machine
    hurts every variant alike. CPU time is the figure to trust on a shared machine.
--mode profile: cProfile's top functions for the shipped configuration.

No gunicorn and no socket: this is Django + keyhouse only. Users/me requests are
spread over the benchmark's API users (none reaches api_by_user); login requests
use one benchmark login user, whose successes clear its per-username limit.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import logging
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyhouse.settings")
PASSWORD = "bench-Argon2id-horse-battery-7"  # as bench/run.py


def environ(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "9991",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:9991",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)),
    }
    for k, v in headers.items():
        key = k.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = v
    return env


def basic(email: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{key}".encode()).decode()


def caller(
    app: Callable[..., Any],
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    expect: int = 200,
) -> Callable[[], int]:
    def call() -> int:
        status: list[str] = []
        chunks = app(environ(method, path, headers, body), lambda s, h, *a: status.append(s))
        b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        code = int(status[0].split()[0])
        assert code == expect, code
        return code

    return call


# Built-in calls that are not Python overhead: the hash, and SQLite's C code.
BUCKETS = {
    "argon2": ("argon2_verify", "argon2_hash"),
    "sqlite connect+close": ("_sqlite3.connect", "'close' of 'sqlite3.Connection'"),
    "sqlite commit": ("'commit' of 'sqlite3.Connection'",),
    "sqlite execute": ("'execute' of 'sqlite3", "SQLiteCursorWrapper.execute"),
}


def breakdown(prof: cProfile.Profile, n: int) -> dict[str, float]:
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in stats.values())
    out = {name: 0.0 for name in BUCKETS}
    for (_, _, func), (_, _, tt, _, _) in stats.items():
        for name, needles in BUCKETS.items():
            if any(needle in func for needle in needles):
                out[name] += tt
                break
    out["python (everything else)"] = total - sum(out.values())
    return {k: round(1000 * v / n, 2) for k, v in out.items()}


def profile(name: str, call: Callable[[], int], n: int, top: int) -> None:
    for _ in range(5):  # warm: imports, URL resolver, first connection
        call()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        call()
    prof.disable()
    print(f"\n=== {name}: {n} requests under cProfile ===")
    print("seconds per request by kind (inflated by cProfile for Python code):")
    print("   ", breakdown(prof, n))
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        text = out.getvalue()
        print(text[text.index("   ncalls") :])


Variant = Callable[[], None]


def ab(
    name: str, call: Callable[[], int], variants: dict[str, Variant], n: int, rounds: int = 5
) -> None:
    """Median CPU and wall ms per request of each variant, batches interleaved."""
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    wall: dict[str, list[float]] = {v: [] for v in variants}
    batch = max(1, n // rounds)
    for apply in variants.values():  # warm each variant once
        apply()
        for _ in range(3):
            call()
    for _ in range(rounds):
        for v, apply in variants.items():
            apply()
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(batch):
                call()
            cpu[v].append((time.process_time() - c0) / batch * 1000)
            wall[v].append((time.perf_counter() - w0) / batch * 1000)
    print(f"\n=== {name}: median of {rounds} interleaved batches of {batch} ===")
    print(f"{'variant':<44} {'CPU ms':>8} {'wall ms':>8}")
    for v in variants:
        print(f"{v:<44} {statistics.median(cpu[v]):8.2f} {statistics.median(wall[v]):8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["ab", "profile"], default="ab")
    parser.add_argument("--path", choices=["me", "login", "refused", "all"], default="all")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    import django
    from django.conf import settings

    django.setup()
    from django.db import connections

    from keyhouse.users.models import User
    from keyhouse.wsgi import application

    emails = settings.SEND_LOGIN_EMAILS

    def variant(conn_max_age: int, limits: bool, login_emails: bool = emails) -> Variant:
        def apply() -> None:
            connections.close_all()  # the next request connects under the new setting
            connections["default"].settings_dict["CONN_MAX_AGE"] = conn_max_age
            settings.RATE_LIMITING = limits
            settings.SEND_LOGIN_EMAILS = login_emails

        return apply

    variants = {
        "as shipped (new connection per request)": variant(0, True),
        "persistent connections (CONN_MAX_AGE=600)": variant(600, True),
        "rate limits off": variant(0, False),
        "persistent connections + rate limits off": variant(600, False),
        "persistent + limits off + no login email": variant(600, False, False),
    }

    if args.path in ("me", "all"):
        users = User.objects.filter(delivery_email__startswith="api").order_by("-id")
        calls = [
            caller(application, "GET", "/api/v1/users/me", {"Authorization": basic(e, k)})
            for e, k in users.values_list("delivery_email", "api_key")[:1000]
        ]
        turn = iter(range(10**9))

        def me() -> int:
            return calls[next(turn) % len(calls)]()

        if args.mode == "profile":
            variant(0, True)()
            profile("GET /api/v1/users/me", me, args.requests, args.top)
        else:
            ab("GET /api/v1/users/me", me, variants, args.requests)
    if args.path in ("login", "all"):
        body = urlencode({"username": "login0@bench.example", "password": PASSWORD}).encode()
        login = caller(
            application,
            "POST",
            "/api/v1/fetch_api_key",
            {"Content-Type": "application/x-www-form-urlencoded"},
            body,
        )
        n = max(20, args.requests // 10)
        if args.mode == "profile":
            variant(0, True)()
            profile("POST /api/v1/fetch_api_key", login, n, args.top)
        else:
            ab("POST /api/v1/fetch_api_key", login, variants, n)
            argon2_alone(n)
    if args.path in ("refused", "all"):
        # The hashing pool full and no room to wait: every login is a fast 503, as in a
        # flood. This process holds every slot itself.
        from keyhouse.auth.hashing_gate import get_gate

        settings.HASHING_MAX_WAITERS = 0
        settings.RATE_LIMITING_AUTHENTICATE = False  # as in the overload test
        gate = get_gate()
        for _ in range(gate.slots):
            gate.budget.try_acquire()
        body = urlencode({"username": "login1@bench.example", "password": PASSWORD}).encode()
        refused = caller(
            application,
            "POST",
            "/api/v1/fetch_api_key",
            {"Content-Type": "application/x-www-form-urlencoded"},
            body,
            expect=503,
        )
        logging.getLogger("django.request").setLevel(logging.CRITICAL)  # one line per 503
        if args.mode == "profile":
            variant(0, True)()
            profile("POST /api/v1/fetch_api_key refused with 503", refused, args.requests, args.top)
        else:
            ab("POST /api/v1/fetch_api_key refused with 503", refused, variants, args.requests)


def argon2_alone(n: int) -> None:
    """The hash alone, as the bound measures it: what a login costs at the least."""
    from django.contrib.auth.hashers import check_password, make_password

    encoded = make_password(PASSWORD)
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        check_password(PASSWORD, encoded)
    print(
        f"{'Argon2 verification alone':<44} {(time.process_time() - c0) / n * 1000:8.2f} "
        f"{(time.perf_counter() - w0) / n * 1000:8.2f}"
    )


if __name__ == "__main__":
    main()
