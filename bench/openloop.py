"""An open-loop HTTP/1.1 load generator on asyncio streams, for the overload test.

Requests are fired on a fixed schedule whatever the server does (a flood does not
slow down because the server is slow), with a cap on requests in flight; latency
counts from the scheduled time, so a client that falls behind does not hide the
server's queueing (no coordinated omission). A few dozen lines of raw HTTP keep
the client's own CPU low on a 2-core machine shared with the server; wrk has no
fixed-rate mode and wrk2 is not packaged in Debian.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

DRAIN_SECONDS = 30.0


@dataclass
class Outcome:
    status: int  # 0: no HTTP answer (connection error)
    latency: float  # seconds from the scheduled send time


@dataclass
class Stream:
    """One schedule of requests: ``rate`` per second, cycling through ``requests``."""

    name: str
    requests: Sequence[bytes]
    rate: float
    max_in_flight: int
    outcomes: list[Outcome] = field(default_factory=list)
    dropped: int = 0  # not sent: the in-flight cap was reached
    scheduled: int = 0

    @property
    def unanswered(self) -> int:
        """Sent, but neither answered nor failed within the drain time."""
        return self.scheduled - self.dropped - len(self.outcomes)


class ConnectionPool:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, raw: bytes) -> int:
        """Send ``raw``; return the status. Retries once on a fresh connection if an
        idle keep-alive connection turns out to be closed (gunicorn's keepalive)."""
        for attempt in range(2):
            reused = bool(self._idle)
            reader, writer = (
                self._idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
            )
            try:
                writer.write(raw)
                await writer.drain()
                status, keep = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError, EOFError):
                writer.close()
                if reused and attempt == 0:
                    continue
                raise
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return status
        raise ConnectionError("unreachable")

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    line = await reader.readline()
    if not line:
        raise EOFError
    parts = line.split(None, 2)
    status = int(parts[1])
    length, keep = 0, parts[0] == b"HTTP/1.1"
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep = value.strip().lower() != b"close"
    if length:
        await reader.readexactly(length)
    return status, keep


async def _run_stream(pool: ConnectionPool, stream: Stream, start: float, duration: float) -> None:
    in_flight: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def one(raw: bytes, scheduled: float) -> None:
        try:
            status = await pool.request(raw)
        except (OSError, EOFError, asyncio.IncompleteReadError, ValueError):
            status = 0
        stream.outcomes.append(Outcome(status, loop.time() - scheduled))

    total = int(stream.rate * duration)
    for i in range(total):
        scheduled = start + i / stream.rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        stream.scheduled += 1
        if len(in_flight) >= stream.max_in_flight:
            stream.dropped += 1
            continue
        task = asyncio.create_task(one(stream.requests[i % len(stream.requests)], scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        # Let the last requests finish, within bounds; any still out are "unanswered".
        await asyncio.wait(in_flight, timeout=DRAIN_SECONDS)
        for task in in_flight:
            task.cancel()


async def _run(host: str, port: int, streams: Sequence[Stream], duration: float) -> None:
    pools = [ConnectionPool(host, port) for _ in streams]
    start = asyncio.get_running_loop().time() + 0.05
    try:
        await asyncio.gather(
            *(_run_stream(p, s, start, duration) for p, s in zip(pools, streams, strict=True))
        )
    finally:
        for pool in pools:
            pool.close()


def run(host: str, port: int, streams: Sequence[Stream], duration: float) -> float:
    """Run the streams side by side for ``duration`` seconds; return the wall time taken."""
    started = time.monotonic()
    asyncio.run(_run(host, port, streams, duration))
    return time.monotonic() - started


def raw_request(
    method: str, path: str, host: str, headers: dict[str, str] | None = None, body: str = ""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
