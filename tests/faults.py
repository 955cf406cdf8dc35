"""Throwaway Redis and PostgreSQL servers for fault tests: started, paused and killed here.

A fault test never touches the machine's shared services (127.0.0.1:6379 and
:5432): it gets its own ``redis-server`` or PostgreSQL cluster on a free loopback
port, in a temporary directory, and may stop, pause (SIGSTOP), resume or kill it.
Everything is torn down when the fixture ends, even if the test paused it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.process_state import wait_stopped


def _wait_port(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# --- Redis ----------------------------------------------------------------------


@dataclass
class ThrowawayRedis:
    """One ``redis-server`` of our own; ``persist`` keeps an RDB snapshot in ``dir``."""

    dir: Path
    persist: bool = False
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, on the same port and data) the server."""
        if not self.port:
            self.port = free_port()
        save = ["--save", "3600 1", "--dbfilename", "dump.rdb"] if self.persist else ["--save", ""]
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "no",
                *save,
                "--logfile",
                str(self.dir / "redis.log"),
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.paused = False
        if not _wait_port(self.port):
            raise RuntimeError(f"throwaway redis-server did not listen on {self.port}")

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        wait_stopped([self.proc.pid])
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def snapshot(self) -> None:
        """``SAVE``: what a restart will come back with."""
        import redis

        redis.Redis.from_url(self.url, socket_timeout=5).save()

    def kill(self) -> None:
        """kill -9: the data in memory since the last snapshot is gone."""
        if self.proc is not None and self.proc.poll() is None:
            if self.paused:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.paused = False

    def stop(self) -> None:
        self.kill()


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; run `make services`")
    server = ThrowawayRedis(dir=tmp_path / "redis")
    server.dir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- PostgreSQL -----------------------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries are not installed; run `make services`")
    return found[-1].parent


@dataclass
class ThrowawayPostgres:
    """A private cluster (initdb, trust auth) on its own loopback port, run as ``postgres``."""

    dir: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/keyhouse"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(_pg_bin() / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def init(self) -> None:
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8")  # fmt: skip
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "keyhouse")  # fmt: skip

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run("pg_ctl", "-D", str(self.dir / "data"), *args, check=check)

    def start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.dir} -c fsync=off"
        )
        self.pg_ctl("-l", str(self.dir / "server.log"), "-w", "-t", "60", "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        self.resume()
        self.pg_ctl("-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        """Stop then start: ``pg_ctl restart`` would hand its output pipes to the server."""
        self.pg_ctl("-m", mode, "-w", "stop", check=True)
        self.start()

    def _pids(self) -> list[int]:
        """The postmaster and every backend: pausing the postmaster alone is not a hang."""
        pid_file = self.dir / "data" / "postmaster.pid"
        try:
            master = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        children = subprocess.run(
            ["pgrep", "-P", str(master)], capture_output=True, text=True
        ).stdout.split()
        return [master, *(int(c) for c in children)]

    def pause(self) -> None:
        pids = self._pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        wait_stopped(pids)

    def resume(self) -> None:
        for pid in self._pids():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


@contextmanager
def postgres_cluster() -> Iterator[ThrowawayPostgres]:
    """In a fresh 0700 directory under /tmp that the ``postgres`` user owns (pytest's
    tmp_path sits below root's 0700 directory, which ``postgres`` cannot enter)."""
    base = Path(tempfile.mkdtemp(prefix="keyhouse-pg-"))
    cluster = ThrowawayPostgres(dir=base)
    try:
        cluster.init()
        yield cluster
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    with postgres_cluster() as cluster:
        yield cluster
