"""A small, cheap HTTP/1.1 load generator for loopback benchmarks.

The benchmark machine has two cores shared by the server under test, the SDK
endpoint and this generator, so the generator must cost as little CPU as
possible: one keep-alive connection per worker, requests prebuilt as bytes, a
minimal response parser (status line, content-length / chunked) on an asyncio
Protocol. Every run is bounded by a request count and a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RequestFactory = Callable[[int], bytes]


def build_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _ClientProtocol(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = exc or ConnectionError("connection closed")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._lost)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._try_complete()

    def request(self, raw: bytes) -> asyncio.Future[tuple[int, bytes]]:
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        if self._lost is not None:
            self._waiter.set_exception(self._lost)
        else:
            assert self.transport is not None
            self.transport.write(raw)
        return self._waiter

    def _try_complete(self) -> None:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0 or self._waiter is None:
            return
        head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        length = 0
        chunked = False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        start = end + 4
        if chunked:
            body = _dechunk(buffer, start)
            if body is None:
                return
            payload, consumed = body
            del buffer[:consumed]
        else:
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
        waiter, self._waiter = self._waiter, None
        if not waiter.done():
            waiter.set_result((status, payload))


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    pos = start
    out = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buffer[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            if len(buffer) < pos + 2:
                return None
            return bytes(out), pos + 2
        if len(buffer) < pos + size + 2:
            return None
        out += buffer[pos : pos + size]
        pos += size + 2


@dataclass
class RunResult:
    requests: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[index]


async def run_closed_loop(
    host: str,
    port: int,
    make_request: RequestFactory,
    *,
    concurrency: int,
    total: int,
    deadline_s: float,
    ok_statuses: tuple[int, ...] = (200, 202),
    collect_bodies: bool = False,
) -> RunResult:
    """``concurrency`` workers send ``total`` requests in all (or stop at the deadline)."""
    loop = asyncio.get_running_loop()
    result = RunResult()
    counter = iter(range(total))
    stop_at = time.monotonic() + deadline_s

    async def worker() -> None:
        _, protocol = await loop.create_connection(_ClientProtocol, host, port)
        try:
            for index in counter:
                if time.monotonic() > stop_at:
                    break
                raw = make_request(index)
                started = time.perf_counter()
                try:
                    status, payload = await asyncio.wait_for(
                        protocol.request(raw), max(0.1, stop_at - time.monotonic())
                    )
                except (TimeoutError, OSError, ConnectionError):
                    result.errors += 1
                    protocol.transport.close()  # type: ignore[union-attr]
                    _, protocol = await loop.create_connection(_ClientProtocol, host, port)
                    continue
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status in ok_statuses:
                    result.requests += 1
                    if collect_bodies:
                        result.bodies.append(payload)
                else:
                    result.errors += 1
        finally:
            if protocol.transport is not None:
                protocol.transport.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - began
    return result
