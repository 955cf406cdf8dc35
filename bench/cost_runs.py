"""One `make bench-cost` run: keyhouse under callgrind, the requests, the profile parts read back.

The server is the probe's (bench/cost_probe.py: ``keyhouse serve`` with phase
markers), run as ``valgrind --tool=callgrind`` with one worker; the client is
this process, outside valgrind, on one keep-alive connection, so that every
request takes the same path through gunicorn (no new connection, no accept).
After each login it waits for the new-login email to be written, so that the
mail thread's work stays with the login that caused it.
"""

from __future__ import annotations

import http.client
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callgrind_files import Part, part_files, read_part
from config import FORM, CostConfig
from data import basic, login_body, snapshot_data_dir
from servers import BENCH, HOST, VENV_BIN, Server, child_env, free_port

VALGRIND = "/usr/bin/valgrind"
PROBE = BENCH / "cost_probe.py"
# Startup under callgrind takes 20-30 s on an idle machine, minutes on a loaded one.
READY_TIMEOUT = 600.0
# gunicorn closes a keep-alive connection idle for 2 s (its default, which
# `keyhouse serve` keeps): the wait for a mail must stay well under that.
MAIL_WAIT = 1.2
# Between two requests: time for the thread that answered to be idle again, so that
# gthread's pool hands the next one to an existing thread rather than starting one.
PAUSE = 0.03


@dataclass(frozen=True)
class Segment:
    """Instructions between two markers: on one thread (phases) or on all (totals)."""

    thread: str
    request: int
    label: str
    total: int
    inside: dict[str, int]


@dataclass
class Run:
    mode: str
    segments: list[Segment]
    threads: list[str]
    # Measured requests that were their thread's first of their kind (cost_probe.py): left out.
    first_use: list[int]
    reconnects: int
    wall_seconds: float
    notes: list[str] = field(default_factory=list)


def valgrind_cmd(mode: str, profiles: Path, port: int) -> list[str]:
    return [
        VALGRIND,
        "--tool=callgrind",
        # Any process the server execs is counted too (its own file, by pid).
        "--trace-children=yes",
        f"--separate-threads={'yes' if mode == 'phases' else 'no'}",
        "--dump-before=getsid",  # the probe's marker (cost_probe.py says why getsid)
        "--dump-line=no",  # per function is enough, and the files are smaller
        f"--callgrind-out-file={profiles}/callgrind.out.%p",
        str(VENV_BIN / "python"),
        str(PROBE),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def _server_env(data_dir: Path, probe: dict[str, Any]) -> dict[str, str]:
    env = child_env(
        KEYHOUSE_DATA_DIR=str(data_dir),
        # The same hash order in every run: dict and set layouts, hence instructions.
        PYTHONHASHSEED="0",
        BENCH_COST_PROBE=json.dumps(probe),
    )
    # The default mail path (a file under the data dir), whatever the caller's settings:
    # the client waits for that file, and SMTP would count a network conversation.
    for key in [k for k in env if k.startswith("KEYHOUSE_EMAIL_")]:
        del env[key]
    return env


class Client:
    """One keep-alive connection; every answer must be a 200."""

    def __init__(self, port: int, mail_dir: Path) -> None:
        self.port, self.mail_dir = port, mail_dir
        self.conn = http.client.HTTPConnection(HOST, port, timeout=READY_TIMEOUT)
        self.reconnects = 0

    def send(self, method: str, path: str, headers: dict[str, str], body: str = "") -> None:
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body or None, headers=headers)
                response = self.conn.getresponse()
                response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed the idle connection (a machine too slow for the
                # keep-alive timeout): this request pays for a new connection.
                if attempt == 2:
                    raise
                self.reconnects += 1
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=READY_TIMEOUT)
        if response.status != 200:
            raise RuntimeError(f"{method} {path} answered {response.status}")

    def mail_bytes(self) -> int:
        if not self.mail_dir.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.mail_dir.iterdir() if p.is_file())

    def login(self, username: str) -> None:
        before = self.mail_bytes()
        self.send("POST", "/api/v1/fetch_api_key", {"Content-Type": FORM}, login_body(username))
        deadline = time.monotonic() + MAIL_WAIT
        while self.mail_bytes() == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(PAUSE)  # also the delivery's last steps after the write

    def me(self, email: str, key: str) -> None:
        self.send("GET", "/api/v1/users/me", {"Authorization": basic(email, key)})
        time.sleep(PAUSE)

    def close(self) -> None:
        self.conn.close()


def run(mode: str, cfg: CostConfig, seeded: Path, seed: dict[str, Any], work: Path) -> Run:
    """Serve a fresh copy of the seeded data under callgrind, send the sequence, read the parts."""
    shutil.rmtree(work, ignore_errors=True)
    profiles, data_dir = work / "profiles", work / "keyhouse-data"
    profiles.mkdir(parents=True)
    snapshot_data_dir(seeded, data_dir)  # every run starts from the same database
    log_path = work / "markers.json"
    probe = {
        "mode": mode,
        "first": cfg.first_marked,
        "final": cfg.final,
        "collect_at": [cfg.login_window.start, cfg.me_window.start],
        "log": str(log_path),
    }
    port = free_port()
    started = time.monotonic()
    with Server(
        f"keyhouse-callgrind-{mode}",
        valgrind_cmd(mode, profiles, port),
        _server_env(data_dir, probe),
        port,
        work / "server.log",
        "/api/v1/server_settings",
        1,
        ready_timeout=READY_TIMEOUT,
    ):
        client = Client(port, data_dir / "emails")
        try:
            logins = seed["login"]
            for i in range(cfg.login_requests):
                client.login(logins[i % len(logins)])
            api = seed["api"]
            for i in range(cfg.me_requests):
                client.me(*api[i % len(api)])
        finally:
            client.close()
        deadline = time.monotonic() + 60
        while not log_path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    if not log_path.exists():
        raise RuntimeError(f"the probe wrote no marker log; see {work / 'server.log'}")
    record = json.loads(log_path.read_text())
    parts = part_files(profiles, int(record["pid"]))
    wanted = set(cfg.login_window) | set(cfg.me_window)
    reader = _phase_segments if mode == "phases" else _total_segments
    segments = reader(record["markers"], parts, wanted)
    if not cfg.keep_profiles:
        shutil.rmtree(profiles)
    return Run(
        mode=mode,
        segments=segments,
        threads=record["threads"],
        first_use=[r for r in record["first_use"] if r in wanted],
        reconnects=client.reconnects,
        wall_seconds=round(time.monotonic() - started, 1),
    )


def _wanted(request: int, label: str, wanted: set[int]) -> bool:
    return request in wanted or label.startswith("calibration")


def _segment(thread: str, request: int, label: str, part: Part) -> Segment:
    return Segment(thread, request, label, part.total, part.inside)


def _total_segments(
    markers: list[list[Any]], parts: dict[int, tuple[int | None, Path]], wanted: set[int]
) -> list[Segment]:
    """Totals: marker i (from 0) opens the stretch that part i + 2 holds, every thread in it."""
    out = []
    for i, (thread, request, label) in enumerate(markers[:-1]):
        if _wanted(request, label, wanted):
            out.append(_segment(thread, request, label, read_part(parts[i + 2][1])))
    return out


def _phase_segments(
    markers: list[list[Any]], parts: dict[int, tuple[int | None, Path]], wanted: set[int]
) -> list[Segment]:
    """Phases: a thread's stretch from its marker i to its next one j is part j + 1 (its own)."""
    last: dict[str, int] = {}
    tids: dict[str, int | None] = {}
    out = []
    for j, (thread, _, _) in enumerate(markers):
        tid = parts[j + 1][0]
        if tids.setdefault(thread, tid) != tid:
            raise RuntimeError(
                f"thread {thread} dumped as callgrind threads {tids[thread]} and {tid}"
            )
        i = last.get(thread)
        last[thread] = j
        if i is None:
            continue  # before its first marker: startup, not measured
        _, request, label = markers[i]
        if _wanted(request, label, wanted):
            out.append(_segment(thread, request, label, read_part(parts[j + 1][1])))
    if len(set(tids.values())) != len(tids):
        raise RuntimeError(f"two threads share a callgrind thread: {tids}")
    return out
