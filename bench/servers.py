"""Start and stop the servers under test, and drive wrk against them."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
VENV_BIN = REPO / ".venv" / "bin"
PEER_BIN = BENCH / ".venv-peer" / "bin"
PEER_DIR = BENCH / "peers" / "drf"
CYCLE_LUA = BENCH / "lua" / "cycle.lua"
HOST = "127.0.0.1"

# Settings the benchmark decides itself; any other KEYHOUSE_* variable in the
# caller's environment (ARGON2_*, SERVER_THREADS, HASHING_*) passes through.
OWNED = {
    "KEYHOUSE_DATA_DIR",
    "KEYHOUSE_DATABASE_URL",
    "KEYHOUSE_REDIS_URL",
    "KEYHOUSE_CONFIG",
    "KEYHOUSE_EXTERNAL_HOST",
    "KEYHOUSE_RATE_LIMITING",
    "KEYHOUSE_RATE_LIMITING_AUTHENTICATE",
}


def inherited_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("KEYHOUSE_") and k not in OWNED}


def child_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in OWNED and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_ports(n: int) -> tuple[int, ...]:
    """``n`` different free ports: all bound at once, else the kernel may hand one out twice."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for sock in socks:
            sock.bind((HOST, 0))
        return tuple(int(sock.getsockname()[1]) for sock in socks)
    finally:
        for sock in socks:
            sock.close()


def run_json(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> Any:
    """Run a helper that prints JSON; its stderr goes to ours."""
    done = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, check=True, timeout=600)
    return json.loads(done.stdout)


# The HTTP servers the "serving" stage compares (keyhouse's SERVER values).
HTTP_SERVERS = ("gunicorn", "granian")


class Server:
    """A server's master process we started, in its own session so its workers go with it."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str],
        port: int,
        log: Path,
        ready_path: str,
        workers: int,
        cwd: Path | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        self.name, self.port, self.log, self.workers = name, port, log, workers
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(ready_path, ready_timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self, path: str, timeout: float = 60.0) -> None:
        from procstat import process_tree

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log}"
                )
            # Answering at all, and every worker forked.
            if get_status(self.port, path) and len(process_tree(self.pid)) > self.workers:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s; see {self.log}")

    def stop(self) -> None:
        """TERM the master (graceful), KILL the session if it lingers."""
        for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                if sig == signal.SIGTERM:
                    self.proc.send_signal(sig)
                else:
                    os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def get_status(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    """The status of one GET, or 0 if the server does not answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def keyhouse_server(
    data_dir: Path, port: int, workers: int, log: Path, server: str | None = None, **env: str
) -> Server:
    """`keyhouse serve`; under ``server`` if given, else as SERVER (KEYHOUSE_SERVER) says."""
    cmd = [
        str(VENV_BIN / "keyhouse"),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *(["--server", server] if server else []),
    ]
    return Server(
        f"keyhouse-{server}" if server else "keyhouse",
        cmd,
        child_env(KEYHOUSE_DATA_DIR=str(data_dir), **env),
        port,
        log,
        "/api/v1/server_settings",
        workers,
    )


def peer_server(
    data_dir: Path,
    port: int,
    workers: int,
    threads: int,
    log: Path,
    argon2_env: dict[str, str],
    server: str = "gunicorn",
    lean: bool = False,
) -> Server:
    """The DRF peer under the settings `keyhouse serve` gives the same server.

    gunicorn's as ops/gunicorn_server.py sets them, granian's as ops/granian_server.py
    does (both from ops/server_policy.py). ``lean``: the same app deployed lean
    (peer/settings_lean.py: CommonMiddleware only, persistent connections).
    """
    cmd = (
        _peer_granian(port, workers, threads)
        if server == "granian"
        else _peer_gunicorn(port, workers, threads)
    )
    env = child_env(
        PEER_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="peer.settings_lean" if lean else "peer.settings",
        **argon2_env,
    )
    name = "drf-peer" if server == "gunicorn" else f"drf-peer-{server}"
    if lean:
        name += "-lean"
    return Server(name, cmd, env, port, log, "/me", workers, cwd=PEER_DIR)


def peer_has(server: str) -> bool:
    """Whether bench/.venv-peer can run the peer under ``server`` (bench/setup.sh installs both)."""
    return (PEER_BIN / server).exists()


def _peer_gunicorn(port: int, workers: int, threads: int) -> list[str]:
    from keyhouse.ops.access_log import ACCESS_LOG_FORMAT
    from keyhouse.ops.server_policy import BACKLOG, GRACEFUL_TIMEOUT, KEEPALIVE, WORKER_TIMEOUT

    return [
        str(PEER_BIN / "gunicorn"),
        "peer.wsgi:application",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--timeout",
        str(WORKER_TIMEOUT),
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
        "--keep-alive",
        str(KEEPALIVE),
        "--backlog",
        str(BACKLOG),
        "--access-logfile",
        "-",
        "--access-logformat",
        ACCESS_LOG_FORMAT,
        "--no-control-socket",
        "--name",
        "drf-peer",
    ]


def _peer_granian(port: int, workers: int, threads: int) -> list[str]:
    """granian's CLI with what ops/granian_server.py passes `keyhouse serve`'s granian.

    The access log is granian's own line (keyhouse writes gunicorn's from its WSGI
    wrapper): both servers pay for one line per request.
    """
    from keyhouse.ops.server_policy import BACKLOG, GRACEFUL_TIMEOUT, KEEPALIVE

    return [
        str(PEER_BIN / "granian"),
        "--interface",
        "wsgi",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--http",
        "1",
        "--no-ws",
        "--backlog",
        str(BACKLOG),
        "--http1-header-read-timeout",
        str(KEEPALIVE * 1000),
        "--workers-kill-timeout",
        str(GRACEFUL_TIMEOUT),
        "--respawn-failed-workers",
        "--access-log",
        "peer.wsgi:application",
    ]


def write_requests(path: Path, rows: list[tuple[str, str, str, str, str]]) -> Path:
    """One request per line for lua/cycle.lua: METHOD PATH HEADER VALUE BODY, tab-separated."""
    for row in rows:
        assert not any(("\t" in f or "\n" in f) for f in row), row
    path.write_text("".join("\t".join(row) + "\n" for row in rows))
    return path


def wrk_start(
    port: int, requests: Path, connections: int, threads: int, seconds: int
) -> subprocess.Popen[str]:
    """A closed-loop wrk run, started; ``wrk_result`` waits for it and reads its figures."""
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(CYCLE_LUA),
        f"http://{HOST}:{port}",
        "--",
        str(requests),
        str(threads),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wrk_result(proc: subprocess.Popen[str], connections: int, seconds: int) -> dict[str, Any]:
    """Statuses and latency percentiles of a wrk run (lua/cycle.lua's BENCH_JSON line)."""
    try:
        stdout, stderr = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, stdout, stderr)
    line = next(x for x in stdout.splitlines() if x.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds_taken = raw["duration_us"] / 1e6
    ok = raw["statuses"].get("200", 0)
    return {
        "connections": connections,
        "seconds": round(seconds_taken, 2),
        "requests": raw["requests"],
        "ok": ok,
        "ok_per_s": round(ok / seconds_taken, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "statuses": raw["statuses"],
        "socket_errors": {k: v for k, v in raw["errors"].items() if k != "status" and v},
    }


def wrk(port: int, requests: Path, connections: int, threads: int, seconds: int) -> dict[str, Any]:
    """A closed-loop wrk run, however its connections land."""
    return wrk_result(
        wrk_start(port, requests, connections, threads, seconds), connections, seconds
    )
