"""A fault-injecting TCP proxy between the server and an SDK endpoint, loopback only.

    proxy = FaultProxy(endpoint.port).start()     # its own thread and event loop
    srv.register(proxy.url)                       # the server reaches the endpoint through it
    proxy.set_fault(Fault.RESET_ON_ACCEPT)        # ... the server retries ...
    proxy.clear()                                 # the endpoint is reachable again
    proxy.stop()

Faults (``Fault``): TCP resets on accept or in the middle of a response, stalled responses
(a black hole: the request reaches the endpoint, nothing comes back, or nothing more once
a response has its head), truncated frames (the response cut inside an HTTP/2 frame, then
a clean close), trickled bytes (both ways), a closed listening port (connections refused),
and two HTTP/2-aware modes in which the proxy is the endpoint and answers every new stream
with RST_STREAM: REFUSED_STREAM (0x7), or INTERNAL_ERROR (0x2) to compare with.

Setting a fault first resets the connections open at that moment (the server pools them;
the fault must meet the next attempt, not a connection made before it). Clearing it keeps
them, except those on which the proxy played the endpoint: it says GOAWAY and closes them,
as an endpoint that comes back would. A stalled connection stays stalled after
``clear()`` (a peer that vanished does not come back on the same connection).

The proxy reads the HTTP/2 frames it relays from the server (hpack-decoding the request
headers) to record every request stream it sees: when, its ``:path`` and
``x-restate-service-key``, and the fault it met. Those are the attempts, counted where
the endpoint would see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import hpack

from restate_server.http2.frames import (
    CONTINUATION,
    DATA,
    ERROR_INTERNAL,
    ERROR_NO_ERROR,
    ERROR_REFUSED_STREAM,
    FLAG_ACK,
    FLAG_END_HEADERS,
    FLAG_PADDED,
    FLAG_PRIORITY,
    GOAWAY,
    HEADERS,
    PING,
    PREFACE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
)
from tests.support.ports import LOOPBACK, free_port

T = TypeVar("T")


_HEADER = struct.Struct(">BHBBI")  # length as u8 + u16, type, flags, stream id
_U32 = struct.Struct(">I")
_READ_SIZE = 65_536
_CALL_TIMEOUT_S = 5.0


class Fault(enum.Enum):
    RESET_ON_ACCEPT = "reset-on-accept"  # accept, then RST (SO_LINGER 0)
    RESET_MID_STREAM = "reset-mid-stream"  # RST once a response has its head, not its body
    STALL = "stall"  # requests reach the endpoint, answers are dropped (from the first byte)
    STALL_MID_STREAM = "stall-mid-stream"  # answers dropped from a response's first DATA on
    TRUNCATE = "truncate"  # a response DATA frame cut in half, then a clean close
    TRICKLE = "trickle"  # every byte passes, a few at a time
    REFUSE_CONNECTIONS = "refuse-connections"  # nothing listens on the port
    REFUSE_STREAMS = "refuse-streams"  # HTTP/2 endpoint: RST_STREAM(REFUSED_STREAM)
    RESET_STREAMS = "reset-streams"  # HTTP/2 endpoint: RST_STREAM(INTERNAL_ERROR)


# where the proxy answers as the HTTP/2 endpoint, with this RST_STREAM error code
_STREAM_ERRORS = {Fault.REFUSE_STREAMS: ERROR_REFUSED_STREAM, Fault.RESET_STREAMS: ERROR_INTERNAL}


@dataclass(frozen=True)
class StreamSeen:
    """A request stream (an attempt, for ``/invoke/...``) as it passed the proxy."""

    at: float  # time.monotonic()
    path: str
    key: str | None  # x-restate-service-key, as sent (percent-encoded)
    fault: Fault | None  # the fault active when it arrived


def frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    length = len(payload)
    return _HEADER.pack(length >> 16, length & 0xFFFF, frame_type, flags, stream_id) + payload


@dataclass
class _Frame:
    type: int
    flags: int
    stream_id: int
    payload: bytes
    raw: bytes


class _FrameSplitter:
    """One direction of an HTTP/2 connection, split into whole frames (and the preface)."""

    def __init__(self, expect_preface: bool) -> None:
        self._buffer = bytearray()
        self._preface_left = len(PREFACE) if expect_preface else 0

    def feed(self, data: bytes) -> list[_Frame]:
        buffer = self._buffer
        buffer += data
        frames: list[_Frame] = []
        if self._preface_left:
            if len(buffer) < self._preface_left:
                return frames
            raw = bytes(buffer[: self._preface_left])
            del buffer[: self._preface_left]
            self._preface_left = 0
            frames.append(_Frame(-1, 0, 0, b"", raw))
        pos = 0
        while len(buffer) - pos >= 9:
            high, low, frame_type, flags, stream_id = _HEADER.unpack_from(buffer, pos)
            end = pos + 9 + ((high << 16) | low)
            if end > len(buffer):
                break
            raw = bytes(buffer[pos:end])
            frames.append(_Frame(frame_type, flags, stream_id & 0x7FFFFFFF, raw[9:], raw))
            pos = end
        del buffer[:pos]
        return frames


class _RequestHeaders:
    """Decodes the request header blocks of one connection (the hpack state is shared)."""

    def __init__(self) -> None:
        self._decoder = hpack.Decoder()
        self._open: tuple[int, bytearray] | None = None  # a block waiting for CONTINUATION

    def on_frame(self, f: _Frame) -> tuple[int, dict[str, str]] | None:
        """(stream id, headers) once a request's header block is complete."""
        if f.type == HEADERS:
            payload = f.payload
            start, end = 0, len(payload)
            if f.flags & FLAG_PADDED:
                start, end = 1, end - payload[0]
            if f.flags & FLAG_PRIORITY:
                start += 5
            self._open = (f.stream_id, bytearray(payload[start:end]))
        elif f.type == CONTINUATION and self._open is not None:
            self._open[1].extend(f.payload)
        else:
            return None
        if not f.flags & FLAG_END_HEADERS or self._open is None:
            return None
        stream_id, block = self._open
        self._open = None
        fields = self._decoder.decode(bytes(block), raw=False)
        return stream_id, {str(name): str(value) for name, value in fields}


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close with a TCP RST (SO_LINGER 0) rather than a FIN."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Connection:
    """One accepted connection: the server's side, and the endpoint's when relayed."""

    def __init__(self, client: asyncio.StreamWriter, fault: Fault | None) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.fault = fault  # the fault at accept
        self.tasks: list[asyncio.Task[None]] = []
        self.stalled = fault is Fault.STALL  # whatever the endpoint sends is dropped
        self.last_stream_id = 0  # where the proxy plays the endpoint

    def reset(self) -> None:
        _reset(self.client)
        _reset(self.upstream)
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """Loopback TCP proxy to ``upstream_port``, with faults switched on and off at will.

    Runs its own event loop in a daemon thread; every method is called from the test's
    thread. Counters: ``faults`` (faults injected, by kind), ``connections`` (accepted, by
    the fault active then, ``"none"`` without), ``streams()`` (request streams seen).
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        port: int | None = None,
        trickle_bytes: int = 16,
        trickle_interval_s: float = 0.005,
    ) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.trickle_bytes = trickle_bytes
        self.trickle_interval_s = trickle_interval_s
        self.faults: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()
        self._accepted: list[tuple[float, Fault | None]] = []
        self.trickled_bytes = 0
        self._streams: list[StreamSeen] = []
        self.errors: list[str] = []  # the proxy's own failures (bugs), for the test to check
        self._lock = threading.Lock()  # counters are written by the loop, read by tests
        self._fault: Fault | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._live: set[_Connection] = set()
        self._handlers: set[asyncio.Task[Any]] = set()  # one per accepted connection
        self._refused_since: float | None = None
        self.refused_s = 0.0  # how long the port was closed, in total

    # ---- from the test's thread

    @property
    def url(self) -> str:
        """The deployment URI to register instead of the endpoint's."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def fault(self) -> Fault | None:
        return self._fault

    def start(self) -> FaultProxy:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_CALL_TIMEOUT_S)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def set_fault(self, fault: Fault | None) -> None:
        """Switch to ``fault`` (``None``: relay faithfully)."""
        self._call(self._switch(fault))

    def clear(self) -> None:
        self.set_fault(None)

    def streams(
        self, path_prefix: str = "/invoke/", key: str | None = None, since: float = 0.0
    ) -> list[StreamSeen]:
        """Request streams seen so far (attempts, with the default prefix)."""
        with self._lock:
            return [
                s
                for s in self._streams
                if s.path.startswith(path_prefix)
                and (key is None or s.key == key)
                and s.at >= since
            ]

    def accepted(self, fault: Fault | None, since: float = 0.0) -> list[float]:
        """When connections were accepted while ``fault`` was active (time.monotonic())."""
        with self._lock:
            return [at for at, seen in self._accepted if seen is fault and at >= since]

    def snapshot(self) -> dict[str, Any]:
        """The counters, copied (for reports)."""
        with self._lock:
            return {
                "faults": dict(self.faults),
                "connections": dict(self.connections),
                "streams": len(self._streams),
                "trickled_bytes": self.trickled_bytes,
                "refused_s": round(self.refused_s, 2),
            }

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "the proxy is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CALL_TIMEOUT_S)

    def _count(self, kind: Fault, n: int = 1) -> None:
        with self._lock:
            self.faults[kind.value] += n

    # ---- on the proxy's loop

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, LOOPBACK, self.port, reuse_address=True
        )

    async def _switch(self, fault: Fault | None) -> None:
        previous, self._fault = self._fault, fault
        if fault is not None:
            for conn in list(self._live):
                conn.reset()  # the fault must meet the next attempt, not an old connection
        elif previous in _STREAM_ERRORS:
            for conn in [c for c in self._live if c.fault in _STREAM_ERRORS]:
                self._goaway(conn)
        if fault is Fault.REFUSE_CONNECTIONS and self._server is not None:
            self._server.close()
            self._server = None
            self._refused_since = time.monotonic()
            self._count(fault)
        elif fault is not Fault.REFUSE_CONNECTIONS and self._server is None:
            await self._listen()
            if self._refused_since is not None:
                with self._lock:
                    self.refused_s += time.monotonic() - self._refused_since
                self._refused_since = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._live):
            conn.reset()
        # the resets end every connection's handler: let them finish before the loop
        # closes (cancelling them instead would make asyncio's streams log each one)
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=_CALL_TIMEOUT_S / 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fault = self._fault
        conn = _Connection(writer, fault)
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        with self._lock:
            self.connections[fault.value if fault else "none"] += 1
            self._accepted.append((time.monotonic(), fault))
        if fault is Fault.RESET_ON_ACCEPT:
            self._count(fault)
            _reset(writer)
            return
        self._live.add(conn)
        try:
            if fault in _STREAM_ERRORS:
                await self._answer_streams(conn, reader, _STREAM_ERRORS[fault])
            else:
                await self._relay(conn, reader)
        except OSError:
            pass  # a reset from either side ends the connection, nothing more
        except Exception as exc:  # a bug in the proxy: the test reports it
            with self._lock:
                self.errors.append(repr(exc))
        finally:
            self._live.discard(conn)
            conn.reset()

    # ---- relaying (every fault but the HTTP/2 endpoint ones)

    async def _relay(self, conn: _Connection, client: asyncio.StreamReader) -> None:
        try:
            upstream, conn.upstream = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        except OSError:
            return  # the endpoint is down: the server sees a reset, as from a dead host
        if conn.stalled:
            self._count(Fault.STALL)
        invoke_streams: set[int] = set()
        to_upstream = asyncio.ensure_future(self._client_to_upstream(conn, client, invoke_streams))
        to_client = asyncio.ensure_future(self._upstream_to_client(conn, upstream, invoke_streams))
        conn.tasks = [to_upstream, to_client]
        # either direction ending (EOF, a reset, a fault) ends the connection
        await asyncio.wait(conn.tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in conn.tasks:
            task.cancel()
        for task in conn.tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task

    async def _client_to_upstream(
        self, conn: _Connection, client: asyncio.StreamReader, invoke_streams: set[int]
    ) -> None:
        assert conn.upstream is not None
        splitter = _FrameSplitter(expect_preface=True)
        headers = _RequestHeaders()
        while data := await client.read(_READ_SIZE):
            for f in splitter.feed(data):
                seen = headers.on_frame(f)
                if seen is not None:
                    stream_id, fields = seen
                    path = self._record(stream_id, fields)
                    if path.startswith("/invoke/"):
                        invoke_streams.add(stream_id)
            await self._write(conn.upstream, data)
        conn.upstream.write_eof()

    async def _upstream_to_client(
        self, conn: _Connection, upstream: asyncio.StreamReader, invoke_streams: set[int]
    ) -> None:
        splitter = _FrameSplitter(expect_preface=False)
        while data := await upstream.read(_READ_SIZE):
            if conn.stalled:
                continue  # the black hole: read and dropped
            out = bytearray()
            for f in splitter.feed(data):
                cut = f.type == DATA and f.stream_id in invoke_streams and len(f.payload) > 1
                if cut and self._fault is Fault.STALL_MID_STREAM:
                    # the response head went through; from its body on, nothing does
                    conn.stalled = True
                    self._count(Fault.STALL_MID_STREAM)
                    break
                if cut and self._fault is Fault.RESET_MID_STREAM:
                    # the response head went through, its body does not: RST both ways
                    await self._write(conn.client, bytes(out))
                    self._count(Fault.RESET_MID_STREAM)
                    conn.reset()
                    return
                if cut and self._fault is Fault.TRUNCATE:
                    out += f.raw[: 9 + len(f.payload) // 2]
                    await self._write(conn.client, bytes(out))
                    self._count(Fault.TRUNCATE)
                    # a clean close right after half a frame
                    conn.client.close()
                    _reset(conn.upstream)
                    return
                out += f.raw
            if out:
                await self._write(conn.client, bytes(out))
        conn.client.write_eof()

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if self._fault is not Fault.TRICKLE or not data:
            writer.write(data)
            await writer.drain()
            return
        step = self.trickle_bytes
        for offset in range(0, len(data), step):
            writer.write(data[offset : offset + step])
            await writer.drain()
            with self._lock:
                self.faults[Fault.TRICKLE.value] += 1
                self.trickled_bytes += min(step, len(data) - offset)
            await asyncio.sleep(self.trickle_interval_s)

    def _record(self, stream_id: int, fields: dict[str, str]) -> str:
        path = fields.get(":path", "")
        seen = StreamSeen(time.monotonic(), path, fields.get("x-restate-service-key"), self._fault)
        with self._lock:
            self._streams.append(seen)
        return path

    # ---- the HTTP/2 endpoint that answers every stream with RST_STREAM

    async def _answer_streams(
        self, conn: _Connection, reader: asyncio.StreamReader, error_code: int
    ) -> None:
        writer = conn.client
        writer.write(frame(SETTINGS, 0, 0))  # a server speaks first with its SETTINGS
        splitter = _FrameSplitter(expect_preface=True)
        headers = _RequestHeaders()
        kind = Fault.REFUSE_STREAMS if error_code == ERROR_REFUSED_STREAM else Fault.RESET_STREAMS
        while data := await reader.read(_READ_SIZE):
            out = bytearray()
            for f in splitter.feed(data):
                seen = headers.on_frame(f)
                if seen is not None:
                    stream_id, fields = seen
                    self._record(stream_id, fields)
                    conn.last_stream_id = max(conn.last_stream_id, stream_id)
                    out += frame(RST_STREAM, 0, stream_id, _U32.pack(error_code))
                    self._count(kind)
                elif f.type == SETTINGS and not f.flags & FLAG_ACK:
                    out += frame(SETTINGS, FLAG_ACK, 0)
                elif f.type == PING and not f.flags & FLAG_ACK:
                    out += frame(PING, FLAG_ACK, 0, f.payload)
                elif f.type == DATA and f.payload:
                    # give the connection window back, or the client stalls after 64 KiB
                    out += frame(WINDOW_UPDATE, 0, 0, _U32.pack(len(f.payload)))
                elif f.type == GOAWAY:
                    return
            if out:
                writer.write(bytes(out))
                await writer.drain()

    def _goaway(self, conn: _Connection) -> None:
        """As an endpoint going away: no stream above the last one will be processed."""
        if conn.client.transport.is_closing():
            return
        payload = _U32.pack(conn.last_stream_id) + _U32.pack(ERROR_NO_ERROR)
        conn.client.write(frame(GOAWAY, 0, 0, payload))
        conn.client.close()
